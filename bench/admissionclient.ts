/**
 * S6's steady Service creator, run in a worker thread of the bench (allocation.ts starts it): on
 * its own event loop, so the client-side create latencies it takes do not include the time the
 * harness's main thread spends on the workload writer and the comparator. It creates at the rate
 * asked until the main thread posts 'stop' (and at least `minCreates` were sent), then posts back
 * every create's timing and its own event-loop delay p99.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parentPort, workerData } from 'node:worker_threads';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { KubeClient } from '../shared/kube/client.ts';
import { createSteadily, type CreateTiming, type SteadyOptions } from './servicecreates.ts';

export interface CreatorData extends SteadyOptions {
  kubeconfigPath: string;
}

export type CreatorMessage =
  { type: 'done'; timings: CreateTiming[]; lagP99Seconds: number } | { type: 'error'; message: string };

async function run(port: NonNullable<typeof parentPort>, data: CreatorData): Promise<void> {
  let stopped = false;
  port.on('message', (m) => {
    if (m === 'stop') stopped = true;
  });
  const kc = new KubeConfig();
  kc.loadFromFile(data.kubeconfigPath);
  // No client-side limit: the rate is the scenario's.
  const client = new KubeClient(kc, { qps: 0, burst: 0, userAgent: 'bench-admission-client' });
  const lag = monitorEventLoopDelay({ resolution: 10 });
  lag.enable();
  const timings = await createSteadily(client.api(CoreV1Api), data, () => stopped);
  lag.disable();
  const message: CreatorMessage = { type: 'done', timings, lagP99Seconds: lag.percentile(99) / 1e9 };
  port.postMessage(message);
}

if (parentPort) {
  const port = parentPort;
  run(port, workerData as CreatorData).catch((err: unknown) => {
    const message: CreatorMessage = {
      type: 'error',
      message: err instanceof Error ? (err.stack ?? err.message) : String(err),
    };
    port.postMessage(message);
  });
}
