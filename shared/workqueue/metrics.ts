/**
 * Workqueue metrics, with the names and meanings of client-go's `util/workqueue/metrics.go`, all
 * labelled `{name, controller}`:
 *
 * - `workqueue_depth` (gauge): items added and not yet handed out by `get()`.
 * - `workqueue_adds_total` (counter): adds that were not collapsed into an already queued item.
 * - `workqueue_queue_duration_seconds` (histogram): time from the first add to the `get()`.
 * - `workqueue_work_duration_seconds` (histogram): time from `get()` to `done()`.
 * - `workqueue_unfinished_work_seconds` (gauge): sum of the ages of the items being processed.
 * - `workqueue_longest_running_processor_seconds` (gauge): age of the oldest item being processed.
 * - `workqueue_retries_total` (counter): rate-limited re-adds.
 *
 * Guarantees: metrics live on the `Registry` passed in, never on prom-client's global registry;
 * each registry gets one set of metric objects, shared by every queue that reports to it. The two
 * "unfinished" gauges are computed when the registry is scraped, from the processing start times
 * of every queue on that registry (client-go updates them every 500 ms instead). A queue without a
 * registry uses `noopMetrics`. All times come from the queue's clock.
 */
import { Counter, Gauge, Histogram, exponentialBuckets } from 'prom-client';
import type { Registry } from 'prom-client';
import type { Clock } from '../clock.ts';

/** What a queue reports. The queue calls these; they never throw. */
export interface QueueMetrics<T> {
  /** `item` became dirty (a non-collapsed add). */
  add(item: T): void;
  /** `item` was handed out by `get()`. */
  get(item: T): void;
  /** `done(item)` was called for an item that was being processed. */
  done(item: T): void;
  /** A rate-limited re-add. */
  retry(): void;
}

/** Where a queue's metrics go. */
export interface QueueMetricsOptions {
  registry: Registry;
  /** The `name` label: the queue's name. */
  name: string;
  /** The `controller` label; defaults to `name`. */
  controller?: string;
}

/** Metrics that record nothing, for queues without a registry. */
export const noopMetrics: QueueMetrics<unknown> = {
  add: () => {},
  get: () => {},
  done: () => {},
  retry: () => {},
};

type LabelName = 'name' | 'controller';
type Labels = Record<LabelName, string>;

/** The per-queue state the scrape-time gauges read. */
interface InFlight {
  readonly labels: Labels;
  /** Processing start time (ms) of each item being processed. */
  readonly processingStart: ReadonlyMap<unknown, number>;
  readonly clock: Clock;
}

/** One set of metric objects per registry. */
interface RegistryMetrics {
  depth: Gauge<LabelName>;
  adds: Counter<LabelName>;
  queueDuration: Histogram<LabelName>;
  workDuration: Histogram<LabelName>;
  retries: Counter<LabelName>;
  /** Every queue reporting to this registry; read at scrape time. */
  queues: Set<InFlight>;
}

const byRegistry = new WeakMap<Registry, RegistryMetrics>();

// client-go's buckets: 10 ns .. 1000 s, 12 powers of ten.
const durationBuckets = exponentialBuckets(10e-9, 10, 12);
const labelNames: readonly LabelName[] = ['name', 'controller'];

function registryMetrics(registry: Registry): RegistryMetrics {
  const existing = byRegistry.get(registry);
  if (existing) return existing;
  const queues = new Set<InFlight>();
  const registers = [registry];

  /** Sets `gauge` per label set from `pick(ages)`, where `ages` are in-flight ages in seconds. */
  const unfinishedGauge = (
    name: string,
    help: string,
    pick: (ages: number[]) => number,
  ): Gauge<LabelName> => {
    const gauge: Gauge<LabelName> = new Gauge({
      name,
      help,
      labelNames,
      registers,
      collect: () => {
        const grouped = new Map<string, { labels: Labels; ages: number[] }>();
        for (const q of queues) {
          const key = `${q.labels.name}\u0000${q.labels.controller}`;
          let group = grouped.get(key);
          if (!group) grouped.set(key, (group = { labels: q.labels, ages: [] }));
          const now = q.clock.now();
          for (const start of q.processingStart.values()) group.ages.push((now - start) / 1000);
        }
        gauge.reset();
        for (const { labels, ages } of grouped.values()) gauge.set(labels, pick(ages));
      },
    });
    return gauge;
  };

  unfinishedGauge(
    'workqueue_unfinished_work_seconds',
    'How many seconds of work has been done that is in progress and has not been observed by ' +
      'work_duration. Large values indicate stuck workers.',
    (ages) => ages.reduce((sum, age) => sum + age, 0),
  );
  unfinishedGauge(
    'workqueue_longest_running_processor_seconds',
    'How many seconds has the longest running processor for workqueue been running.',
    (ages) => ages.reduce((max, age) => Math.max(max, age), 0),
  );

  const created: RegistryMetrics = {
    depth: new Gauge({ name: 'workqueue_depth', help: 'Current depth of workqueue.', labelNames, registers }),
    adds: new Counter({
      name: 'workqueue_adds_total',
      help: 'Total number of adds handled by workqueue.',
      labelNames,
      registers,
    }),
    queueDuration: new Histogram({
      name: 'workqueue_queue_duration_seconds',
      help: 'How long in seconds an item stays in workqueue before being requested.',
      labelNames,
      buckets: durationBuckets,
      registers,
    }),
    workDuration: new Histogram({
      name: 'workqueue_work_duration_seconds',
      help: 'How long in seconds processing an item from workqueue takes.',
      labelNames,
      buckets: durationBuckets,
      registers,
    }),
    retries: new Counter({
      name: 'workqueue_retries_total',
      help: 'Total number of retries handled by workqueue.',
      labelNames,
      registers,
    }),
    queues,
  };
  byRegistry.set(registry, created);
  return created;
}

class PrometheusQueueMetrics<T> implements QueueMetrics<T>, InFlight {
  readonly labels: Labels;
  readonly clock: Clock;
  private readonly metrics: RegistryMetrics;
  /** Time (ms) of the first add of each dirty item not yet handed out. */
  private readonly addTimes = new Map<T, number>();
  /** Time (ms) each item being processed was handed out. Keys are exactly the processing set. */
  readonly processingStart = new Map<T, number>();

  constructor(opts: QueueMetricsOptions, clock: Clock) {
    this.labels = { name: opts.name, controller: opts.controller ?? opts.name };
    this.clock = clock;
    this.metrics = registryMetrics(opts.registry);
    this.metrics.queues.add(this);
    // Export zero-valued series at once, so dashboards see the queue before its first add.
    this.metrics.depth.inc(this.labels, 0);
    this.metrics.adds.inc(this.labels, 0);
    this.metrics.retries.inc(this.labels, 0);
  }

  add(item: T): void {
    this.metrics.adds.inc(this.labels);
    this.metrics.depth.inc(this.labels);
    if (!this.addTimes.has(item)) this.addTimes.set(item, this.clock.now());
  }

  get(item: T): void {
    const now = this.clock.now();
    this.metrics.depth.dec(this.labels);
    const added = this.addTimes.get(item);
    if (added !== undefined) {
      this.metrics.queueDuration.observe(this.labels, (now - added) / 1000);
      this.addTimes.delete(item);
    }
    this.processingStart.set(item, now);
  }

  done(item: T): void {
    const started = this.processingStart.get(item);
    if (started === undefined) return;
    this.metrics.workDuration.observe(this.labels, (this.clock.now() - started) / 1000);
    this.processingStart.delete(item);
  }

  retry(): void {
    this.metrics.retries.inc(this.labels);
  }
}

/**
 * The metrics of one queue: on `opts.registry` when given (creating the metric objects on first
 * use of that registry), else no-op.
 */
export function queueMetrics<T>(opts: QueueMetricsOptions | undefined, clock: Clock): QueueMetrics<T> {
  return opts ? new PrometheusQueueMetrics<T>(opts, clock) : noopMetrics;
}
