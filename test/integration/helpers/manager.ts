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
  /**
   * Waits until no controller has a key queued, waiting out a delay (backoff, requeue, batch
   * period) or being reconciled, all read from one scrape (one instant of the manager).
   */
  waitIdle(): Promise<void>;
  /** Graceful stop; resolves with main's exit code. */
  stop(): Promise<number>;
}

function parseLabels(text: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!text) return out;
  for (const m of text.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) out[m[1]] = m[2];
  return out;
}

/** Every sample of `name` in one scrape of `url`, with its labels. */
export async function scrapeSamples(
  url: string,
  name: string,
): Promise<{ labels: Record<string, string>; value: number }[]> {
  const text = await (await fetch(url)).text();
  const out: { labels: Record<string, string>; value: number }[] = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (m && m[1] === name) out.push({ labels: parseLabels(m[2]), value: Number(m[3]) });
  }
  return out;
}

export async function scrape(
  url: string,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  return (await scrapeSamples(url, name))
    .filter((x) => Object.entries(labels).every(([k, v]) => x.labels[k] === v))
    .reduce((sum, x) => sum + x.value, 0);
}

export async function startManager(cp: ControlPlane, extraArgs: string[] = []): Promise<RunningManager> {
  const stop = new AbortController();
  let addresses: { metricsAddress?: string; healthAddress?: string } | undefined;
  const exited = main({
    argv: [
      `--kubeconfig=${cp.kubeconfigPath}`,
      '--leader-elect=false',
      '--metrics-bind-address=127.0.0.1:0',
      '--metrics-secure=false',
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
    waitIdle: async () => {
      await waitFor('every controller to be idle', async () => {
        const samples = await scrapeSamples(metricsUrl, 'service_controller_manager_unfinished_keys');
        // Every controller reports, so an empty scrape is not idle.
        return samples.length > 0 && samples.every((x) => x.value === 0);
      });
    },
    stop: async () => {
      stop.abort();
      return exited;
    },
  };
}
