import { expect } from 'chai';
import type { V1EndpointSlice, V1Pod } from '@kubernetes/client-node';
import { endpointIdentity } from '../../../shared/endpoints/slices.ts';
import { prng } from '../../../bench/workload.ts';
import { pod, service, SliceWorld, threeZones } from './world.ts';

/** What a slice says, without bookkeeping metadata: a write that leaves this equal changed nothing. */
function content(slice: V1EndpointSlice): string {
  return JSON.stringify([slice.metadata?.labels, slice.ports, slice.endpoints]);
}

describe('EndpointSlice placement property (seeded, 500 rounds)', () => {
  const SEED = 20261124;
  const MAX = 100;

  it('keeps slices <= max, no endpoint twice, exactly the desired set, and writes only changed slices', async function () {
    this.timeout(120_000);
    const random = prng(SEED);
    const w = new SliceWorld(MAX);
    w.addNodes(...threeZones());
    w.addServices(service());
    const live = new Map<number, V1Pod>();
    let nextId = 0;
    const pick = (): number => {
      const ids = [...live.keys()];
      return ids[Math.floor(random() * ids.length)];
    };

    for (let round = 0; round < 500; round++) {
      const ops = 1 + Math.floor(random() * 60);
      for (let i = 0; i < ops; i++) {
        const r = random();
        if ((r < 0.4 || live.size === 0) && live.size < 1000) {
          const p = pod(nextId, { ready: random() < 0.8 });
          live.set(nextId++, p);
          w.addPods(p);
        } else if (r < 0.7 && live.size > 0) {
          const id = pick();
          live.delete(id);
          w.pods.delete(`n/${pod(id).metadata!.name}`);
        } else if (live.size > 0) {
          const id = pick();
          const ready = live.get(id)!.status!.conditions![0].status !== 'True';
          const p = pod(id, { ready });
          live.set(id, p);
          w.addPods(p);
        }
      }

      const before = new Map(w.slicesOf().map((s) => [s.metadata!.name!, content(s)]));
      const plan = await w.sync();
      const where = `seed ${SEED}, round ${round}`;
      for (const updated of plan.updates) {
        const after = w.slices.get(`n/${updated.metadata!.name}`)!;
        expect(content(after), `${where}: update of an unchanged slice`).to.not.equal(
          before.get(updated.metadata!.name!),
        );
      }

      const slices = w.slicesOf();
      for (const slice of slices) {
        expect(slice.endpoints!.length, `${where}: slice over max`).to.be.at.most(MAX);
      }
      const published = slices.flatMap((s) =>
        s.endpoints!.map((e) => `${endpointIdentity(e)} ready=${e.conditions?.ready}`),
      );
      expect(new Set(published).size, `${where}: endpoint in two slices`).to.equal(published.length);
      const expected = [...live.entries()].map(([id, p]) => {
        const ip = p.status!.podIP!;
        const identity = endpointIdentity({
          addresses: [ip],
          targetRef: { namespace: 'n', name: pod(id).metadata!.name },
        });
        return `${identity} ready=${p.status!.conditions![0].status === 'True'}`;
      });
      expect(published.sort(), `${where}: published set`).to.deep.equal(expected.sort());
      if (live.size === 0) expect(slices, `${where}: placeholder`).to.have.length(1);

      const again = await w.sync();
      expect(
        again.creates.length + again.updates.length + again.deletes.length,
        `${where}: not settled`,
      ).to.equal(0);
    }
  });
});
