/**
 * `make bench`: ours and kube-controller-manager side by side, each on its own fresh local control
 * plane, same QPS/burst, workers and batch periods; the scenarios of scenarios.ts (S1-S4, the
 * resilience scenario C1) and of allocation.ts (S5: ours vs the API server's built-in allocator;
 * S6: ours only); figures from the API server's metrics, ours' /metrics and /proc; results to
 * bench-results/<time>.json and docs/BENCHMARKS.md. After S1 and after S3 (same session, once their
 * own figures are taken) single-pod Ready flips of the 10,000-pod Service, one at a time, timed.
 *
 * and of loadbalancer.ts (S7, S8: ours vs MetalLB's controller and a bare-client floor, at QPS 20 /
 * burst 30 whatever --qps says).
 *
 * Flags: --qps=100 --burst=100 --workers=5 --batch-period=0s --scenarios=S1,S3,S2,S4,C1,S5,S6,S7,S8
 *        --scale=1 (shrinks every workload: pods, Services, flips, S5's creates, S6's fewest creates)
 *        --managers=ours,kube-controller-manager (for S1-S4 and C1; S5 always runs ours and the
 *        built-in allocator, S6 ours)
 *        --s6-baseline (S6's load once more without our webhook, the API server allocating alone)
 *        --lb-sides=ours,metallb,floor (for S7/S8; S8 runs on S7's state, so it brings S7 along)
 *        --repeat=1 (S1-S4 and C1 run this many times, each repeat a full set of sessions on fresh
 *        control planes, the managers' order rotating each repeat: ours first, then kcm first, ...;
 *        the JSON keeps every repeat, the report shows each figure's median (min–max) and whether
 *        ours <= kcm held in every repeat; S5-S8 run once whatever it says)
 *        --merge-docs (write this run's S7/S8, or its S1-S4/C1, into the existing docs/BENCHMARKS.*
 *        and keep the rest)
 *        --no-doc --cpu-prof (ours writes a .cpuprofile)
 *        --logs (managers' stdout to bench-results/logs-<start>/)
 *        --node-args="--max-old-space-size=256" (extra V8 flags for ours, after OURS_NODE_FLAGS)
 *        --ours-args="--max-adaptive-batch-period=0s" (extra flags for ours in S1-S4 and C1)
 *        --report-only=bench-results/X.json (only re-render docs/BENCHMARKS.md from a run)
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { findAssets, pinnedVersions, startControlPlane } from '../shared/localcontrolplane/index.ts';
import { startCutProxy, type CutProxy } from '../test/integration/helpers/cutproxy.ts';
import { FLAGS } from '../shared/config.ts';
import { managerOrder } from './aggregate.ts';
import { mergeIntoDocs } from './docsmerge.ts';
import { ApiMeter, diff, totalWrites, type Counts, type Reads } from './apimeter.ts';
import { ConvergenceWatch, type Comparison } from './compare.ts';
import { measureFloor, progressBins, type FloorCalibration } from './floor.ts';
import {
  ALLOCATION_SCENARIOS,
  runAdmissionUnderLoad,
  runAllocationThroughput,
  type AdmissionResult,
  type AllocationResult,
} from './allocation.ts';
import {
  LagSampler,
  OURS_NODE_FLAGS,
  ProcSampler,
  startManager,
  withCleanup,
  type ManagerKind,
  type Settings,
} from './processes.ts';
import {
  LB_BURST,
  LB_POOLS,
  LB_QPS,
  LB_SCENARIOS,
  LB_SERVICE_RANGE,
  LB_SIDES,
  metallbDir,
  metallbVersion,
  runLoadBalancerSide,
  type LbSide,
  type LoadBalancerRun,
} from './loadbalancer.ts';
import {
  renderAllocationSections,
  renderEndpointSections,
  renderLoadBalancerSections,
  renderMarkdown,
} from './report.ts';
import { type LatencySummary, summarize } from './stats.ts';
import {
  FLIP_QUIET_MAX_MS,
  FLIP_QUIET_MS,
  FLIP_TIMEOUT_MS,
  SCENARIOS,
  singlePodFlipCount,
  singlePodFlipPlan,
  type Scenario,
} from './scenarios.ts';
import { Model, WorkloadWriter } from './workload.ts';

export interface ScenarioResult {
  scenario: string;
  title: string;
  manager: ManagerKind;
  workloadSeconds: number;
  /**
   * Workload writes completed per PROGRESS_BIN_MS from the scenario's start (floor.ts
   * `progressBins`; absent in older runs): the pace the fair floor makes writes due at.
   */
  workloadProgress?: number[];
  /** From the last workload write until the watch event after which the objects equal the model. */
  convergeSeconds: number;
  writes: Counts;
  totalWrites: number;
  peakRssBytes: number;
  cpuSeconds: number;
  eventLoopLagP99Seconds?: number;
  /** Scenarios with `timesReadiness`: each status write until both objects showed it. */
  readinessLatency?: LatencySummary;
  /** LIST / WATCH requests and bytes during the scenario (API server meter; absent in older runs). */
  reads?: Reads;
  /** Scenarios with `cutConnectionsEveryMs`: connections the proxy cut. */
  connectionsCut?: number;
  comparison: Comparison;
  /** Which repeat of `--repeat` this is, from 1 (absent in older runs, which had one). */
  repeat?: number;
  /**
   * Scenarios with `singlePodFlips` (S1, S3): the flips after the figures above were taken, which
   * take in none of them (absent in older runs).
   */
  singlePodFlips?: SinglePodFlips;
}

/** Single-pod Ready flips on one Service, one at a time, after a scenario's own figures. */
export interface SinglePodFlips {
  service: string;
  /** Flips written (pairs: not ready, then ready again). */
  flips: number;
  /** Flips not shown within `FLIP_TIMEOUT_MS` (left out of `latency`). */
  unseen: number;
  /** Each flip from issuing its status write until both the Endpoints and the slices showed it. */
  latency: LatencySummary;
  /** Controllers' writes from the first flip until the watch was quiet after the last. */
  writes: Counts;
  totalWrites: number;
  /** Wall time of the flips, the pauses between them included. */
  seconds: number;
  /** Whether the objects equalled the model again afterwards (so the next scenario starts right). */
  settled: boolean;
}

/** One repeat of the endpoint scenarios. */
export interface RepeatInfo {
  repeat: number;
  /** The order the managers ran in, in every session of the repeat. */
  managers: ManagerKind[];
}

export interface BenchRun {
  startedAt: string;
  durationSeconds: number;
  command: string;
  machine: { cpus: number; cpuModel: string; memoryBytes: number; node: string };
  versions: { kubernetes: string; etcd: string; ours: string };
  settings: Settings;
  /**
   * Ours' pod-event batching in S1-S4 and C1: the adaptive window's longest wait (its default, or
   * what `--ours-args` set). Absent in runs before it existed.
   */
  oursAdaptiveBatch?: string;
  /** The endpoint scenarios (S1-S4, C1): every repeat's, each result with its `repeat`. */
  results: ScenarioResult[];
  /** `--repeat`: the repeats of the endpoint scenarios (absent in older runs: one repeat). */
  repeats?: RepeatInfo[];
  /** S5, one per allocator (absent in older runs). */
  allocation?: AllocationResult[];
  /** S6 (absent in older runs). */
  admission?: AdmissionResult[];
  /**
   * When S5/S6 come from another run than the rest (merged by hand into one report): that run.
   */
  allocationRun?: { startedAt: string; durationSeconds: number; command: string };
  /** Measured when an endpoint scenario ran. */
  floor?: FloorCalibration;
  /** S7 and S8, one entry per side (absent in older runs). */
  loadBalancer?: LoadBalancerRun;
  /** When S7/S8 come from another run than the rest (`--merge-docs`): that run. */
  loadBalancerRun?: { startedAt: string; durationSeconds: number; command: string };
}

function flag(name: string, fallback: string): string {
  const hit = process.argv.find((a) => a.startsWith(`--${name}=`));
  return hit ? hit.slice(name.length + 3) : fallback;
}

/**
 * `count` single-pod flips of `service` (`singlePodFlipPlan`), one at a time: write the status,
 * wait until the Endpoints and the slices show it, wait for the watch to be quiet, next. The pods
 * are ones the Endpoints lists as ready: above 1000 pods it holds 1000 of them, and a flip of a
 * pod it does not list would not need an Endpoints write at all.
 */
async function runSinglePodFlips(
  w: WorkloadWriter,
  watch: ConvergenceWatch,
  meter: ApiMeter,
  model: Model,
  service: string,
  count: number,
  seed: number,
): Promise<SinglePodFlips> {
  const listed = watch.listedReady(service);
  const plan = singlePodFlipPlan(
    model.podsOf(service).filter((p) => p.ready && listed.has(p.ip)),
    count,
    seed,
  );
  const before = await meter.read();
  const started = Date.now();
  const latencies: number[] = [];
  let unseen = 0;
  for (const pod of plan) {
    let shown: Promise<number | undefined> = Promise.resolve(undefined);
    // The probe is registered as the write is issued, so its time starts where S4's do.
    w.onStatusWrite = (p, issuedAt) => {
      shown = watch.expectReadiness(p.service, p.ip, p.ready, issuedAt);
    };
    pod.ready = !pod.ready;
    try {
      await w.status(pod);
    } finally {
      w.onStatusWrite = undefined;
    }
    let timer: NodeJS.Timeout | undefined;
    const seconds = await Promise.race([
      shown,
      new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), FLIP_TIMEOUT_MS))),
    ]);
    clearTimeout(timer);
    if (seconds === undefined) {
      unseen++;
      watch.settleProbes();
    } else {
      latencies.push(seconds);
    }
    await watch.quiet(FLIP_QUIET_MS, FLIP_QUIET_MAX_MS);
  }
  // A longer quiet before the meter is read: the next scenario's figures start after the flips' last write.
  await watch.quiet(1000, 10_000);
  const settled = (await watch.until(model, 60_000)).comparison.ok;
  const writes = diff(await meter.read(), before);
  return {
    service,
    flips: plan.length,
    unseen,
    latency: summarize(latencies),
    writes,
    totalWrites: totalWrites(writes),
    seconds: (Date.now() - started) / 1000,
    settled,
  };
}

interface SessionOptions {
  settings: Settings;
  nodeArgs: string[];
  /** Extra flags for ours (`--ours-args`), after the shared ones: to measure one setting against another. */
  oursArgs: string[];
  scale: number;
  logDir: string | undefined;
  /** This session's repeat (from 1) and how many there are. */
  repeat: number;
  repeats: number;
}

async function runSession(
  kind: ManagerKind,
  scenarios: readonly Scenario[],
  { settings, nodeArgs, oursArgs, scale, logDir, repeat, repeats }: SessionOptions,
): Promise<ScenarioResult[]> {
  // One repeat keeps the names of before `--repeat`; more tell the repeats apart.
  const label = repeats > 1 ? ` (repeat ${repeat}/${repeats})` : '';
  return withCleanup(async (cleanup) => {
    const cp = await startControlPlane();
    cleanup.defer(() => cp.stop());
    const meter = new ApiMeter(cp);
    cleanup.defer(() => meter.close());
    const results: ScenarioResult[] = [];
    // The manager reaches the API server through a proxy when a scenario cuts its connections.
    let kubeconfig = cp.kubeconfigPath;
    let proxy: CutProxy | undefined;
    if (scenarios.some((s) => s.cutConnectionsEveryMs !== undefined)) {
      const started = await startCutProxy(cp.apiServerUrl);
      cleanup.defer(() => started.close());
      proxy = started;
      kubeconfig = join(cp.dir, 'through-proxy.kubeconfig');
      writeFileSync(kubeconfig, started.kubeConfigThrough(cp.kubeConfig).exportConfig(), { mode: 0o600 });
    }
    const watch = await ConvergenceWatch.start(cp.kubeConfig);
    cleanup.defer(() => watch.stop());
    const w = new WorkloadWriter(cp.kubeConfig);
    await w.namespace();
    const logPath =
      logDir === undefined
        ? undefined
        : join(
            logDir,
            `${kind}-${scenarios.map((x) => x.id).join('')}${repeats > 1 ? `-r${repeat}` : ''}.log`,
          );
    const manager = await startManager(kind, cp, settings, {
      nodeArgs: kind === 'ours' ? nodeArgs : [],
      extraArgs: kind === 'ours' ? oursArgs : [],
      logPath,
      kubeconfigPath: kubeconfig,
    });
    cleanup.defer(() => manager.stop());
    // Ready when a probe Service gets its Endpoints: caches synced, controllers running.
    const probe = new Model();
    await w.services(probe, ['probe']);
    const ready = await watch.until(probe, 120_000);
    if (!ready.comparison.ok)
      throw new Error(`${kind} did not start: ${ready.comparison.differences.join('; ')}`);

    const model = new Model();
    model.services.add('probe');
    for (const scenario of scenarios) {
      process.stderr.write(`[bench] ${kind} ${scenario.id}${label}: ${scenario.title}\n`);
      const before = await meter.read();
      const readsBefore = await meter.reads();
      const cutsBefore = proxy?.cuts ?? 0;
      const cutter =
        scenario.cutConnectionsEveryMs !== undefined && proxy
          ? setInterval(() => proxy?.cutAll(), scenario.cutConnectionsEveryMs)
          : undefined;
      cleanup.defer(() => clearInterval(cutter));
      const sampler = new ProcSampler(manager.pid);
      cleanup.defer(() => sampler.stop());
      const lag = new LagSampler(manager.metricsUrl);
      cleanup.defer(() => lag.stop());
      const started = Date.now();
      const readiness: Promise<number | undefined>[] = [];
      w.onStatusWrite = scenario.timesReadiness
        ? (pod, issuedAt) => readiness.push(watch.expectReadiness(pod.service, pod.ip, pod.ready, issuedAt))
        : undefined;
      await scenario.run(w, model, scale);
      clearInterval(cutter);
      w.onStatusWrite = undefined;
      const lastWrite = w.lastWriteAt;
      const converged = await watch.until(model, 600_000);
      watch.settleProbes();
      const readinessLatencies = (await Promise.all(readiness)).filter((x): x is number => x !== undefined);
      const maxLag = await lag.stop();
      const stats = sampler.stop();
      const writes = diff(await meter.read(), before);
      const readsAfter = await meter.reads();
      const reads: Reads = {
        lists: readsAfter.lists - readsBefore.lists,
        listBytes: readsAfter.listBytes - readsBefore.listBytes,
        watches: readsAfter.watches - readsBefore.watches,
        watchEventBytes: readsAfter.watchEventBytes - readsBefore.watchEventBytes,
      };
      const result: ScenarioResult = {
        scenario: scenario.id,
        title: scenario.title,
        manager: kind,
        workloadSeconds: (lastWrite - started) / 1000,
        workloadProgress: progressBins(w.writeTimes, started),
        convergeSeconds: Math.max(0, converged.at - lastWrite) / 1000,
        writes,
        totalWrites: totalWrites(writes),
        peakRssBytes: stats.peakRssBytes,
        cpuSeconds: stats.cpuSeconds,
        ...(kind === 'ours' ? { eventLoopLagP99Seconds: maxLag } : {}),
        ...(scenario.timesReadiness ? { readinessLatency: summarize(readinessLatencies) } : {}),
        reads,
        ...(proxy && scenario.cutConnectionsEveryMs !== undefined
          ? { connectionsCut: proxy.cuts - cutsBefore }
          : {}),
        comparison: converged.comparison,
        repeat,
      };
      process.stderr.write(
        `[bench] ${kind} ${scenario.id}${label}: converged ${result.convergeSeconds.toFixed(2)} s after the last write ` +
          `(${result.comparison.ok ? 'ok' : result.comparison.differences.join('; ')}), ` +
          `${result.totalWrites} writes, peak RSS ${(stats.peakRssBytes / 2 ** 20).toFixed(0)} MiB, ` +
          `CPU ${stats.cpuSeconds.toFixed(1)} s` +
          (result.readinessLatency
            ? `, readiness p50 ${(result.readinessLatency.p50Seconds * 1000).toFixed(1)} ms ` +
              `p99 ${(result.readinessLatency.p99Seconds * 1000).toFixed(1)} ms`
            : '') +
          `, ${reads.lists} LISTs (${(reads.listBytes / 2 ** 20).toFixed(1)} MiB), ${reads.watches} WATCHes` +
          (result.connectionsCut !== undefined ? `, ${result.connectionsCut} connections cut` : '') +
          '\n',
      );
      // After the figures above, so they take in none of the flips' writes, CPU or memory.
      if (scenario.singlePodFlips !== undefined) {
        const f = await runSinglePodFlips(
          w,
          watch,
          meter,
          model,
          scenario.singlePodFlips.service,
          singlePodFlipCount(scale),
          scenario.singlePodFlips.seed,
        );
        result.singlePodFlips = f;
        process.stderr.write(
          `[bench] ${kind} ${scenario.id}${label}: ${f.flips} single-pod flips in ${f.seconds.toFixed(1)} s, ` +
            `p50 ${(f.latency.p50Seconds * 1000).toFixed(1)} ms p99 ${(f.latency.p99Seconds * 1000).toFixed(1)} ms ` +
            `max ${(f.latency.maxSeconds * 1000).toFixed(1)} ms, ${f.unseen} not shown, ${f.totalWrites} writes` +
            (f.settled ? '' : ', the objects did NOT match the model afterwards') +
            '\n',
        );
      }
      results.push(result);
    }
    return results;
  });
}

/**
 * Runs of before the rename (the connection-cut scenario was S5, now C1) read as today's, so
 * `--report-only` of an older JSON does not show the resilience scenario under S5's name.
 */
function migrate(run: BenchRun): BenchRun {
  for (const r of run.results) {
    if (r.scenario === 'S5' && (r.connectionsCut !== undefined || r.title.startsWith('watch disconnects')))
      r.scenario = 'C1';
  }
  return run;
}

async function main(): Promise<void> {
  const reportOnly = flag('report-only', '');
  if (reportOnly !== '') {
    writeDocs(migrate(JSON.parse(readFileSync(reportOnly, 'utf8')) as BenchRun));
    return;
  }
  const startedAt = new Date();
  const settings: Settings = {
    qps: Number(flag('qps', '100')),
    burst: Number(flag('burst', '100')),
    workers: Number(flag('workers', '5')),
    batchPeriod: flag('batch-period', '0s'),
  };
  const scale = Number(flag('scale', '1'));
  const repeatCount = Number(flag('repeat', '1'));
  if (!Number.isInteger(repeatCount) || repeatCount < 1)
    throw new Error(`--repeat wants a whole number of at least 1, not ${flag('repeat', '1')}`);
  const wanted = new Set(flag('scenarios', 'S1,S3,S2,S4,C1,S5,S6,S7,S8').split(','));
  const known = [
    ...SCENARIOS.map((s) => s.id),
    ...ALLOCATION_SCENARIOS.map((s) => s.id),
    ...LB_SCENARIOS.map((s) => s.id),
  ];
  const unknown = [...wanted].filter((id) => !known.includes(id));
  if (unknown.length > 0) {
    throw new Error(`unknown scenario(s) ${unknown.join(', ')}; known: ${known.join(', ')}`);
  }
  const managers = flag('managers', 'ours,kube-controller-manager').split(',') as ManagerKind[];
  const nodeArgs = [
    ...OURS_NODE_FLAGS,
    ...flag('node-args', '')
      .split(' ')
      .filter((a) => a !== ''),
    ...(process.argv.includes('--cpu-prof') ? ['--cpu-prof', '--cpu-prof-dir=bench-results'] : []),
  ];
  const oursArgs = flag('ours-args', '')
    .split(' ')
    .filter((a) => a !== '');
  // --logs: each manager's stdout (our JSON log, V8 traces) in bench-results/logs-<start>/.
  const logDir = process.argv.includes('--logs')
    ? join('bench-results', `logs-${startedAt.toISOString().replace(/[:.]/g, '-')}`)
    : undefined;
  if (logDir !== undefined) mkdirSync(logDir, { recursive: true });
  const lbSides = flag('lb-sides', LB_SIDES.join(',')).split(',') as LbSide[];
  const badSides = lbSides.filter((x) => !LB_SIDES.includes(x));
  if (badSides.length > 0)
    throw new Error(`unknown --lb-sides ${badSides.join(', ')}; known: ${LB_SIDES.join(', ')}`);
  const wantsLb = wanted.has('S7') || wanted.has('S8');
  if (wantsLb && lbSides.includes('metallb') && !existsSync(join(metallbDir(), 'controller'))) {
    throw new Error(`no MetalLB controller in ${metallbDir()}: run \`make metallb-controller\``);
  }
  const endpointScenarios = SCENARIOS.filter((s) => wanted.has(s.id));
  if (
    endpointScenarios.length > 0 &&
    managers.includes('kube-controller-manager') &&
    !findAssets().kubeControllerManager
  ) {
    throw new Error('no kube-controller-manager binary: run `make kube-controller-manager`');
  }

  const results: ScenarioResult[] = [];
  const repeats: RepeatInfo[] = [];
  if (endpointScenarios.length > 0) {
    for (let repeat = 1; repeat <= repeatCount; repeat++) {
      const order = managerOrder(managers, repeat);
      repeats.push({ repeat, managers: order });
      for (const session of ['A', 'B', 'C'] as const) {
        const scenarios = endpointScenarios.filter((s) => s.session === session);
        if (scenarios.length === 0) continue;
        for (const kind of order)
          results.push(
            ...(await runSession(kind, scenarios, {
              settings,
              nodeArgs,
              oursArgs,
              scale,
              logDir,
              repeat,
              repeats: repeatCount,
            })),
          );
      }
    }
  }
  // S5-S8 run once: their tables show one run per side, not medians (their sections say so).
  if (repeatCount > 1 && [...wanted].some((id) => !SCENARIOS.some((x) => x.id === id)))
    process.stderr.write('[bench] --repeat applies to S1-S4 and C1; S5-S8 run once\n');
  const sessionOptions = { settings, nodeArgs, scale, logDir };
  const allocation: AllocationResult[] = [];
  if (wanted.has('S5')) {
    for (const mode of ['ours', 'built-in'] as const)
      allocation.push(await runAllocationThroughput(mode, sessionOptions));
  }
  const admission: AdmissionResult[] = [];
  if (wanted.has('S6')) {
    // --s6-baseline: S6's load once more with the built-in allocator (not part of `make bench`).
    for (const mode of process.argv.includes('--s6-baseline')
      ? (['ours', 'built-in'] as const)
      : (['ours'] as const))
      admission.push(await runAdmissionUnderLoad(mode, sessionOptions));
  }
  let loadBalancer: LoadBalancerRun | undefined;
  if (wantsLb) {
    loadBalancer = {
      qps: LB_QPS,
      burst: LB_BURST,
      serviceClusterIpRange: LB_SERVICE_RANGE,
      pools: LB_POOLS,
      metallbVersion: metallbVersion(),
      sides: [],
    };
    for (const side of lbSides)
      loadBalancer.sides.push(
        await runLoadBalancerSide(side, { nodeArgs, scale, logDir, s8: wanted.has('S8') }),
      );
  }
  let floor: FloorCalibration | undefined;
  if (results.length > 0) {
    process.stderr.write('[bench] floor: a bare client loop at the same QPS/burst\n');
    floor = await measureFloor(settings);
  }

  const versions = pinnedVersions();
  const { VERSION } = await import('../shared/version.ts');
  const run: BenchRun = {
    startedAt: startedAt.toISOString(),
    durationSeconds: Math.round((Date.now() - startedAt.getTime()) / 1000),
    command: `make bench ARGS="${process.argv.slice(2).join(' ')}"`.replace(' ARGS=""', ''),
    machine: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? '',
      memoryBytes: totalmem(),
      node: process.version,
    },
    versions: { kubernetes: versions.kubernetes, etcd: versions.etcd, ours: VERSION },
    settings,
    oursAdaptiveBatch:
      oursArgs
        .filter((a) => a.startsWith('--max-adaptive-batch-period='))
        .map((a) => a.split('=')[1])
        .at(-1) ?? FLAGS.find((f) => f.name === 'max-adaptive-batch-period')?.default,
    results,
    ...(repeats.length > 0 ? { repeats } : {}),
    ...(allocation.length > 0 ? { allocation } : {}),
    ...(admission.length > 0 ? { admission } : {}),
    ...(floor ? { floor } : {}),
    ...(loadBalancer ? { loadBalancer } : {}),
  };
  mkdirSync('bench-results', { recursive: true });
  const file = join('bench-results', `${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify(run, null, 2)}\n`);
  process.stderr.write(`[bench] wrote ${file}\n`);
  if (results.length > 0) process.stdout.write(renderEndpointSections(run));
  if (allocation.length > 0 || admission.length > 0) process.stdout.write(renderAllocationSections(run));
  if (loadBalancer) process.stdout.write(renderLoadBalancerSections(run));
  if (process.argv.includes('--no-doc')) return;
  writeDocs(
    process.argv.includes('--merge-docs')
      ? mergeIntoDocs(
          run,
          migrate(JSON.parse(readFileSync(join('docs', 'BENCHMARKS.json'), 'utf8')) as BenchRun),
        )
      : run,
  );
}

/** docs/BENCHMARKS.md and, beside it, the run's JSON (the one in bench-results/ is not committed). */
function writeDocs(run: BenchRun): void {
  writeFileSync(join('docs', 'BENCHMARKS.json'), `${JSON.stringify(run, null, 2)}\n`);
  writeFileSync(join('docs', 'BENCHMARKS.md'), renderMarkdown(run, 'docs/BENCHMARKS.json'));
  process.stderr.write('[bench] wrote docs/BENCHMARKS.md and docs/BENCHMARKS.json\n');
}

await main();
