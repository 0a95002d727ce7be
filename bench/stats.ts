/** Summaries of timed samples, shared by the scenarios' readiness probes and the floor. */

export interface LatencySummary {
  /** Samples taken (for readiness: flips superseded by a later write to the same pod are not). */
  samples: number;
  p50Seconds: number;
  p99Seconds: number;
  maxSeconds: number;
}

/** Nearest-rank quantiles of `seconds`; NaN for no samples. */
export function summarize(seconds: readonly number[]): LatencySummary {
  const sorted = [...seconds].sort((a, b) => a - b);
  const at = (q: number): number =>
    sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
  return {
    samples: sorted.length,
    p50Seconds: at(0.5),
    p99Seconds: at(0.99),
    maxSeconds: sorted.at(-1) ?? Number.NaN,
  };
}
