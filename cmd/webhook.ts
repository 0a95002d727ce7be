/**
 * The admission webhook's worker thread (shared/admission/worker.ts says why it has one): the
 * Service webhook with the parts of the enabled allocation controllers, its informers
 * (IPAddress objects), its certificate and its HTTPS server. Started by cmd/manager.ts with the
 * manager's flags and the ranges the main thread resolved.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { Registry } from 'prom-client';
import { CONTROLLERS } from '../controllers/index.ts';
import { newClients } from './clients.ts';
import { SERVICE_WEBHOOK_PATH, ServiceAdmission } from '../controllers/serviceadmission.ts';
import { type CertSource, DirCertSource, SelfManagedCertSource } from '../shared/admission/certs.ts';
import { WebhookServer } from '../shared/admission/server.ts';
import type { FromWorker, ToWorker, WebhookWorkerData } from '../shared/admission/worker.ts';
import { IPRange, PortRange } from '../shared/allocator/ranges.ts';
import { realClock } from '../shared/clock.ts';
import { parseFlags, selectControllers, type Config } from '../shared/config.ts';
import type { KubeClient } from '../shared/kube/client.ts';
import { loadKubeConfig } from '../shared/kube/config.ts';
import { createLogger, defaultLogFormat } from '../shared/log.ts';
import { USER_AGENT } from '../shared/version.ts';

/** The API server waits `timeoutSeconds` (10 s in manifests/webhook.yaml): deny before it gives up. */
const REQUEST_TIMEOUT_MS = 9000;

function certSource(config: Config, client: KubeClient, log: ReturnType<typeof createLogger>): CertSource {
  if (config.webhookCertDir) return new DirCertSource({ dir: config.webhookCertDir, clock: realClock, log });
  return new SelfManagedCertSource({
    client,
    namespace: config.webhookNamespace,
    secretName: config.webhookSecretName,
    webhookConfigurationName: config.webhookConfigurationName,
    hosts: [
      `${config.webhookServiceName}.${config.webhookNamespace}.svc`,
      `${config.webhookServiceName}.${config.webhookNamespace}.svc.cluster.local`,
      ...config.webhookCertHosts,
    ],
    clock: realClock,
    log,
  });
}

async function run(port: NonNullable<typeof parentPort>, data: WebhookWorkerData): Promise<void> {
  const post = (msg: FromWorker): void => port.postMessage(msg);
  const { config } = parseFlags(data.argv);
  const log = createLogger({
    format: config.logFormat === 'auto' ? defaultLogFormat() : config.logFormat,
    verbosity: config.verbosity,
  }).child({ component: 'webhook' });
  const clock = realClock;
  // No default Node metrics here: the main thread's already describe the process.
  const registry = new Registry();
  const loaded = loadKubeConfig({
    kubeconfig: config.kubeconfig || undefined,
    master: config.master || undefined,
  });
  // No write fence: every replica admits Services, and the maps are compare-and-swap objects.
  const { client, informers, events } = newClients(loaded.kubeConfig, config, {
    userAgent: `${USER_AGENT} webhook`,
    registry,
    clock,
    log,
  });
  const ctx = {
    client,
    informers,
    events,
    config,
    log,
    registry,
    clock,
    allocationRanges:
      data.clusterIPRanges && data.nodePortRange !== undefined
        ? {
            clusterIPs: data.clusterIPRanges.map((c) => new IPRange(c)),
            nodePorts: new PortRange(data.nodePortRange),
          }
        : undefined,
    holder: `${hostname()}_${randomUUID().slice(0, 8)}`,
  };
  const enabled = selectControllers(config.controllers, CONTROLLERS);
  const admission = new ServiceAdmission();
  for (const desc of CONTROLLERS) {
    if (desc.admission && enabled.includes(desc.name)) admission.add(desc.admission(ctx));
  }
  const stop = new AbortController();
  const certs = certSource(config, client, log);
  informers.start(stop.signal);
  await certs.start(stop.signal);
  const server = new WebhookServer({
    bindAddress: config.webhookBindAddress,
    certs,
    log,
    registry,
    clock,
    requestTimeoutMs: REQUEST_TIMEOUT_MS,
    handlers: new Map([[SERVICE_WEBHOOK_PATH, admission.handler(log)]]),
  });
  const address = await server.start();
  post({ type: 'listening', address });
  post({ type: 'ready', ready: false, reason: 'informers not synced' });
  void informers.waitForSync(stop.signal).then(
    () => post({ type: 'ready', ready: true }),
    () => undefined,
  );

  port.on('message', (msg: ToWorker) => {
    if (msg.type === 'metrics') {
      void registry.getMetricsAsJSON().then((metrics) => post({ type: 'metrics', id: msg.id, metrics }));
      return;
    }
    void (async () => {
      log.info('stopping the webhook');
      await server.close();
      stop.abort();
      await informers.stopped();
      await events.flush();
      post({ type: 'stopped' });
      port.close();
    })();
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
