/**
 * The Service webhook itself: the parts of the enabled controllers, its own clients (no write
 * fence: every replica admits Services), its certificate and its HTTPS server. It runs in a
 * worker thread (cmd/webhook.ts; shared/admission/worker.ts says why) when an allocating
 * controller is enabled, and on the main thread otherwise (`InProcessWebhook`): the LoadBalancer
 * part alone only adds a finalizer, no I/O, and a second thread would cost the memory of a second
 * V8 isolate with its own copy of client-node (about 100 MiB).
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { AggregatorRegistry, Registry } from 'prom-client';
import { CONTROLLERS } from '../controllers/index.ts';
import { newClients } from './clients.ts';
import { SERVICE_WEBHOOK_PATH, ServiceAdmission } from '../controllers/serviceadmission.ts';
import { type CertSource, DirCertSource, SelfManagedCertSource } from '../shared/admission/certs.ts';
import { WebhookServer } from '../shared/admission/server.ts';
import type { WebhookWorkerData } from '../shared/admission/worker.ts';
import { IPRange, PortRange } from '../shared/allocator/ranges.ts';
import { realClock } from '../shared/clock.ts';
import { parseFlags, selectControllers, type Config } from '../shared/config.ts';
import type { NamedCheck } from '../shared/health.ts';
import type { KubeClient } from '../shared/kube/client.ts';
import { loadKubeConfig } from '../shared/kube/config.ts';
import { createLogger, defaultLogFormat, type Logger } from '../shared/log.ts';
import { USER_AGENT } from '../shared/version.ts';

/** The API server waits `timeoutSeconds` (10 s in manifests/webhook.yaml): deny before it gives up. */
const REQUEST_TIMEOUT_MS = 9000;

function certSource(config: Config, client: KubeClient, log: Logger): CertSource {
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

export interface RunningWebhook {
  /** `host:port` it serves on. */
  address: string;
  /** Its own metrics (the manager merges them into /metrics). */
  registry: Registry;
  /** Stops serving (requests in flight finish), then its informers and Events. */
  stop(): Promise<void>;
}

/** Starts the Service webhook; `onReady` says when its informers have synced. */
export async function startServiceWebhook(
  data: WebhookWorkerData,
  onReady: (ready: boolean, reason?: string) => void,
): Promise<RunningWebhook> {
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
    context: config.context || undefined,
    serviceAccountDir: config.serviceAccountDir,
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
  onReady(false, 'informers not synced');
  void informers.waitForSync(stop.signal).then(
    () => onReady(true),
    () => undefined,
  );
  return {
    address,
    registry,
    stop: async () => {
      log.info('stopping the webhook');
      await server.close();
      stop.abort();
      await informers.stopped();
      await events.flush();
    },
  };
}

/** The webhook on the main thread, with the worker host's checks and metrics. */
export class InProcessWebhook {
  private readonly data: WebhookWorkerData;
  private running: RunningWebhook | undefined;
  private readiness: { ready: boolean; reason?: string } = { ready: false, reason: 'starting' };

  constructor(data: WebhookWorkerData) {
    this.data = data;
  }

  async start(): Promise<string> {
    this.running = await startServiceWebhook(
      this.data,
      (ready, reason) => (this.readiness = { ready, reason }),
    );
    return this.running.address;
  }

  readyCheck(): NamedCheck {
    return {
      name: 'webhook',
      error: this.readiness.ready ? undefined : (this.readiness.reason ?? 'not ready'),
    };
  }

  healthCheck(): NamedCheck {
    return { name: 'webhook', error: this.running ? undefined : 'the webhook is not running' };
  }

  /** The main registry's metrics with the webhook's merged in. */
  async metrics(main: Registry): Promise<string> {
    const all = [await main.getMetricsAsJSON()];
    if (this.running) all.push(await this.running.registry.getMetricsAsJSON());
    return AggregatorRegistry.aggregate(all).metrics();
  }

  async stop(): Promise<void> {
    const running = this.running;
    this.running = undefined;
    await running?.stop();
  }
}
