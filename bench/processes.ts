/**
 * The two controller-managers as child processes with the same settings, and what we measure of
 * them: peak RSS and CPU seconds from /proc (the same meter for both), and for ours the event-loop
 * lag p99 from its /metrics.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findAssets } from '../shared/localcontrolplane/index.ts';
import { freePorts, type ControlPlane } from '../shared/localcontrolplane/index.ts';

export type ManagerKind = 'ours' | 'kube-controller-manager';

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
  stop(): Promise<void>;
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

function sharedFlags(s: Settings): string[] {
  return [
    `--controllers=${CONTROLLERS}`,
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
  extraNodeArgs: string[] = [],
  logPath?: string,
  /** Its kubeconfig; default the control plane's admin kubeconfig. */
  kubeconfigPath: string = cp.kubeconfigPath,
): Promise<RunningManager> {
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
        ...extraNodeArgs,
        oursEntry(),
        `--kubeconfig=${kubeconfigPath}`,
        `--metrics-bind-address=127.0.0.1:${port}`,
        '--health-probe-bind-address=0',
        '--log-format=json',
        ...sharedFlags(s),
      ],
      { stdio: ['ignore', stdout, logFd ?? 'pipe'] },
    );
  } else {
    const bin = join(findAssets().dir, 'kube-controller-manager');
    child = spawn(bin, [`--kubeconfig=${kubeconfigPath}`, '--secure-port=0', '--v=0', ...sharedFlags(s)], {
      stdio: ['ignore', stdout, logFd ?? 'pipe'],
    });
  }
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
  return {
    kind,
    pid,
    metricsUrl,
    stop: async () => {
      if (child.exitCode !== null) {
        throw new Error(`${kind} exited early (${child.exitCode}): ${stderr.join('').slice(-2000)}`);
      }
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
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
