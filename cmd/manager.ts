/**
 * service-controller-manager entry point: flags -> client -> informers -> controllers -> manager.
 *
 * Exit codes: 0 after a graceful stop (SIGTERM/SIGINT: stop taking work, finish in-flight syncs
 * while the Lease is still renewed, then release it), 1 when leadership was lost, start-up failed
 * or a second signal forced the exit, 2 for bad flags.
 */
import { hostname } from 'node:os';
import { CONTROLLERS } from '../controllers/index.ts';
import { newClients } from './clients.ts';
import { InProcessWebhook } from './servicewebhook.ts';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebhookWorkerHost } from '../shared/admission/worker.ts';
import { resolveAllocationRanges } from '../shared/allocator/clusterranges.ts';
import { type Clock, realClock } from '../shared/clock.ts';
import { type Config, FlagError, parseFlags, selectControllers, usage } from '../shared/config.ts';
import { Manager } from '../shared/controller/manager.ts';
import { DirCertSource } from '../shared/admission/certs.ts';
import { type MetricsSecurity, parseBindAddress, startServers } from '../shared/health.ts';
import type { KubeClient } from '../shared/kube/client.ts';
import { delegatedAuthorizer, KubeReviewer, selfSignedCertSource } from '../shared/metricsauth.ts';
import { loadKubeConfig } from '../shared/kube/config.ts';
import { KubeLeaseStore, LeaderElector } from '../shared/leaderelection.ts';
import { createLogger, defaultLogFormat, type Logger } from '../shared/log.ts';
import { createRegistry } from '../shared/metrics.ts';
import { USER_AGENT, VERSION } from '../shared/version.ts';

export interface MainOptions {
  argv: readonly string[];
  /**
   * Aborted to stop gracefully. Without it, main owns the process's signals: the first SIGTERM or
   * SIGINT stops gracefully, a second one exits at once (1).
   */
  signal?: AbortSignal;
  /** Called once the health/metrics (and webhook) servers listen (tests read the ports). */
  onListening?: (addresses: {
    metricsAddress?: string;
    healthAddress?: string;
    webhookAddress?: string;
  }) => void;
}

export async function main(opts: MainOptions): Promise<number> {
  let config: Config;
  try {
    const parsed = parseFlags(opts.argv);
    if (parsed.help) {
      process.stdout.write(usage() + '\n');
      return 0;
    }
    config = parsed.config;
  } catch (err) {
    if (err instanceof FlagError) {
      process.stderr.write(`error: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const log = createLogger({
    format: config.logFormat === 'auto' ? defaultLogFormat() : config.logFormat,
    verbosity: config.verbosity,
  });
  try {
    return await runManager(config, log, opts);
  } catch (err) {
    if (err instanceof FlagError) {
      process.stderr.write(`error: ${err.message}\n`);
      return 2;
    }
    log.error('start-up failed', err);
    return 1;
  }
}

async function runManager(config: Config, log: Logger, opts: MainOptions): Promise<number> {
  const enabled = selectControllers(config.controllers, CONTROLLERS);
  const loaded = loadKubeConfig({
    kubeconfig: config.kubeconfig || undefined,
    master: config.master || undefined,
    context: config.context || undefined,
    serviceAccountDir: config.serviceAccountDir,
  });
  const clock = realClock;
  const registry = createRegistry();
  const { client, eventsClient, informers, events } = newClients(loaded.kubeConfig, config, {
    userAgent: USER_AGENT,
    registry,
    clock,
    log,
  });
  const identity = `${hostname()}_${crypto.randomUUID()}`;
  const leaderElect = config.leaderElect ?? loaded.inCluster;
  const elector = leaderElect
    ? new LeaderElector({
        lockName: config.leaderElectResourceName,
        lockNamespace: config.leaderElectResourceNamespace,
        identity,
        leaseDurationMs: config.leaderElectLeaseDurationMs,
        renewDeadlineMs: config.leaderElectRenewDeadlineMs,
        retryPeriodMs: config.leaderElectRetryPeriodMs,
        clock,
        store: new KubeLeaseStore(
          client,
          config.leaderElectResourceNamespace,
          config.leaderElectResourceName,
        ),
        log,
      })
    : undefined;
  // With leader election every write (but the elector's own Lease writes) passes the fence.
  client.setWriteFence(elector);
  eventsClient.setWriteFence(elector);
  const manager = new Manager({
    log,
    clock,
    informers,
    elector,
    shutdownTimeoutMs: config.shutdownTimeoutMs,
    // Events recorded by the last reconciles go out while the fence is still open.
    beforeRelease: () => events.flush(),
  });
  const allocating = CONTROLLERS.some((d) => d.allocates && enabled.includes(d.name));
  const allocationRanges = allocating ? await resolveAllocationRanges(client, config, log) : undefined;
  const ctx = { client, informers, events, config, log, registry, clock, allocationRanges };
  for (const desc of CONTROLLERS) {
    if (enabled.includes(desc.name)) manager.add(desc.create(ctx));
  }
  // The Service webhook serves on every replica, leader or not: in its own worker thread when an
  // allocator answers there (its latency must not wait behind the controllers), else on this
  // thread (cmd/servicewebhook.ts says why).
  const admitting = CONTROLLERS.some((d) => d.admission && enabled.includes(d.name));
  const webhookData = {
    argv: [...opts.argv],
    clusterIPRanges: allocationRanges?.clusterIPs.map((r) => r.text),
    nodePortRange: allocationRanges?.nodePorts.text,
  };
  const webhook: WebhookWorkerHost | InProcessWebhook | undefined =
    !admitting || config.webhookBindAddress === '0'
      ? undefined
      : allocationRanges
        ? new WebhookWorkerHost({
            entry: new URL(`./webhook${path.extname(fileURLToPath(import.meta.url))}`, import.meta.url),
            data: webhookData,
            log,
            clock,
          })
        : new InProcessWebhook(webhookData);
  const webhookAddress = await webhook?.start();
  const stop = new AbortController();

  const metricsSecurity = await secureMetrics(config, client, clock, log, stop.signal);
  const servers = await startServers({
    metricsBindAddress: config.metricsBindAddress,
    healthProbeBindAddress: config.healthProbeBindAddress,
    registry,
    checks: {
      healthz: () => [
        { name: 'ping' },
        ...manager.healthChecks(),
        ...(webhook ? [webhook.healthCheck()] : []),
      ],
      readyz: () => [...manager.readyChecks(), ...(webhook ? [webhook.readyCheck()] : [])],
    },
    metrics: webhook ? () => webhook.metrics(registry) : undefined,
    metricsSecurity,
  });
  opts.onListening?.({ ...servers, webhookAddress });

  const onSignal = (sig: NodeJS.Signals): void => {
    if (stop.signal.aborted) {
      log.error('received a second signal; exiting at once', undefined, { signal: sig });
      process.exit(1);
    }
    log.info('received signal; shutting down gracefully', { signal: sig });
    stop.abort();
  };
  if (opts.signal) opts.signal.addEventListener('abort', () => stop.abort(), { once: true });
  else {
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  }

  log.info('starting service-controller-manager', {
    version: VERSION,
    controllers: enabled,
    server: client.server,
    config: loaded.source,
    leaderElect,
    identity,
  });
  // Our timers are unref'd (realClock) and with both HTTP servers disabled a standby waiting
  // between lease attempts holds no handle: keep the process alive until the manager returns.
  const keepAlive = setInterval(() => {}, 1 << 30);
  let exit: Awaited<ReturnType<Manager['run']>>;
  try {
    exit = await manager.run(stop.signal);
  } finally {
    clearInterval(keepAlive);
  }
  await webhook?.stop();
  await servers.close();
  process.off('SIGTERM', onSignal);
  process.off('SIGINT', onSignal);
  log.info('stopped', { exit });
  return exit === 'lost-lease' ? 1 : 0;
}

/**
 * `--metrics-secure`: the serving certificate (`--metrics-cert-dir`, else self-signed) and the
 * API server's TokenReview + SubjectAccessReview for every request; undefined without.
 */
async function secureMetrics(
  config: Config,
  client: KubeClient,
  clock: Clock,
  log: Logger,
  signal: AbortSignal,
): Promise<MetricsSecurity | undefined> {
  if (
    !config.metricsSecure ||
    parseBindAddress(config.metricsBindAddress, 'metrics-bind-address') === undefined
  ) {
    return undefined;
  }
  const certs = config.metricsCertDir
    ? new DirCertSource({ dir: config.metricsCertDir, clock, log: log.child({ server: 'metrics' }) })
    : selfSignedCertSource(
        [
          'localhost',
          hostname(),
          `service-controller-manager-metrics.${config.webhookNamespace}.svc`,
          '127.0.0.1',
          '::1',
        ],
        clock,
      );
  await certs.start(signal);
  return { certs, authorize: delegatedAuthorizer({ reviewer: new KubeReviewer(client), clock, log }) };
}

if (import.meta.main) {
  // Exit explicitly: idle keep-alive sockets to the API server must not hold the process open.
  process.exit(await main({ argv: process.argv.slice(2) }));
}
