/**
 * The admission webhook in its own worker thread.
 *
 * The webhook answers the API server while it waits, so its latency is every Service create's
 * latency. On the main thread it would wait behind whatever else runs there, and one sync of a
 * 10,000-pod Service keeps that thread busy for hundreds of milliseconds. In a worker it has an
 * event loop of its own: its own client, informers, certificates, Events and metrics (the main
 * thread merges them into /metrics). It shares nothing with the controllers but the process.
 *
 * `WebhookWorkerHost` runs on the main thread: it starts the worker, relays metrics scrapes,
 * reports readiness, restarts a worker that died (with backoff; /healthz fails meanwhile), and
 * stops it last on shutdown. The messages between the two are the types below.
 */
import { Worker } from 'node:worker_threads';
import {
  AggregatorRegistry,
  type MetricObjectWithValues,
  type MetricValue,
  type Registry,
} from 'prom-client';
import type { Clock } from '../clock.ts';
import type { NamedCheck } from '../health.ts';
import type { Logger } from '../log.ts';

/** What the worker is started with. */
export interface WebhookWorkerData {
  /** The manager's own flags; the worker parses them the same way. */
  argv: string[];
  /** The ranges the main thread resolved and checked against the cluster's. */
  /** The allocation ranges, when an allocating controller is enabled. */
  clusterIPRanges?: string[];
  nodePortRange?: string;
}

export type ToWorker = { type: 'metrics'; id: number } | { type: 'stop' };

export type FromWorker =
  | { type: 'listening'; address: string }
  | { type: 'ready'; ready: boolean; reason?: string }
  | { type: 'metrics'; id: number; metrics: MetricObjectWithValues<MetricValue<string>>[] }
  | { type: 'failed'; message: string }
  | { type: 'stopped' };

export interface WebhookWorkerHostOptions {
  entry: URL;
  data: WebhookWorkerData;
  log: Logger;
  clock: Clock;
  /** How long a scrape waits for the worker's metrics before answering without them; default 2 s. */
  metricsTimeoutMs?: number;
  /** How long `stop` waits for a graceful exit before terminating the worker; default 15 s. */
  stopTimeoutMs?: number;
}

const RESTART_MIN_MS = 1000;
const RESTART_MAX_MS = 30_000;

export class WebhookWorkerHost {
  private readonly opts: WebhookWorkerHostOptions;
  private worker: Worker | undefined;
  private address: string | undefined;
  private readiness: { ready: boolean; reason?: string } = { ready: false, reason: 'starting' };
  private stopping = false;
  private restarts = 0;
  private nextId = 0;
  private readonly scrapes = new Map<number, (m: MetricObjectWithValues<MetricValue<string>>[]) => void>();
  private exited: Promise<void> = Promise.resolve();

  constructor(opts: WebhookWorkerHostOptions) {
    this.opts = opts;
  }

  /** Starts the worker; resolves with the address it serves on, rejects if it failed to start. */
  start(): Promise<string> {
    return new Promise((resolve, reject) => {
      let settled = false;
      const worker = new Worker(this.opts.entry, { workerData: this.opts.data });
      this.worker = worker;
      let exit!: () => void;
      this.exited = new Promise<void>((r) => (exit = r));
      worker.on('message', (msg: FromWorker) => {
        switch (msg.type) {
          case 'listening':
            this.address = msg.address;
            this.restarts = 0;
            if (!settled) {
              settled = true;
              resolve(msg.address);
            }
            break;
          case 'ready':
            this.readiness = { ready: msg.ready, reason: msg.reason };
            break;
          case 'metrics':
            this.scrapes.get(msg.id)?.(msg.metrics);
            this.scrapes.delete(msg.id);
            break;
          case 'failed':
            this.opts.log.error('the webhook worker failed', undefined, { err: msg.message });
            if (!settled) {
              settled = true;
              reject(new Error(msg.message));
            }
            break;
          case 'stopped':
            break;
        }
      });
      worker.on('error', (err: Error) => {
        this.opts.log.error('the webhook worker crashed', err);
        if (!settled) {
          settled = true;
          reject(err);
        }
      });
      worker.on('exit', (code) => {
        exit();
        this.worker = undefined;
        this.readiness = { ready: false, reason: `worker exited (${code})` };
        for (const done of this.scrapes.values()) done([]);
        this.scrapes.clear();
        if (!settled) {
          settled = true;
          reject(new Error(`the webhook worker exited (${code}) before it served`));
          return;
        }
        if (!this.stopping) this.restartLater(code);
      });
    });
  }

  /** Where it serves (`host:port`), once started. */
  get boundAddress(): string | undefined {
    return this.address;
  }

  readyCheck(): NamedCheck {
    return {
      name: 'webhook',
      error: this.readiness.ready ? undefined : (this.readiness.reason ?? 'not ready'),
    };
  }

  healthCheck(): NamedCheck {
    return { name: 'webhook', error: this.worker ? undefined : 'the webhook worker is not running' };
  }

  /** The main registry's metrics with the worker's merged in (counters summed). */
  async metrics(main: Registry): Promise<string> {
    const ours = await main.getMetricsAsJSON();
    const theirs = await this.workerMetrics();
    return AggregatorRegistry.aggregate([ours, theirs] as Parameters<
      typeof AggregatorRegistry.aggregate
    >[0]).metrics();
  }

  /** Asks the worker to stop (it finishes requests in flight), terminating it after the timeout. */
  async stop(): Promise<void> {
    this.stopping = true;
    const worker = this.worker;
    if (!worker) return;
    worker.postMessage({ type: 'stop' } satisfies ToWorker);
    const timeoutMs = this.opts.stopTimeoutMs ?? 15_000;
    const timedOut = await Promise.race([
      this.exited.then(() => false),
      this.opts.clock.sleep(timeoutMs).then(() => true),
    ]);
    if (timedOut) {
      this.opts.log.info('the webhook worker did not stop in time; terminating it', { timeoutMs });
      await worker.terminate();
    }
  }

  private workerMetrics(): Promise<MetricObjectWithValues<MetricValue<string>>[]> {
    const worker = this.worker;
    if (!worker) return Promise.resolve([]);
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.scrapes.set(id, resolve);
      worker.postMessage({ type: 'metrics', id } satisfies ToWorker);
      void this.opts.clock.sleep(this.opts.metricsTimeoutMs ?? 2000).then(() => {
        if (this.scrapes.delete(id)) resolve([]);
      });
    });
  }

  private restartLater(code: number): void {
    const delay = Math.min(RESTART_MAX_MS, RESTART_MIN_MS * 2 ** this.restarts++);
    this.opts.log.error('the webhook worker exited; restarting it', undefined, { code, inMs: delay });
    void this.opts.clock.sleep(delay).then(() => {
      if (this.stopping) return;
      this.start().catch((err: unknown) => {
        this.opts.log.error('the webhook worker did not restart', err);
        if (!this.stopping && !this.worker) this.restartLater(-1);
      });
    });
  }
}
