/**
 * Runs the image's entrypoint from a laid-out image (./layout.ts) the way the Deployment runs the
 * container: from the read-only root, as the image's user, with the image's environment only (no
 * KUBECONFIG or anything else of this process), HOME pointing to a folder that does not exist and
 * TMPDIR to a read-only one, since the Pod has readOnlyRootFilesystem and no writable volume.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import type { ImageLayout } from './layout.ts';

export interface ImageExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Set when the process could not be started at all (e.g. EACCES). */
  error?: Error;
}

export interface ImageProcess {
  readonly pid: number;
  /** The whole environment it runs with. */
  readonly env: Readonly<Record<string, string>>;
  /** What the process wrote so far, stdout and stderr interleaved. */
  output(): string;
  /** Settles when the process has exited. */
  readonly exited: Promise<ImageExit>;
  /** How it exited; undefined while it runs. */
  exitStatus(): ImageExit | undefined;
  /** SIGTERM, then SIGKILL after `graceMs` (default 10 s); resolves with how it exited. Idempotent. */
  stop(graceMs?: number): Promise<ImageExit>;
}

export interface StartImageOptions {
  /** Arguments after the ENTRYPOINT. */
  args: readonly string[];
  /** More environment on top of the image's and the HOME/TMPDIR above (e.g. KUBERNETES_SERVICE_HOST). */
  env?: Readonly<Record<string, string>>;
}

const running = new Set<ImageProcess>();
let exitHookInstalled = false;

export function startImage(layout: ImageLayout, opts: StartImageOptions): ImageProcess {
  const cmd = layout.command(opts.args);
  const env: Record<string, string> = {
    ...cmd.env,
    HOME: path.join(layout.readOnlyVolume(), 'home'),
    TMPDIR: layout.readOnlyVolume(),
    ...opts.env,
  };
  const child = spawn(cmd.command, cmd.args, {
    cwd: cmd.cwd,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(cmd.uid === undefined ? {} : { uid: cmd.uid }),
    ...(cmd.gid === undefined ? {} : { gid: cmd.gid }),
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  let exit: ImageExit | undefined;
  const exited = new Promise<ImageExit>((resolve) => {
    const settle = (e: ImageExit): void => {
      exit ??= e;
      running.delete(proc);
      resolve(exit);
    };
    child.on('error', (error) => settle({ code: null, signal: null, error }));
    child.on('exit', (code, signal) => settle({ code, signal }));
  });
  let stopping: Promise<ImageExit> | undefined;
  const proc: ImageProcess = {
    pid: child.pid ?? -1,
    env,
    output: () => out,
    exited,
    exitStatus: () => exit,
    stop(graceMs = 10_000) {
      stopping ??= (async () => {
        if (exit === undefined) {
          child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
          try {
            return await exited;
          } finally {
            clearTimeout(timer);
          }
        }
        return exited;
      })();
      return stopping;
    },
  };
  running.add(proc);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    // Never leave a manager behind, also when the caller crashed before stopping it.
    process.on('exit', () => {
      for (const p of running) {
        try {
          if (p.pid > 0) process.kill(p.pid, 'SIGKILL');
        } catch {
          // exited meanwhile
        }
      }
    });
  }
  return proc;
}
