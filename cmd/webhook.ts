/**
 * The admission webhook's worker thread (shared/admission/worker.ts says why it has one): the
 * Service webhook of cmd/servicewebhook.ts, started with the manager's flags and the ranges the
 * main thread resolved, relaying readiness, metrics and stop over the worker port.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { FromWorker, ToWorker, WebhookWorkerData } from '../shared/admission/worker.ts';
import { startServiceWebhook } from './servicewebhook.ts';

async function run(port: NonNullable<typeof parentPort>, data: WebhookWorkerData): Promise<void> {
  const post = (msg: FromWorker): void => port.postMessage(msg);
  const webhook = await startServiceWebhook(data, (ready, reason) => post({ type: 'ready', ready, reason }));
  post({ type: 'listening', address: webhook.address });
  port.on('message', (msg: ToWorker) => {
    if (msg.type === 'metrics') {
      void webhook.registry
        .getMetricsAsJSON()
        .then((metrics) => post({ type: 'metrics', id: msg.id, metrics }));
      return;
    }
    void webhook.stop().then(() => {
      post({ type: 'stopped' });
      port.close();
    });
  });
}

if (parentPort) {
  const port = parentPort;
  run(port, workerData as WebhookWorkerData).catch((err: unknown) => {
    port.postMessage({
      type: 'failed',
      message: err instanceof Error ? err.message : String(err),
    } satisfies FromWorker);
    port.close();
  });
}
