/**
 * The two controller-managers as child processes with the same settings, and what we measure of
 * them: peak RSS and CPU seconds from /proc (the same meter for both), and for ours the event-loop
 * lag p99 from its /metrics. Every manager started here is SIGKILLed when the bench process exits,
 * also after a failure or a signal (the control plane's own exit hook does the same for etcd and
 * kube-apiserver); `withCleanup` stops what a session started, in reverse order, on every path.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findAssets } from '../shared/localcontrolplane/index.ts';
import { freePorts, type ControlPlane } from '../shared/localcontrolplane/index.ts';

export type ManagerKind = 'ours' | 'kube-controller-manager' | 'metallb';

export interface Settings {
  qps: number;
  burst: number;
  workers: number;
  batchPeriod: string;
}

export interface RunningManager {
  kind: ManagerKind;
  pid: number;
  metricsUrl?: string;
  /** Undefined while it runs; once it has exited, how (with the tail of its stderr). */
  exited(): string | undefined;
  /** SIGTERM (SIGKILL after 15 s); throws when it had already exited on its own. */
  stop(): Promise<void>;
}

export interface ManagerOptions {
  /** Extra V8 flags for ours (before the entry point). */
  nodeArgs?: readonly string[];
  /** stdout and stderr to this file (appended). */
  logPath?: string;
  /** Its kubeconfig; default the control plane's admin kubeconfig. */
  kubeconfigPath?: string;
  /** `--controllers`; default CONTROLLERS. */
  controllers?: string;
  /** More flags, after the shared ones (ours only: e.g. the webhook's). */
  extraArgs?: readonly string[];
  /** metallb: the controller binary (hack/build-metallb.sh) and its `--namespace`. */
  metallb?: { binary: string; namespace: string };
}

/** Managers still running: killed when the bench process exits, however it exits. */
const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function track(child: ChildProcess): void {
  live.add(child);
  child.once('exit', () => live.delete(child));
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => {
      for (const c of live) c.kill('SIGKILL');
    });
  }
}

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
export const CONTROLLERS = 'endpoint,endpointslice,endpointslicemirroring';
/**
 * The V8 flags ours runs with in production (Dockerfile ENTRYPOINT); keep the two equal. Sized for
 * the Deployment's 512Mi memory limit: a 256 MiB old generation and 16 MiB semi-spaces. Without
 * them V8 sizes its heap from the machine's memory and lets garbage pile up (S1 peak RSS 503 MiB
 * without; with the old-space cap alone the young generation still takes 128 MiB; PERFORMANCE.md).
 */
export const OURS_NODE_FLAGS: readonly string[] = ['--max-old-space-size=256', '--max-semi-space-size=16'];

function sharedFlags(s: Settings, controllers: string): string[] {
  return [
    `--controllers=${controllers}`,
    '--leader-elect=false',
    `--kube-api-qps=${s.qps}`,
    `--kube-api-burst=${s.burst}`,
    `--concurrent-endpoint-syncs=${s.workers}`,
    `--concurrent-service-endpoint-syncs=${s.workers}`,
    `--mirroring-concurrent-service-endpoint-syncs=${s.workers}`,
    `--endpoint-updates-batch-period=${s.batchPeriod}`,
    `--endpointslice-updates-batch-period=${s.batchPeriod}`,
    `--mirroring-endpointslice-updates-batch-period=${s.batchPeriod}`,
  ];
}

/**
 * Where ours runs from: this checkout's dist/ (or sources with BENCH_FROM_SOURCE=1), or, with
 * BENCH_OURS_DIR=<another checkout>, that checkout's cmd/manager.ts (an earlier commit, to
 * measure a change before and after).
 */
function oursEntry(): string {
  const other = process.env.BENCH_OURS_DIR;
  if (other) return join(other, 'cmd/manager.ts');
  return join(ROOT, process.env.BENCH_FROM_SOURCE ? 'cmd/manager.ts' : 'dist/cmd/manager.js');
}

export async function startManager(
  kind: ManagerKind,
  cp: ControlPlane,
  s: Settings,
  opts: ManagerOptions = {},
): Promise<RunningManager> {
  const { logPath, kubeconfigPath = cp.kubeconfigPath, controllers = CONTROLLERS } = opts;
  let child: ChildProcess;
  // stdout and stderr (our JSON log) to a file when asked (e.g. `--node-args=--trace-gc`);
  // otherwise stderr's tail is kept for errors.
  const logFd = logPath === undefined ? undefined : openSync(logPath, 'a');
  const stdout = logFd ?? 'ignore';
  let metricsUrl: string | undefined;
  const stderr: string[] = [];
  if (kind === 'ours') {
    const [port] = await freePorts(1);
    metricsUrl = `http://127.0.0.1:${port}/metrics`;
    child = spawn(
      process.execPath,
      [
        ...(opts.nodeArgs ?? []),
        oursEntry(),
        `--kubeconfig=${kubeconfigPath}`,
        `--metrics-bind-address=127.0.0.1:${port}`,
        '--metrics-secure=false',
        '--health-probe-bind-address=0',
        '--log-format=json',
        ...sharedFlags(s, controllers),
        ...(opts.extraArgs ?? []),
      ],
      { stdio: ['ignore', stdout, logFd ?? 'pipe'] },
    );
  } else if (kind === 'metallb') {
    // MetalLB's controller as a new user runs it outside a cluster (the S7/S8 setup in
    // loadbalancer.ts): no webhook, no certificate rotation, the memberlist Secret it owns. Its
    // client runs at controller-runtime's defaults (QPS 20 / burst 30; it has no flag for them).
    if (!opts.metallb) throw new Error('metallb needs opts.metallb');
    const [port] = await freePorts(1);
    metricsUrl = `http://127.0.0.1:${port}/metrics`;
    child = spawn(
      opts.metallb.binary,
      [
        `--kubeconfig=${kubeconfigPath}`,
        `--namespace=${opts.metallb.namespace}`,
        '--webhook-mode=disabled',
        '--disable-cert-rotation',
        '--ml-secret-name=memberlist',
        '--deployment=controller',
        `--port=${port}`,
        ...(opts.extraArgs ?? []),
      ],
      { stdio: ['ignore', stdout, logFd ?? 'pipe'] },
    );
  } else {
    const bin = join(findAssets().dir, 'kube-controller-manager');
    child = spawn(
      bin,
      [`--kubeconfig=${kubeconfigPath}`, '--secure-port=0', '--v=0', ...sharedFlags(s, controllers)],
      { stdio: ['ignore', stdout, logFd ?? 'pipe'] },
    );
  }
  track(child);
  child.stderr?.on('data', (d: Buffer) => {
    stderr.push(d.toString());
    if (stderr.length > 200) stderr.shift();
  });
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      if (logFd !== undefined) closeSync(logFd);
      resolve(code);
    }),
  );
  if (child.pid === undefined) throw new Error(`${kind} did not start`);
  const pid = child.pid;
  const exitedHow = (): string | undefined =>
    child.exitCode === null && child.signalCode === null
      ? undefined
      : `${kind} exited early (${child.exitCode ?? child.signalCode}): ${stderr.join('').slice(-2000)}`;
  return {
    kind,
    pid,
    metricsUrl,
    exited: exitedHow,
    stop: async () => {
      const early = exitedHow();
      if (early !== undefined) throw new Error(early);
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** The p99 event-loop lag ours last published (`nodejs_eventloop_lag_p99_seconds`), seconds. */
export async function eventLoopLagP99(metricsUrl: string | undefined): Promise<number | undefined> {
  if (!metricsUrl) return undefined;
  try {
    const text = await (await fetch(metricsUrl)).text();
    const m = /^nodejs_eventloop_lag_p99_seconds (\S+)$/m.exec(text);
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The highest event-loop lag p99 ours shows while a scenario runs: sampled every 2 s (each sample
 * covers the time since the one before), and once more at `stop`.
 */
export class LagSampler {
  private max = 0;
  private readonly timer: NodeJS.Timeout;
  private readonly url: string | undefined;

  constructor(metricsUrl: string | undefined, everyMs = 2000) {
    this.url = metricsUrl;
    this.timer = setInterval(() => {
      void eventLoopLagP99(this.url).then((v) => (this.max = Math.max(this.max, v ?? 0)));
    }, everyMs);
    this.timer.unref();
  }

  /** Stops sampling (idempotent) and resolves with the highest sample, seconds. */
  async stop(): Promise<number> {
    clearInterval(this.timer);
    this.max = Math.max(this.max, (await eventLoopLagP99(this.url)) ?? 0);
    return this.max;
  }
}

/**
 * Runs `body` with a `Cleanup` it registers a stop for each thing it starts on: those run in
 * reverse order however `body` ends, each one even when one before it failed. The body's error
 * wins (cleanup errors are then only logged); after a successful body the first cleanup error is
 * thrown.
 */
export async function withCleanup<T>(body: (cleanup: Cleanup) => Promise<T>): Promise<T> {
  const cleanup = new Cleanup();
  let result: T;
  try {
    result = await body(cleanup);
  } catch (err) {
    for (const e of await cleanup.run()) warn(e);
    throw err;
  }
  const errors = await cleanup.run();
  for (const e of errors.slice(1)) warn(e);
  if (errors.length > 0) throw errors[0];
  return result;
}

function warn(err: unknown): void {
  process.stderr.write(`[bench] while stopping: ${err instanceof Error ? err.message : String(err)}\n`);
}

export class Cleanup {
  private readonly steps: (() => unknown)[] = [];

  /** Registers a stop step (sync or async). */
  defer(step: () => unknown): void {
    this.steps.push(step);
  }

  /** Runs the steps, last registered first; resolves with the errors they threw. */
  async run(): Promise<unknown[]> {
    const errors: unknown[] = [];
    for (const step of this.steps.splice(0).reverse()) {
      try {
        await step();
      } catch (err) {
        errors.push(err);
      }
    }
    return errors;
  }
}

/** Resident set size and CPU seconds (user + system) of a process, from /proc. */
export function procStats(pid: number): { rssBytes: number; cpuSeconds: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces): state is field 3; utime/stime 14/15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return { rssBytes: rssKb * 1024, cpuSeconds: ticks / 100 };
}

/** Samples a process every `everyMs` until stopped: peak RSS and the CPU used meanwhile. */
export class ProcSampler {
  peakRssBytes = 0;
  private readonly startCpu: number;
  private cpu = 0;
  private readonly timer: NodeJS.Timeout;
  private readonly pid: number;

  constructor(pid: number, everyMs = 250) {
    this.pid = pid;
    this.startCpu = procStats(pid).cpuSeconds;
    this.sample();
    this.timer = setInterval(() => this.sample(), everyMs);
    this.timer.unref();
  }

  private sample(): void {
    try {
      const s = procStats(this.pid);
      this.peakRssBytes = Math.max(this.peakRssBytes, s.rssBytes);
      this.cpu = s.cpuSeconds;
    } catch {
      // the process is gone; keep the last sample
    }
  }

  stop(): { peakRssBytes: number; cpuSeconds: number } {
    this.sample();
    clearInterval(this.timer);
    return { peakRssBytes: this.peakRssBytes, cpuSeconds: this.cpu - this.startCpu };
  }
}
