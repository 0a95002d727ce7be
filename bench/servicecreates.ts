/**
 * Service creates for the allocation scenarios, each one timed on the client: S5 sends them from
 * many concurrent clients as fast as they are answered, S6 at a steady rate whatever the answers
 * take (open loop: a slow answer does not delay the next create, as with independent users).
 * The Services have no selector, so the endpoint controllers have nothing to do for them; every
 * `nodePortEvery`-th is type NodePort (a ClusterIP and a nodePort to allocate), the rest ClusterIP.
 */
import type { CoreV1Api, V1Service } from '@kubernetes/client-node';
import { describeError } from '../shared/kube/errors.ts';

export interface CreateTiming {
  name: string;
  /** Wall time the create was sent, ms since the epoch (fractional; comparable across threads). */
  sentAt: number;
  /** From sending it until its answer (or error), seconds. */
  seconds: number;
  /** Set when it failed: the API's code, reason and message. */
  error?: string;
}

export function serviceBody(name: string, nodePort: boolean): V1Service {
  return {
    metadata: { name },
    spec: {
      type: nodePort ? 'NodePort' : 'ClusterIP',
      ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }],
    },
  };
}

/** Service number i of a run: `<prefix>-<i>`, NodePort when i is a multiple of `nodePortEvery`. */
export function nthService(prefix: string, i: number, nodePortEvery: number): V1Service {
  return serviceBody(`${prefix}-${i}`, nodePortEvery > 0 && i % nodePortEvery === 0);
}

export async function timedCreate(
  core: CoreV1Api,
  namespace: string,
  body: V1Service,
): Promise<CreateTiming> {
  const started = performance.now();
  const sentAt = performance.timeOrigin + started;
  const name = body.metadata?.name ?? '';
  try {
    await core.createNamespacedService({ namespace, body });
    return { name, sentAt, seconds: (performance.now() - started) / 1000 };
  } catch (err) {
    return { name, sentAt, seconds: (performance.now() - started) / 1000, error: describeError(err) };
  }
}

/** `bodies` created by `clients` concurrent loops, each sending its next create once answered. */
export async function createConcurrently(
  core: CoreV1Api,
  namespace: string,
  bodies: readonly V1Service[],
  clients: number,
): Promise<CreateTiming[]> {
  const out: CreateTiming[] = [];
  let next = 0;
  const loop = async (): Promise<void> => {
    while (next < bodies.length) out.push(await timedCreate(core, namespace, bodies[next++]));
  };
  await Promise.all(Array.from({ length: Math.min(clients, bodies.length) }, loop));
  return out;
}

export interface SteadyOptions {
  namespace: string;
  prefix: string;
  ratePerSecond: number;
  /** Keep going until `stopped()` and at least this many were sent. */
  minCreates: number;
  /** Never more than this many (a guard against a range filling up). */
  maxCreates: number;
  nodePortEvery: number;
}

/**
 * Sends create i at start + i / rate until `stopped()` says so and `minCreates` were sent (or
 * `maxCreates`), then waits for every answer.
 */
export async function createSteadily(
  core: CoreV1Api,
  opts: SteadyOptions,
  stopped: () => boolean,
): Promise<CreateTiming[]> {
  const pending: Promise<CreateTiming>[] = [];
  const started = performance.now();
  for (let i = 0; i < opts.maxCreates && !(stopped() && i >= opts.minCreates); i++) {
    const wait = started + (i * 1000) / opts.ratePerSecond - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    pending.push(timedCreate(core, opts.namespace, nthService(opts.prefix, i, opts.nodePortEvery)));
  }
  return Promise.all(pending);
}
