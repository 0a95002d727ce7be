/**
 * Runs the real manager (cmd/manager.ts `main`) in this process against a control plane, with its
 * metrics and probes on random loopback ports, and reads its Prometheus metrics back over HTTP.
 */
import { main } from '../../../cmd/manager.ts';
import type { ControlPlane } from '../../../shared/localcontrolplane/index.ts';
import { waitFor } from './wait.ts';

export interface RunningManager {
  metricsUrl: string;
  healthUrl: string;
  /** Sum of the samples of `name` whose labels include every given label. */
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  /** Waits until the named controller has nothing queued and nothing in flight. */
  waitIdle(controller: string): Promise<void>;
  /** Graceful stop; resolves with main's exit code. */
  stop(): Promise<number>;
}

function parseLabels(text: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!text) return out;
  for (const m of text.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) out[m[1]] = m[2];
  return out;
}

export async function scrape(
  url: string,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const text = await (await fetch(url)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const l = parseLabels(m[2]);
    if (Object.entries(labels).every(([k, v]) => l[k] === v)) sum += Number(m[3]);
  }
  return sum;
}

export async function startManager(cp: ControlPlane, extraArgs: string[] = []): Promise<RunningManager> {
  const stop = new AbortController();
  let addresses: { metricsAddress?: string; healthAddress?: string } | undefined;
  const exited = main({
    argv: [
      `--kubeconfig=${cp.kubeconfigPath}`,
      '--leader-elect=false',
      '--metrics-bind-address=127.0.0.1:0',
      '--health-probe-bind-address=127.0.0.1:0',
      '--kube-api-qps=0',
      `--log-format=${process.env.SCM_TEST_LOG ? 'text' : 'json'}`,
      `--v=${process.env.SCM_TEST_LOG ?? '0'}`,
      ...extraArgs,
    ],
    signal: stop.signal,
    onListening: (a) => (addresses = a),
  });
  let exitCode: number | undefined;
  void exited.then((c) => (exitCode = c));
  await waitFor(
    'the manager to listen',
    () =>
      addresses ??
      (exitCode !== undefined ? Promise.reject(new Error(`manager exited ${exitCode}`)) : undefined),
  );
  const metricsUrl = `http://${addresses!.metricsAddress}/metrics`;
  const healthUrl = `http://${addresses!.healthAddress}`;
  await waitFor('the manager to be ready', async () => (await fetch(`${healthUrl}/readyz`)).status === 200);
  const metric = (name: string, labels?: Record<string, string>): Promise<number> =>
    scrape(metricsUrl, name, labels);
  return {
    metricsUrl,
    healthUrl,
    metric,
    waitIdle: async (controller) => {
      await waitFor(`controller ${controller} to be idle`, async () => {
        const depth = await metric('workqueue_depth', { name: controller });
        const active = await metric('controller_runtime_active_workers', { controller });
        return depth === 0 && active === 0;
      });
    },
    stop: async () => {
      stop.abort();
      return exited;
    },
  };
}
