/**
 * AdaptiveBatchWindow: how long a pod-triggered sync of a key waits so that the pod changes that
 * follow it collapse into the same write, chosen from the events the controller saw last.
 *
 * Why: a Service whose five pods turn ready within 50 ms gets one Endpoints write if its sync waits
 * 50 ms, five if each pod change is synced at once. A fixed batch period (upstream's
 * `--endpoint-updates-batch-period`) delays every change, also the lone readiness flip that nothing
 * follows. So the window is re-chosen from the recent event stream: it is long only while the keys'
 * events come in bursts that a wait would collapse (docs/PERFORMANCE.md, section 11).
 *
 * The choice: the events observed in the last `horizonMs` (at most `maxEvents`), as (key, time).
 * For each candidate window W (0 and maxMs / 16, / 8, / 4, / 2, / 1) count the writes W would
 * have given: per key, an event more than W after the first event of its open batch starts a new
 * batch. The window is the W that minimises writes(W) x (1 + W / maxMs): the longest window must
 * at least halve the writes to be chosen, and ties go to the shorter one. With fewer than
 * `minEvents` events in the horizon the window is 0: a quiet controller never waits.
 *
 * Guarantees: `windowMs()` is in [0, maxMs]; it is 0 when maxMs is 0, when nothing was observed in
 * the horizon, and when no key saw two events less than maxMs apart there. Pure apart from the
 * injected clock; recomputed at most every `recomputeEveryMs`.
 */
import { type Clock, realClock } from '../clock.ts';

export interface AdaptiveBatchWindowOptions {
  /** The longest window; 0 turns batching off. */
  maxMs: number;
  clock?: Clock;
  /** Events older than this are forgotten (default 1000 ms). */
  horizonMs?: number;
  /** Most events kept (default 4096): the oldest go first. */
  maxEvents?: number;
  /** Fewer events than this in the horizon give window 0 (default 8). */
  minEvents?: number;
  /** The window is re-chosen at most this often (default 100 ms). */
  recomputeEveryMs?: number;
}

/** Writes a window of `windowMs` would have given for these events (per key, times ascending). */
export function batchedWrites(timesByKey: Iterable<readonly number[]>, windowMs: number): number {
  let writes = 0;
  for (const times of timesByKey) {
    let batchStart = Number.NEGATIVE_INFINITY;
    for (const t of times) {
      if (t - batchStart > windowMs) {
        writes++;
        batchStart = t;
      }
    }
  }
  return writes;
}

/** The window in `candidates` (ascending) that minimises writes(W) x (1 + W / maxMs). */
export function chooseWindow(
  timesByKey: readonly (readonly number[])[],
  candidates: readonly number[],
  maxMs: number,
): number {
  let best = 0;
  let bestCost = Number.POSITIVE_INFINITY;
  for (const w of candidates) {
    const cost = batchedWrites(timesByKey, w) * (1 + w / maxMs);
    if (cost < bestCost) {
      best = w;
      bestCost = cost;
    }
  }
  return best;
}

export class AdaptiveBatchWindow {
  private readonly maxMs: number;
  private readonly clock: Clock;
  private readonly horizonMs: number;
  private readonly maxEvents: number;
  private readonly minEvents: number;
  private readonly recomputeEveryMs: number;
  private readonly candidates: readonly number[];
  /** A ring of observed events: keys[i] seen at times[i]; `head` is the oldest, `size` in use. */
  private readonly keys: string[];
  private readonly times: Float64Array;
  private head = 0;
  private size = 0;
  private window = 0;
  private computedAt = Number.NEGATIVE_INFINITY;

  constructor(opts: AdaptiveBatchWindowOptions) {
    if (!(opts.maxMs >= 0)) throw new RangeError(`maxMs must be >= 0, got ${opts.maxMs}`);
    this.maxMs = opts.maxMs;
    this.clock = opts.clock ?? realClock;
    this.horizonMs = opts.horizonMs ?? 1000;
    this.maxEvents = opts.maxEvents ?? 4096;
    this.minEvents = opts.minEvents ?? 8;
    this.recomputeEveryMs = opts.recomputeEveryMs ?? 100;
    this.candidates = [0, 16, 8, 4, 2, 1].map((d) => (d === 0 ? 0 : opts.maxMs / d));
    this.keys = new Array<string>(this.maxEvents);
    this.times = new Float64Array(this.maxEvents);
  }

  /** Records that an event concerning `key` arrived now. */
  observe(key: string): void {
    if (this.maxMs === 0) return;
    const at = (this.head + this.size) % this.maxEvents;
    this.keys[at] = key;
    this.times[at] = this.clock.now();
    if (this.size < this.maxEvents) this.size++;
    else this.head = (this.head + 1) % this.maxEvents;
  }

  /** The window to wait now before a sync triggered by an event just observed. */
  windowMs(): number {
    if (this.maxMs === 0) return 0;
    const now = this.clock.now();
    if (now - this.computedAt < this.recomputeEveryMs) return this.window;
    this.computedAt = now;
    this.forgetOlderThan(now - this.horizonMs);
    if (this.size < this.minEvents) {
      this.window = 0;
      return 0;
    }
    const byKey = new Map<string, number[]>();
    for (let i = 0; i < this.size; i++) {
      const slot = (this.head + i) % this.maxEvents;
      const key = this.keys[slot];
      const list = byKey.get(key);
      if (list) list.push(this.times[slot]);
      else byKey.set(key, [this.times[slot]]);
    }
    this.window = chooseWindow([...byKey.values()], this.candidates, this.maxMs);
    return this.window;
  }

  private forgetOlderThan(cutoff: number): void {
    while (this.size > 0 && this.times[this.head] < cutoff) {
      this.keys[this.head] = '';
      this.head = (this.head + 1) % this.maxEvents;
      this.size--;
    }
  }
}
