/**
 * Never two writers: two manager processes with distinct client identities behind one Lease, the
 * API server's audit log as the neutral witness of who wrote what, and when.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { expect } from 'chai';
import { DiscoveryV1Api } from '@kubernetes/client-node';
import {
  startControlPlane,
  type AuditEvent,
  type ControlPlane,
} from '../../shared/localcontrolplane/index.ts';
import { core, createRunningPod, createService, inParallel, podIp } from './helpers/fixtures.ts';
import { createNamespace } from './helpers/namespaces.ts';
import { waitFor } from './helpers/wait.ts';

const REPO = new URL('../..', import.meta.url).pathname;
/** Short leader-election timings, so a takeover fits in a test: lease 8 s, renew 5 s, retry 1 s. */
const LEASE_MS = 8_000;
const ELECTION_FLAGS = [
  '--leader-elect=true',
  '--leader-elect-lease-duration=8s',
  '--leader-elect-renew-deadline=5s',
  '--leader-elect-retry-period=1s',
];

interface ManagerProcess {
  user: string;
  proc: ChildProcess;
  exit: Promise<number | null>;
  output: () => string;
}

/** Microseconds since the epoch of an audit timestamp (RFC 3339 with up to 9 fractional digits). */
function micros(ts: string): number {
  const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?Z$/.exec(ts);
  if (!m) throw new Error(`not an audit timestamp: ${ts}`);
  return Date.parse(`${m[1]}Z`) * 1000 + Number((m[2] ?? '').padEnd(6, '0').slice(0, 6));
}

const isWrite = (e: AuditEvent): boolean =>
  e.stage === 'ResponseComplete' && ['create', 'update', 'patch', 'delete'].includes(e.verb);

describe('leadership: one writer at a time (audit log)', function () {
  this.timeout(180_000);
  let cp: ControlPlane;
  const managers: ManagerProcess[] = [];

  before(async () => {
    cp = await startControlPlane({ auditWrites: true });
  });
  after(async () => {
    for (const m of managers) {
      if (m.proc.exitCode === null && m.proc.signalCode === null) {
        m.proc.kill('SIGCONT');
        m.proc.kill('SIGKILL');
      }
    }
    await Promise.all(managers.map((m) => m.exit));
    await cp?.stop();
  });

  async function startManager(user: string, lease: string, extra: string[] = []): Promise<ManagerProcess> {
    const kubeconfig = await cp.userKubeconfig(user);
    const proc = spawn(
      process.execPath,
      [
        'cmd/manager.ts',
        `--kubeconfig=${kubeconfig}`,
        ...ELECTION_FLAGS,
        `--leader-elect-resource-name=${lease}`,
        '--metrics-bind-address=0',
        '--health-probe-bind-address=0',
        '--log-format=json',
        '--v=2',
        ...extra,
      ],
      { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    const exit = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
    const m = { user, proc, exit, output: () => out };
    managers.push(m);
    return m;
  }

  const writesBy = (user: string): AuditEvent[] =>
    cp.auditEvents().filter((e) => isWrite(e) && e.user.username === user);

  /** Waits until `user`'s write to the Lease succeeded: it leads. */
  const leads = (user: string, lease: string): Promise<AuditEvent> =>
    waitFor(`${user} to hold Lease ${lease}`, () =>
      writesBy(user).find(
        (e) =>
          e.objectRef?.resource === 'leases' &&
          e.objectRef.name === lease &&
          (e.responseStatus?.code ?? 0) < 300,
      ),
    );

  async function services(ns: string, count: number, from = 0): Promise<void> {
    await inParallel(
      Array.from({ length: count }, (_, i) => from + i),
      10,
      async (i) => {
        await createService(cp.kubeConfig, ns, `s${i}`, { selector: { app: `a${i}` } });
        await createRunningPod(
          cp.kubeConfig,
          ns,
          `p${i}`,
          { ip: podIp(i + 1), ready: true },
          { labels: { app: `a${i}` } },
        );
      },
    );
  }

  /** Waits until every Service s<i> has its Endpoints and slice with its pod. */
  async function converged(ns: string, count: number): Promise<void> {
    const discovery = cp.kubeConfig.makeApiClient(DiscoveryV1Api);
    await waitFor(
      `the Endpoints and slices of ${count} Services in ${ns}`,
      async () => {
        const eps = await core(cp.kubeConfig).listNamespacedEndpoints({ namespace: ns });
        const slices = await discovery.listNamespacedEndpointSlice({ namespace: ns });
        const ready = new Set(
          eps.items.filter((e) => e.subsets?.[0]?.addresses?.length === 1).map((e) => e.metadata!.name),
        );
        const sliced = new Set(
          slices.items
            .filter((s) => s.endpoints?.length === 1)
            .map((s) => s.metadata!.labels!['kubernetes.io/service-name']),
        );
        return ready.size === count && sliced.size === count;
      },
      { timeoutMs: 90_000, intervalMs: 200 },
    );
  }

  it('(a) SIGTERM while the leader holds slow work: the old leader writes nothing after the new one writes first', async () => {
    const ns = await createNamespace(cp.kubeConfig, 'handover');
    // 40 Services and pods before any manager runs: the leader's first syncs are 80 writes at
    // 5 requests per second, so its queues hold slow work when it is told to stop.
    await services(ns, 40);
    const lease = 'scm-handover';
    const slowFlags = ['--kube-api-qps=5', '--kube-api-burst=1'];
    const old = await startManager('scm-old-leader', lease, slowFlags);
    await leads(old.user, lease);
    const standby = await startManager('scm-standby', lease, slowFlags);
    await waitFor('the leader to have written some Endpoints or slices', () =>
      writesBy(old.user).some((e) => e.objectRef?.resource === 'endpoints'),
    );
    const stoppedAt = Date.now() * 1000;
    old.proc.kill('SIGTERM');
    expect(await old.exit, old.output().slice(-3000)).to.equal(0);
    await converged(ns, 40);

    const oldWrites = writesBy(old.user);
    const newWrites = writesBy(standby.user);
    const lastOld = oldWrites.reduce((t, e) => Math.max(t, micros(e.stageTimestamp)), 0);
    const firstNew = newWrites.reduce((t, e) => Math.min(t, micros(e.requestReceivedTimestamp)), Infinity);
    const firstNewWrite = newWrites.find((e) => micros(e.requestReceivedTimestamp) === firstNew);
    const afterStop = oldWrites.filter((e) => micros(e.requestReceivedTimestamp) > stoppedAt);
    const gapMs = (firstNew - lastOld) / 1000;
    console.log(
      `      audit: old leader ${oldWrites.length} writes (${afterStop.length} after SIGTERM, the last one ` +
        `${afterStop.at(-1)?.objectRef?.resource ?? '-'}), new leader ${newWrites.length} writes; ` +
        `first new write ${gapMs.toFixed(1)} ms after the last old one`,
    );
    expect(firstNewWrite?.objectRef?.resource, 'the new leader writes its Lease first').to.equal('leases');
    expect(lastOld, 'every write of the old leader completed before the new one sent its first').to.be.below(
      firstNew,
    );
    expect(
      afterStop.some((e) => e.objectRef?.resource === 'leases' && e.verb === 'update'),
      'the old leader released the Lease',
    ).to.equal(true);
    standby.proc.kill('SIGTERM');
    expect(await standby.exit).to.equal(0);
  });

  it('(b) a leader frozen (SIGSTOP) for 1.5x the lease writes nothing when it wakes, exits non-zero, and the other converges', async () => {
    const ns = await createNamespace(cp.kubeConfig, 'frozen');
    const lease = 'scm-frozen';
    await services(ns, 5);
    const frozen = await startManager('scm-frozen-leader', lease);
    await leads(frozen.user, lease);
    const other = await startManager('scm-other', lease);
    await converged(ns, 5);
    // Idle apart from its renewals before it is frozen: no write of a sync is in flight.
    await waitFor('the leader to be idle for 2 s', () => {
      const last = writesBy(frozen.user)
        .filter((e) => e.objectRef?.resource !== 'leases')
        .reduce((t, e) => Math.max(t, micros(e.stageTimestamp)), 0);
      return Date.now() * 1000 - last > 2_000_000;
    });

    frozen.proc.kill('SIGSTOP');
    const frozenAt = Date.now() * 1000;
    // Work for whoever leads next; the frozen one's watches will deliver it when it wakes.
    await services(ns, 5, 5);
    await leads(other.user, lease);
    const wakeAt = frozenAt / 1000 + 1.5 * LEASE_MS;
    await new Promise((r) => setTimeout(r, Math.max(0, wakeAt - Date.now())));
    const wokeAt = Date.now() * 1000;
    frozen.proc.kill('SIGCONT');

    const code = await frozen.exit;
    await converged(ns, 10);
    const afterWake = writesBy(frozen.user).filter((e) => micros(e.requestReceivedTimestamp) >= wokeAt);
    const whileFrozen = writesBy(frozen.user).filter((e) => {
      const t = micros(e.requestReceivedTimestamp);
      return t >= frozenAt && t < wokeAt;
    });
    const fenced = [...frozen.output().matchAll(/fenced|leader lease lost/g)].length;
    console.log(
      `      audit: frozen ${((wokeAt - frozenAt) / 1e6).toFixed(1)} s; its writes received while frozen ` +
        `${whileFrozen.length}, after waking ${afterWake.length}; exit code ${code}; ` +
        `the other wrote ${writesBy(other.user).length}; ${fenced} fence/loss log lines`,
    );
    expect(afterWake, 'writes of the frozen leader after it woke').to.deep.equal([]);
    expect(code, frozen.output().slice(-3000)).to.equal(1);
    expect(frozen.output()).to.match(/leader lease lost: the lease validity passed/);
    other.proc.kill('SIGTERM');
    expect(await other.exit).to.equal(0);
  });
});
