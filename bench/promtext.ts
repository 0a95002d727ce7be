/**
 * Reading a Prometheus text exposition (ours' /metrics): samples with their labels, and the
 * difference of a histogram between two scrapes with the bucket bound a quantile falls under.
 * Pure, so the unit tests cover it.
 */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

function parseLabels(text: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!text) return out;
  for (const m of text.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) out[m[1]] = m[2].replace(/\\(.)/g, '$1');
  return out;
}

/** Every sample of `name` (exactly; a histogram's series are `<name>_bucket` etc.). */
export function samples(text: string, name: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)/.exec(line);
    if (m && m[1] === name) out.push({ name, labels: parseLabels(m[2]), value: Number(m[3]) });
  }
  return out;
}

function matches(labels: Record<string, string>, want: Record<string, string>): boolean {
  return Object.entries(want).every(([k, v]) => labels[k] === v);
}

/** Sum of the samples of `name` whose labels include `want`, by the value of label `by`. */
export function sumBy(
  text: string,
  name: string,
  want: Record<string, string>,
  by: string,
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of samples(text, name)) {
    if (!matches(s.labels, want)) continue;
    const key = s.labels[by] ?? '';
    out[key] = (out[key] ?? 0) + s.value;
  }
  return out;
}

export interface Histogram {
  /** Cumulative counts by upper bound (seconds), ascending; the last bound is Infinity. */
  buckets: { le: number; count: number }[];
  count: number;
  sum: number;
}

/** The histogram `name` of the series whose labels include `want` (summed if several match). */
export function histogram(text: string, name: string, want: Record<string, string>): Histogram {
  const byLe = new Map<number, number>();
  for (const s of samples(text, `${name}_bucket`)) {
    if (!matches(s.labels, want)) continue;
    const le = s.labels.le === '+Inf' ? Infinity : Number(s.labels.le);
    byLe.set(le, (byLe.get(le) ?? 0) + s.value);
  }
  const total = (suffix: string): number =>
    samples(text, `${name}_${suffix}`)
      .filter((s) => matches(s.labels, want))
      .reduce((n, s) => n + s.value, 0);
  return {
    buckets: [...byLe.entries()].sort(([a], [b]) => a - b).map(([le, count]) => ({ le, count })),
    count: total('count'),
    sum: total('sum'),
  };
}

/** What was observed between two scrapes of one histogram. */
export function histogramDelta(after: Histogram, before: Histogram): Histogram {
  const was = new Map(before.buckets.map((b) => [b.le, b.count]));
  return {
    buckets: after.buckets.map((b) => ({ le: b.le, count: b.count - (was.get(b.le) ?? 0) })),
    count: after.count - before.count,
    sum: after.sum - before.sum,
  };
}

/**
 * The upper bound of the bucket the `q` quantile falls in: at least a fraction `q` of the
 * observations were at most this (seconds). Infinity when it is above the highest finite bound;
 * NaN for no observations.
 */
export function quantileBound(h: Histogram, q: number): number {
  if (h.count <= 0) return Number.NaN;
  const rank = q * h.count;
  for (const b of h.buckets) if (b.count >= rank) return b.le;
  return Infinity;
}
