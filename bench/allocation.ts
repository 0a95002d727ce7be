/**
 * The allocation scenarios: ClusterIPs and NodePorts handed out by our mutating admission webhook
 * (`/mutate-v1-service`) from the RangeAllocation maps (`scm.dev/v1alpha1`: serviceips-ipv4,
 * servicenodeports), concurrent admissions sharing one write (group commit).
 *
 * - S5, allocation throughput: 2,000 Services (every tenth type NodePort) created by 50
 *   concurrent clients on a fresh control plane, once with our webhook allocating ("ours") and
 *   once with the API server's built-in allocator alone ("built-in"). The ClusterIP range is the
 *   same /20 for the API server and, in "ours", for our map.
 * - S6, admission latency under load: in one manager process, while the 10,000-pod Service of S1
 *   is being synced (S1's own workload), Services are created through the webhook at a steady
 *   20/s (BENCH_S6_RATE) by a client in a worker thread, for as long as the sync runs (at least
 *   200 creates).
 *
 * In both, ours runs as in the other scenarios (its own process, the same client QPS/burst,
 * workers and batch periods) with the endpoint controllers plus `clusterip,nodeport` and the
 * webhook served on a loopback port, registered by URL with failurePolicy Fail (the way
 * shared/localcontrolplane/allocation.ts and test/integration/helpers/allocation.ts run it). In
 * S5's "built-in" the same manager runs without `clusterip,nodeport`, no webhook is registered and
 * no CRD installed. The created Services have no selector, so the endpoint controllers have
 * nothing to write for them.
 */
import { Worker } from 'node:worker_threads';
import { join } from 'node:path';
import { CoreV1Api, type V1Service } from '@kubernetes/client-node';
import { listAllServices } from '../controllers/allocation.ts';
import { SERVICE_WEBHOOK_PATH } from '../controllers/serviceadmission.ts';
import { RangeAllocator } from '../shared/allocator/allocator.ts';
import { IPRange, PortRange, type ValueRange } from '../shared/allocator/ranges.ts';
import { KubeRangeAllocationStore } from '../shared/allocator/storage.ts';
import { KubeClient } from '../shared/kube/client.ts';
import { statusCode } from '../shared/kube/errors.ts';
import {
  serviceWebhookConfiguration,
  startControlPlane,
  type ControlPlane,
} from '../shared/localcontrolplane/index.ts';
import type { CreatorData, CreatorMessage } from './admissionclient.ts';
import { registerOurWebhook, until, waitOurWebhook } from './ourwebhook.ts';
import { ApiMeter, diff, type Counts } from './apimeter.ts';
import { ConvergenceWatch, type Comparison } from './compare.ts';
import {
  CONTROLLERS,
  LagSampler,
  ProcSampler,
  startManager,
  withCleanup,
  eventLoopLagP99,
  type Cleanup,
  type ManagerOptions,
  type RunningManager,
  type Settings,
} from './processes.ts';
import { histogram, histogramDelta, quantileBound, sumBy, type Histogram } from './promtext.ts';
import { S1 } from './scenarios.ts';
import { createConcurrently, nthService, type CreateTiming } from './servicecreates.ts';
import { type LatencySummary, summarize } from './stats.ts';
import { Model, NAMESPACE, WorkloadWriter } from './workload.ts';

export const S5_TITLE =
  "allocation throughput: 2,000 Services (1 in 10 NodePort) from 50 concurrent clients, ours vs the API server's built-in allocator";
/** S6: creates per second (20; `BENCH_S6_RATE` overrides, to find what the control plane sustains). */
export const S6_RATE = Number(process.env.BENCH_S6_RATE ?? 20);
export const S6_TITLE = `admission latency under load: Services created through the webhook at ${S6_RATE}/s while S1's 10,000-pod Service is synced`;
/** The allocation scenarios, for `--scenarios` (run.ts runs them after the endpoint sessions). */
export const ALLOCATION_SCENARIOS: readonly { id: 'S5' | 'S6'; title: string }[] = [
  { id: 'S5', title: S5_TITLE },
  { id: 'S6', title: S6_TITLE },
];

/** S5: Services (x scale), concurrent clients, one in this many type NodePort. */
export const S5_SERVICES = 2000;
export const S5_CLIENTS = 50;
export const NODE_PORT_EVERY = 10;
/** S5's ClusterIP range, for the API server and for our map: 4,094 addresses, room for 2,000. */
export const S5_RANGE = '10.0.0.0/20';
/** S6: the fewest creates (x scale), and its range (room for any duration). */
export const S6_MIN_CREATES = 200;
export const S6_RANGE = '10.0.0.0/16';
/** A guard: S6 never creates more than this (the converge timeout ends the sync long before). */
const S6_MAX_CREATES = 20_000;
/** The controllers ours runs when it allocates. */
export const ALLOCATING_CONTROLLERS = `${CONTROLLERS},clusterip,nodeport`;
const IP_MAP = 'serviceips-ipv4';
const PORT_MAP = 'servicenodeports';

export type AllocatorMode = 'ours' | 'built-in';

/** What the Services held at the end: values two Services share, and values missing. */
export interface AllocationCheck {
  services: number;
  /** Services beyond the first on each ClusterIP (0 when every ClusterIP is unique). */
  duplicateClusterIPs: number;
  /** Services beyond the first on each nodePort (a Service's ports may share one among themselves). */
  duplicateNodePorts: number;
  /** Services (not ExternalName, not headless) without a ClusterIP. */
  missingClusterIPs: number;
  /** NodePort and LoadBalancer Services with a port lacking its nodePort. */
  missingNodePorts: number;
}

/** A latency histogram over a scenario (after minus before). */
export interface HistogramFigures {
  /** Observations during the scenario. */
  observations: number;
  meanSeconds: number;
  /**
   * Upper bound of the histogram bucket holding the p50 / p99 (at least that share answered within
   * it); null when above the highest finite bound (`highestBoundSeconds`) or with no observations.
   */
  p50BoundSeconds: number | null;
  p99BoundSeconds: number | null;
  highestBoundSeconds: number;
}

/** Our webhook's figures over a scenario (its /metrics). */
export interface WebhookFigures extends HistogramFigures {
  /** `controller_runtime_webhook_requests_total` of `/mutate-v1-service`, by code. */
  requestsByCode: Counts;
}

/** The webhook's name in manifests/webhook.yaml, as the API server's metrics label it. */
const WEBHOOK_NAME = serviceWebhookConfiguration({ baseUrl: 'https://unused' }).webhooks?.[0]?.name ?? '';

export interface AllocationResult {
  scenario: 'S5';
  title: string;
  mode: AllocatorMode;
  /** The manager's `--controllers`. */
  controllers: string;
  /** Whether our webhook was registered (failurePolicy Fail). */
  webhookRegistered: boolean;
  serviceClusterIpRange: string;
  services: number;
  nodePortServices: number;
  clients: number;
  /** From the first create sent until the last one answered. */
  wallSeconds: number;
  createsPerSecond: number;
  /** Each create, client side, from sending it until its answer. */
  createLatency: LatencySummary;
  failures: number;
  /** Up to 5 distinct errors of failed creates. */
  failureSamples: string[];
  /** API server `apiserver_request_total` of rangeallocations during the creates, "VERB code" -> n. */
  rangeAllocationRequests: Counts;
  /** PUT and POST requests to rangeallocations (update, create), whatever their answer. */
  rangeAllocationWrites: number;
  /** Requests to rangeallocations answered 409. */
  rangeAllocationConflicts: number;
  check: AllocationCheck;
  /** ours: Services with a ClusterIP or nodePort that our maps do not mark. */
  notInOurMaps?: number;
  webhook?: WebhookFigures;
  /** ours: the API server's duration of its calls to our webhook. */
  apiServerWebhook?: HistogramFigures;
  /** The manager process during the creates (/proc). */
  peakRssBytes: number;
  cpuSeconds: number;
}

export interface AdmissionResult {
  scenario: 'S6';
  title: string;
  /**
   * 'ours' is S6; 'built-in' (only with --s6-baseline) the same load with the API server
   * allocating alone: what the client-side latency is without our webhook.
   */
  mode: AllocatorMode;
  controllers: string;
  serviceClusterIpRange: string;
  ratePerSecond: number;
  /** Services the steady client created (sent; see failures). */
  creates: number;
  nodePortServices: number;
  failures: number;
  failureSamples: string[];
  /** Client side (the worker thread), each create from sending it until its answer. */
  createLatency: LatencySummary;
  /** The client thread's own event-loop delay p99: what the client-side figure may include of it. */
  clientLagP99Seconds: number;
  /** ours only. */
  webhook?: WebhookFigures;
  /** ours only: the API server's duration of its calls to our webhook. */
  apiServerWebhook?: HistogramFigures;
  /** The highest `nodejs_eventloop_lag_p99_seconds` ours showed, sampled every 2 s. */
  eventLoopLagP99Seconds: number;
  /** S1's sync, as in S1: its pods, its writes' duration, converge after the last write. */
  pods: number;
  s1WorkloadSeconds: number;
  s1ConvergeSeconds: number;
  s1Comparison: Comparison;
  /** From the first S1 write until the last create answered. */
  scenarioSeconds: number;
  /** S1 workload writes sent again after their connection failed without an answer. */
  workloadTransportRetries: number;
  rangeAllocationWrites: number;
  rangeAllocationConflicts: number;
  check: AllocationCheck;
  /** ours only. */
  notInOurMaps?: number;
  peakRssBytes: number;
  cpuSeconds: number;
}

export interface AllocationSessionOptions {
  settings: Settings;
  nodeArgs: string[];
  scale: number;
  logDir: string | undefined;
}

/** Counts ClusterIPs and nodePorts two Services share, and missing ones (pure). */
export function checkAllocations(services: readonly V1Service[]): AllocationCheck {
  const ips = new Map<string, number>();
  const ports = new Map<number, number>();
  let missingClusterIPs = 0;
  let missingNodePorts = 0;
  for (const svc of services) {
    const spec = svc.spec ?? {};
    if (spec.type === 'ExternalName') continue;
    const own = (spec.clusterIPs ?? (spec.clusterIP ? [spec.clusterIP] : [])).filter(
      (ip) => ip !== '' && ip !== 'None',
    );
    if (own.length === 0 && spec.clusterIP !== 'None') missingClusterIPs++;
    for (const ip of new Set(own)) ips.set(ip, (ips.get(ip) ?? 0) + 1);
    if (spec.type === 'NodePort' || spec.type === 'LoadBalancer') {
      const mine = new Set<number>();
      for (const p of spec.ports ?? []) {
        if (p.nodePort) mine.add(p.nodePort);
        else if (spec.type === 'NodePort' || spec.allocateLoadBalancerNodePorts !== false) missingNodePorts++;
      }
      if (spec.healthCheckNodePort) mine.add(spec.healthCheckNodePort);
      for (const port of mine) ports.set(port, (ports.get(port) ?? 0) + 1);
    }
  }
  const beyondFirst = (m: Map<unknown, number>): number =>
    [...m.values()].reduce((n, c) => n + Math.max(0, c - 1), 0);
  return {
    services: services.length,
    duplicateClusterIPs: beyondFirst(ips),
    duplicateNodePorts: beyondFirst(ports),
    missingClusterIPs,
    missingNodePorts,
  };
}

function histogramFigures(h: Histogram): HistogramFigures {
  const bound = (q: number): number | null => {
    const b = quantileBound(h, q);
    return Number.isFinite(b) ? b : null;
  };
  return {
    observations: h.count,
    meanSeconds: h.count > 0 ? h.sum / h.count : Number.NaN,
    p50BoundSeconds: bound(0.5),
    p99BoundSeconds: bound(0.99),
    highestBoundSeconds: h.buckets.filter((b) => Number.isFinite(b.le)).at(-1)?.le ?? Number.NaN,
  };
}

/** Our webhook's request counts and latency histogram between two scrapes of ours' /metrics. */
export function webhookFigures(after: string, before: string): WebhookFigures {
  const want = { webhook: SERVICE_WEBHOOK_PATH };
  const name = 'controller_runtime_webhook_latency_seconds';
  const h = histogramDelta(histogram(after, name, want), histogram(before, name, want));
  const requestsByCode = diff(
    sumBy(after, 'controller_runtime_webhook_requests_total', want, 'code'),
    sumBy(before, 'controller_runtime_webhook_requests_total', want, 'code'),
  );
  return { ...histogramFigures(h), requestsByCode };
}

/**
 * The API server's side of calling our webhook, between two scrapes of its /metrics:
 * `apiserver_admission_webhook_admission_duration_seconds` of our webhook (connection, TLS, the
 * request and our answer), every operation and outcome.
 */
export function apiServerWebhookFigures(after: string, before: string): HistogramFigures {
  const want = { name: WEBHOOK_NAME };
  const name = 'apiserver_admission_webhook_admission_duration_seconds';
  return histogramFigures(histogramDelta(histogram(after, name, want), histogram(before, name, want)));
}

/** Distinct errors of failed creates, the first few. */
function failureSamples(timings: readonly CreateTiming[], max = 5): string[] {
  return [...new Set(timings.flatMap((t) => (t.error === undefined ? [] : [t.error])))].slice(0, max);
}

/** From the first create sent until the last answered, seconds. */
function wallSeconds(timings: readonly CreateTiming[]): number {
  if (timings.length === 0) return Number.NaN;
  const first = Math.min(...timings.map((t) => t.sentAt));
  const last = Math.max(...timings.map((t) => t.sentAt + t.seconds * 1000));
  return (last - first) / 1000;
}

function rangeAllocationFigures(requests: Counts): { writes: number; conflicts: number } {
  let writes = 0;
  let conflicts = 0;
  for (const [key, n] of Object.entries(requests)) {
    const [verb, code] = key.split(' ');
    if (verb === 'PUT' || verb === 'POST') writes += n;
    if (code === '409') conflicts += n;
  }
  return { writes, conflicts };
}

async function metricsText(manager: RunningManager): Promise<string> {
  if (!manager.metricsUrl) throw new Error('ours has no metrics address');
  return (await fetch(manager.metricsUrl)).text();
}

/**
 * Starts ours for an allocation scenario and waits until it serves: for "ours" our CRDs and
 * namespace, the webhook registered at a loopback port (failurePolicy Fail), the manager with the
 * allocation controllers and the webhook flags, the CA bundle injected and both maps created; for
 * "built-in" the manager with the endpoint controllers only. Then, for both, a probe Service
 * created (through the webhook for ours: retried until the API server reaches it).
 */
async function startOurs(
  mode: AllocatorMode,
  cp: ControlPlane,
  range: string,
  opts: AllocationSessionOptions,
  logName: string,
  cleanup: Cleanup,
): Promise<RunningManager> {
  const managerOpts: ManagerOptions = {
    nodeArgs: opts.nodeArgs,
    logPath: opts.logDir === undefined ? undefined : join(opts.logDir, `ours-${logName}.log`),
  };
  if (mode === 'ours') {
    managerOpts.controllers = ALLOCATING_CONTROLLERS;
    managerOpts.extraArgs = [...(await registerOurWebhook(cp)), `--service-cluster-ip-range=${range}`];
  }
  const manager = await startManager('ours', cp, opts.settings, managerOpts);
  cleanup.defer(() => manager.stop());
  if (mode === 'built-in') {
    await until(manager, 'ours to serve /metrics', async () =>
      (await eventLoopLagP99(manager.metricsUrl)) !== undefined ? true : undefined,
    );
  } else {
    await waitOurWebhook(manager, cp);
    const store = new KubeRangeAllocationStore(
      new KubeClient(cp.kubeConfig, { qps: 0, burst: 0, userAgent: 'bench-maps' }),
      { fenced: false },
    );
    for (const name of [IP_MAP, PORT_MAP])
      await until(manager, `RangeAllocation ${name}`, () => store.get(name));
  }
  const core = cp.kubeConfig.makeApiClient(CoreV1Api);
  await until(manager, 'a probe Service to be admitted', async () => {
    try {
      await core.createNamespacedService({ namespace: NAMESPACE, body: nthService('probe-admission', 1, 0) });
    } catch (err) {
      // An earlier try was admitted but its answer lost.
      if (statusCode(err) !== 409) throw err;
    }
    return true;
  });
  return manager;
}

/** Services whose ClusterIP or nodePort our maps do not mark (so not allocated through them). */
async function notInOurMaps(client: KubeClient, services: readonly V1Service[]): Promise<number> {
  const store = new KubeRangeAllocationStore(client, { fenced: false });
  const load = async <V>(
    name: string,
    range: (text: string) => ValueRange<V>,
  ): Promise<RangeAllocator<V>> => {
    const map = await store.get(name);
    if (map === undefined) throw new Error(`RangeAllocation ${name} is gone`);
    const a = new RangeAllocator(range(map.range));
    a.restore(map);
    return a;
  };
  const ips = await load(IP_MAP, (t) => new IPRange(t));
  const ports = await load(PORT_MAP, (t) => new PortRange(t));
  return services.filter((svc) => {
    const spec = svc.spec ?? {};
    const clusterIPs = (spec.clusterIPs ?? []).filter((ip) => ip !== '' && ip !== 'None');
    const nodePorts = (spec.ports ?? []).flatMap((p) => (p.nodePort ? [p.nodePort] : []));
    return clusterIPs.some((ip) => !ips.has(ip)) || nodePorts.some((p) => !ports.has(p));
  }).length;
}

function ms(seconds: number | null | undefined): string {
  return seconds === null || seconds === undefined || Number.isNaN(seconds)
    ? '—'
    : (seconds * 1000).toFixed(1);
}

/** "<= 50 ms", "> 10000 ms" (above the highest bucket) or "—" (no observations). */
export function boundText(w: HistogramFigures, q: 'p50' | 'p99'): string {
  const b = q === 'p50' ? w.p50BoundSeconds : w.p99BoundSeconds;
  if (w.observations <= 0) return '—';
  return b === null ? `> ${Math.round(w.highestBoundSeconds * 1000)} ms` : `<= ${Math.round(b * 1000)} ms`;
}

/** S5 with one allocator, on a fresh control plane. */
export async function runAllocationThroughput(
  mode: AllocatorMode,
  opts: AllocationSessionOptions,
): Promise<AllocationResult> {
  process.stderr.write(`[bench] ${mode} S5: ${S5_TITLE}\n`);
  return withCleanup(async (cleanup) => {
    const cp = await startControlPlane({ serviceClusterIpRange: S5_RANGE });
    cleanup.defer(() => cp.stop());
    const meter = new ApiMeter(cp);
    cleanup.defer(() => meter.close());
    await new WorkloadWriter(cp.kubeConfig).namespace();
    const manager = await startOurs(mode, cp, S5_RANGE, opts, `S5-${mode}`, cleanup);
    const client = new KubeClient(cp.kubeConfig, { qps: 0, burst: 0, userAgent: 'bench-s5-clients' });
    const count = Math.max(1, Math.round(S5_SERVICES * opts.scale));
    const bodies = Array.from({ length: count }, (_, i) => nthService('alloc', i, NODE_PORT_EVERY));

    const requestsBefore = await meter.requests('rangeallocations');
    const metricsBefore = mode === 'ours' ? await metricsText(manager) : '';
    const apiServerBefore = await meter.text();
    const sampler = new ProcSampler(manager.pid);
    cleanup.defer(() => sampler.stop());
    const timings = await createConcurrently(client.api(CoreV1Api), NAMESPACE, bodies, S5_CLIENTS);
    const stats = sampler.stop();
    const rangeAllocationRequests = diff(await meter.requests('rangeallocations'), requestsBefore);
    const webhook = mode === 'ours' ? webhookFigures(await metricsText(manager), metricsBefore) : undefined;
    const apiServerWebhook =
      mode === 'ours' ? apiServerWebhookFigures(await meter.text(), apiServerBefore) : undefined;
    const services = await listAllServices(client)(new AbortController().signal);
    const wall = wallSeconds(timings);
    const { writes, conflicts } = rangeAllocationFigures(rangeAllocationRequests);
    const result: AllocationResult = {
      scenario: 'S5',
      title: S5_TITLE,
      mode,
      controllers: mode === 'ours' ? ALLOCATING_CONTROLLERS : CONTROLLERS,
      webhookRegistered: mode === 'ours',
      serviceClusterIpRange: S5_RANGE,
      services: count,
      nodePortServices: bodies.filter((b) => b.spec?.type === 'NodePort').length,
      clients: Math.min(S5_CLIENTS, count),
      wallSeconds: wall,
      createsPerSecond: count / wall,
      createLatency: summarize(timings.map((t) => t.seconds)),
      failures: timings.filter((t) => t.error !== undefined).length,
      failureSamples: failureSamples(timings),
      rangeAllocationRequests,
      rangeAllocationWrites: writes,
      rangeAllocationConflicts: conflicts,
      check: checkAllocations(services),
      ...(mode === 'ours' ? { notInOurMaps: await notInOurMaps(client, services) } : {}),
      ...(webhook ? { webhook } : {}),
      ...(apiServerWebhook ? { apiServerWebhook } : {}),
      peakRssBytes: stats.peakRssBytes,
      cpuSeconds: stats.cpuSeconds,
    };
    process.stderr.write(
      `[bench] ${mode} S5: ${count} creates in ${wall.toFixed(2)} s (${result.createsPerSecond.toFixed(1)}/s), ` +
        `p50 ${ms(result.createLatency.p50Seconds)} ms p99 ${ms(result.createLatency.p99Seconds)} ms, ` +
        `${result.failures} failed${result.failureSamples.length > 0 ? ` (${result.failureSamples.join('; ')})` : ''}, ` +
        `${writes} RangeAllocation writes (${conflicts} 409s), ` +
        `${result.check.duplicateClusterIPs} duplicate ClusterIPs, ${result.check.duplicateNodePorts} duplicate nodePorts` +
        (result.notInOurMaps !== undefined ? `, ${result.notInOurMaps} not in our maps` : '') +
        (webhook ? `, webhook p99 ${boundText(webhook, 'p99')}` : '') +
        (apiServerWebhook ? `, API server's webhook calls p99 ${boundText(apiServerWebhook, 'p99')}` : '') +
        '\n',
    );
    return result;
  });
}

interface Creator {
  /** Asks it to stop (once `minCreates` were sent) and resolves with what it measured. */
  stop(): Promise<Extract<CreatorMessage, { type: 'done' }>>;
  terminate(): Promise<number>;
}

function startCreator(data: CreatorData): Creator {
  const worker = new Worker(new URL('./admissionclient.ts', import.meta.url), { workerData: data });
  const result = new Promise<Extract<CreatorMessage, { type: 'done' }>>((resolve, reject) => {
    worker.once('message', (m: CreatorMessage) =>
      m.type === 'done' ? resolve(m) : reject(new Error(`the S6 client failed: ${m.message}`)),
    );
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`the S6 client exited (${code}) before reporting`)));
  });
  result.catch(() => undefined); // stop() reports it
  return {
    stop: () => {
      worker.postMessage('stop');
      return result;
    },
    terminate: () => worker.terminate(),
  };
}

/**
 * S6 in one manager process on a fresh control plane: ours (the scenario), or, as a baseline on
 * request, the same load with the built-in allocator.
 */
export async function runAdmissionUnderLoad(
  mode: AllocatorMode,
  opts: AllocationSessionOptions,
): Promise<AdmissionResult> {
  process.stderr.write(`[bench] ${mode} S6: ${S6_TITLE}\n`);
  return withCleanup(async (cleanup) => {
    const cp = await startControlPlane({ serviceClusterIpRange: S6_RANGE });
    cleanup.defer(() => cp.stop());
    const meter = new ApiMeter(cp);
    cleanup.defer(() => meter.close());
    const w = new WorkloadWriter(cp.kubeConfig);
    await w.namespace();
    const watch = await ConvergenceWatch.start(cp.kubeConfig);
    cleanup.defer(() => watch.stop());
    const manager = await startOurs(mode, cp, S6_RANGE, opts, `S6-${mode}`, cleanup);
    // As in the endpoint sessions: ready when a probe Service gets its Endpoints.
    const probe = new Model();
    await w.services(probe, ['probe']);
    const ready = await watch.until(probe, 120_000);
    if (!ready.comparison.ok)
      throw new Error(`ours did not start: ${ready.comparison.differences.join('; ')}`);
    const model = new Model();
    model.services.add('probe');

    const requestsBefore = await meter.requests('rangeallocations');
    const metricsBefore = await metricsText(manager);
    const apiServerBefore = await meter.text();
    const sampler = new ProcSampler(manager.pid);
    cleanup.defer(() => sampler.stop());
    const lag = new LagSampler(manager.metricsUrl);
    cleanup.defer(() => lag.stop());
    const minCreates = Math.max(1, Math.round(S6_MIN_CREATES * opts.scale));
    const creator = startCreator({
      kubeconfigPath: cp.kubeconfigPath,
      namespace: NAMESPACE,
      prefix: 'admit',
      ratePerSecond: S6_RATE,
      minCreates,
      maxCreates: S6_MAX_CREATES,
      nodePortEvery: NODE_PORT_EVERY,
    });
    cleanup.defer(() => creator.terminate());
    const started = Date.now();
    await S1.run(w, model, opts.scale);
    const lastWrite = w.lastWriteAt;
    const converged = await watch.until(model, 600_000);
    watch.settleProbes();
    const { timings, lagP99Seconds } = await creator.stop();
    const ended = Date.now();
    const maxLag = await lag.stop();
    const stats = sampler.stop();
    const webhook = mode === 'ours' ? webhookFigures(await metricsText(manager), metricsBefore) : undefined;
    const apiServerWebhook =
      mode === 'ours' ? apiServerWebhookFigures(await meter.text(), apiServerBefore) : undefined;
    const { writes, conflicts } = rangeAllocationFigures(
      diff(await meter.requests('rangeallocations'), requestsBefore),
    );
    const client = new KubeClient(cp.kubeConfig, { qps: 0, burst: 0, userAgent: 'bench-s6-check' });
    const services = await listAllServices(client)(new AbortController().signal);
    const result: AdmissionResult = {
      scenario: 'S6',
      title: S6_TITLE,
      mode,
      controllers: mode === 'ours' ? ALLOCATING_CONTROLLERS : CONTROLLERS,
      serviceClusterIpRange: S6_RANGE,
      ratePerSecond: S6_RATE,
      creates: timings.length,
      nodePortServices: timings.filter((_, i) => i % NODE_PORT_EVERY === 0).length,
      failures: timings.filter((t) => t.error !== undefined).length,
      failureSamples: failureSamples(timings),
      createLatency: summarize(timings.map((t) => t.seconds)),
      clientLagP99Seconds: lagP99Seconds,
      ...(webhook ? { webhook } : {}),
      ...(apiServerWebhook ? { apiServerWebhook } : {}),
      eventLoopLagP99Seconds: maxLag,
      pods: [...model.pods.values()].length,
      s1WorkloadSeconds: (lastWrite - started) / 1000,
      s1ConvergeSeconds: Math.max(0, converged.at - lastWrite) / 1000,
      s1Comparison: converged.comparison,
      scenarioSeconds: (ended - started) / 1000,
      workloadTransportRetries: w.transportRetries,
      rangeAllocationWrites: writes,
      rangeAllocationConflicts: conflicts,
      check: checkAllocations(services),
      ...(mode === 'ours' ? { notInOurMaps: await notInOurMaps(client, services) } : {}),
      peakRssBytes: stats.peakRssBytes,
      cpuSeconds: stats.cpuSeconds,
    };
    process.stderr.write(
      `[bench] ${mode} S6: ${result.creates} creates at ${S6_RATE}/s over ${result.scenarioSeconds.toFixed(1)} s, ` +
        `client p50 ${ms(result.createLatency.p50Seconds)} ms p99 ${ms(result.createLatency.p99Seconds)} ms, ` +
        (webhook ? `webhook p50 ${boundText(webhook, 'p50')} p99 ${boundText(webhook, 'p99')}, ` : '') +
        (apiServerWebhook
          ? `API server's webhook calls p50 ${boundText(apiServerWebhook, 'p50')} p99 ${boundText(apiServerWebhook, 'p99')}, `
          : '') +
        `event-loop lag p99 ${ms(maxLag)} ms, ${result.failures} failed` +
        (result.failureSamples.length > 0 ? ` (${result.failureSamples.join('; ')})` : '') +
        `; S1 converged ${result.s1ConvergeSeconds.toFixed(2)} s after its last write ` +
        (w.transportRetries > 0 ? `(${w.transportRetries} workload writes sent again) ` : '') +
        `(${result.s1Comparison.ok ? 'ok' : result.s1Comparison.differences.join('; ')})\n`,
    );
    return result;
  });
}
