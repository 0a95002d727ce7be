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
  /**
   * After the scenario's own figures are taken (on the same control plane and process): single-pod
   * Ready flips of this Service, one at a time, each timed (`singlePodFlipPlan`, run.ts). S1 and S3
   * have one converge time each, a single sample; these give them a distribution.
   */
  singlePodFlips?: { service: string; seed: number };
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
  singlePodFlips: { service: 'big', seed: 1 },
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
  singlePodFlips: { service: 'big', seed: 3 },
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

/** Single-pod flips after S1 and after S3 at scale 1. */
export const SINGLE_POD_FLIPS = 200;
/** Fewest single-pod flips whatever the scale, so a quick try still has a p99 of some meaning. */
export const MIN_SINGLE_POD_FLIPS = 20;

/** A single-pod flip not shown by then counts as unseen (a lost event would otherwise stall the run). */
export const FLIP_TIMEOUT_MS = 30_000;
/**
 * Between single-pod flips: no Endpoints or slice event for this long, so the next flip does not
 * overlap the last one's trailing writes (a truncated Endpoints taking the pod back, say).
 */
export const FLIP_QUIET_MS = 100;
export const FLIP_QUIET_MAX_MS = 5_000;

/** Single-pod flips at `scale`: at least 20, and even, as each pod flipped is flipped back. */
export function singlePodFlipCount(scale: number): number {
  const n = Math.max(MIN_SINGLE_POD_FLIPS, Math.round(SINGLE_POD_FLIPS * scale));
  return n + (n % 2);
}

/**
 * The order of `count` single-pod flips: `count / 2` pods of `candidates` (seeded; distinct while
 * there are enough), each twice in a row (not ready, then ready again), so the Service ends as it
 * began and the next scenario starts from the state it always had. Candidates are taken in name
 * order before the seeded shuffle, so the plan does not depend on the order they were listed in.
 */
export function singlePodFlipPlan(candidates: readonly PodModel[], count: number, seed: number): PodModel[] {
  if (candidates.length === 0) return [];
  const pool = [...candidates].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const random = prng(seed);
  for (let i = pool.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [pool[i], pool[j]] = [pool[j], pool[i]];
  }
  return Array.from({ length: count }, (_, i) => pool[Math.floor(i / 2) % pool.length]);
}

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
  // Its converge time is one flip's; every flip timed gives the distribution beside it.
  timesReadiness: true,
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
