/**
 * The endpoint benchmark scenarios (S1-S4 and the resilience scenario C1). Each declares its
 * workload (written straight to the API server through WorkloadWriter, seeded) and leaves its
 * expected result in the Model, which the comparator checks. A scenario may continue the state of
 * the one before it in the same session (S3 rolls S1's pods, S4 flaps S2's); `session` names the
 * fresh control plane it runs on. The allocation scenarios S5 and S6 are in allocation.ts.
 */
import { prng, type Model, type PodModel, type WorkloadWriter } from './workload.ts';

export interface Scenario {
  id: string;
  title: string;
  /** Scenarios of one session run in order on one control plane and controller-manager. */
  session: 'A' | 'B' | 'C';
  /**
   * The controller-manager talks to the API server through a proxy that cuts every connection
   * this often while the scenario runs (a load balancer's idle cut, a network blip).
   */
  cutConnectionsEveryMs?: number;
  /**
   * Time each pod status write until Endpoints and slices show it (p50/p99): for scenarios whose
   * one "last write" is too small a sample, as S4's flips.
   */
  timesReadiness?: boolean;
  /** `scale` shrinks the workload (1 = as specified; smaller for a quick try of the harness). */
  run(w: WorkloadWriter, model: Model, scale: number): Promise<void>;
}

const NODES = 30;

function newPods(model: Model, service: string, count: number, prefix: string, ready = true): PodModel[] {
  return Array.from({ length: count }, (_, i) => ({
    name: `${prefix}-${i}`,
    service,
    ip: model.allocateIp(),
    node: model.nodes[i % model.nodes.length],
    ready,
  }));
}

export const S1: Scenario = {
  id: 'S1',
  title: 'one Service, 10,000 ready pods',
  session: 'A',
  async run(w, model, scale) {
    await w.nodes(model, NODES);
    await w.services(model, ['big']);
    await w.pods(model, newPods(model, 'big', Math.round(10_000 * scale), 'big-r0'));
  },
};

export const S3: Scenario = {
  id: 'S3',
  title: 'rolling update of S1: pods replaced 10 % at a time, each new pod turning Ready',
  session: 'A',
  async run(w, model, scale) {
    for (let round = 1; round <= 10; round++) {
      const step = Math.round(1000 * scale);
      const old = [...model.pods.values()].filter((p) => p.service === 'big').slice(0, step);
      await w.pods(model, newPods(model, 'big', step, `big-r${round}`));
      await w.deletePods(
        model,
        old.map((p) => p.name),
      );
    }
  },
};

export const S2: Scenario = {
  id: 'S2',
  title: '2,000 Services with 5 pods each',
  session: 'B',
  async run(w, model, scale) {
    await w.nodes(model, NODES);
    const names = Array.from({ length: Math.round(2000 * scale) }, (_, i) => `svc-${i}`);
    await w.services(model, names);
    await w.pods(
      model,
      names.flatMap((svc) => newPods(model, svc, 5, svc)),
    );
  },
};

/** `flips` Ready flips of random pods of the model (seeded), evenly spread over `overMs`. */
async function flipReadiness(
  w: WorkloadWriter,
  model: Model,
  seed: number,
  flips: number,
  overMs: number,
): Promise<void> {
  const random = prng(seed);
  const pods = [...model.pods.values()];
  const started = Date.now();
  for (let i = 0; i < flips; i++) {
    const wait = started + (i * overMs) / flips - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const pod = pods[Math.floor(random() * pods.length)];
    pod.ready = !pod.ready;
    await w.status(pod);
  }
}

export const S4: Scenario = {
  id: 'S4',
  title: 'readiness flapping on S2: 1,000 random Ready flips over 60 s',
  session: 'B',
  timesReadiness: true,
  run: (w, model, scale) => flipReadiness(w, model, 4, Math.round(1000 * scale), 60_000 * scale),
};

/** Resilience: the watches and connections of the controller-manager cut again and again. */
export const C1: Scenario = {
  id: 'C1',
  title:
    'watch disconnects: 200 Services x 5 pods, 300 Ready flips over 60 s, every connection cut every 10 s',
  session: 'C',
  cutConnectionsEveryMs: 10_000,
  async run(w, model, scale) {
    await w.nodes(model, NODES);
    const names = Array.from({ length: Math.round(200 * scale) }, (_, i) => `svc-${i}`);
    await w.services(model, names);
    await w.pods(
      model,
      names.flatMap((svc) => newPods(model, svc, 5, svc)),
    );
    await flipReadiness(w, model, 5, Math.round(300 * scale), 60_000);
  },
};

export const SCENARIOS: readonly Scenario[] = [S1, S3, S2, S4, C1];
