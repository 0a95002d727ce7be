/**
 * Figures across the repeats of `--repeat`: median, lowest and highest of each, their text in the
 * report's tables, the managers' order in each repeat, and whether a margin held in every repeat.
 * Pure, so the report's arithmetic is unit-tested apart from any run.
 */

/** A figure over the repeats that have it. */
export interface Spread {
  median: number;
  min: number;
  max: number;
  /** Repeats with the figure. */
  samples: number;
  /** Repeats without it (absent, or NaN written to JSON as null: a timed-out converge). */
  missing: number;
}

/** A value read back from a run's JSON: NaN was written as null, an optional figure may be absent. */
export type Figure = number | null | undefined;

function present(value: Figure): value is number {
  return value !== null && value !== undefined && !Number.isNaN(value);
}

/**
 * The median; of an even count, the mean of the middle two (so two repeats give their mean, not
 * the lower one). NaN for no values.
 */
export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Median, min and max of the values present; undefined when none is. */
export function spreadOf(values: readonly Figure[]): Spread | undefined {
  const have = values.filter(present);
  if (have.length === 0) return undefined;
  return {
    median: median(have),
    min: Math.min(...have),
    max: Math.max(...have),
    samples: have.length,
    missing: values.length - have.length,
  };
}

/** The median of the values present; NaN when none is (the report's `fmt` shows it as '—'). */
export function medianOf(values: readonly Figure[]): number {
  return spreadOf(values)?.median ?? Number.NaN;
}

/**
 * `median (min–max)` with `format` applied to each; just the one figure when there is one value or
 * all of them read the same at the precision shown (so one repeat renders as before `--repeat`);
 * '—' when no value is present. Repeats without the figure are said so in the parentheses.
 */
export function spreadText(values: readonly Figure[], format: (n: number) => string): string {
  const s = spreadOf(values);
  if (s === undefined) return '—';
  const low = format(s.min);
  const high = format(s.max);
  const notes = [
    ...(low === high ? [] : [`${low}–${high}`]),
    ...(s.missing > 0 ? [`${s.missing} of ${values.length} without`] : []),
  ];
  return notes.length === 0 ? format(s.median) : `${format(s.median)} (${notes.join(', ')})`;
}

/** Counts: integers as they are, a median between two integers with its .5. */
export function countText(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(1);
}

/**
 * The managers' order in a repeat (1-based): rotated by one each repeat, so with two managers
 * repeat 1 runs the first then the second, repeat 2 the second then the first, and neither always
 * starts on the machine before the other has warmed it (page cache, CPU frequency).
 */
export function managerOrder<T>(managers: readonly T[], repeat: number): T[] {
  if (managers.length === 0) return [];
  const shift = (repeat - 1) % managers.length;
  return [...managers.slice(shift), ...managers.slice(0, shift)];
}

/** Whether `ours <= kcm` held in each repeat that has both figures. */
export interface RepeatClaim {
  /** Repeats compared (those of the pair list). */
  repeats: number;
  /** Repeats where ours was at most kcm. */
  held: number;
  /** Repeats where a side lacked the figure: the margin cannot be said to have held there. */
  missing: number;
}

/** Per repeat [ours, kcm]: how often ours <= kcm. */
export function claimInEveryRepeat(pairs: readonly (readonly [ours: Figure, kcm: Figure])[]): RepeatClaim {
  let held = 0;
  let missing = 0;
  for (const [ours, kcm] of pairs) {
    if (!present(ours) || !present(kcm)) missing++;
    else if (ours <= kcm) held++;
  }
  return { repeats: pairs.length, held, missing };
}

/** 'yes (3 of 3)' only when ours <= kcm in every repeat; otherwise 'no (…)'; '—' with no repeat. */
export function claimText(c: RepeatClaim): string {
  if (c.repeats === 0) return '—';
  const every = c.held === c.repeats;
  const without = c.missing > 0 ? `, ${c.missing} without both figures` : '';
  return `${every ? 'yes' : 'no'} (${c.held} of ${c.repeats}${without})`;
}
