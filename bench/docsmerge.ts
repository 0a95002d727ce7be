import type { BenchRun } from './run.ts';

/**
 * `--merge-docs`: this run's sections in place of the committed docs/BENCHMARKS.json's, the others
 * kept with their run's date and command. A run of S7/S8 alone replaces those; a run of S1-S4 and
 * C1 alone (e.g. `--repeat`) replaces those and keeps S5-S8.
 */
export function mergeIntoDocs(run: BenchRun, base: BenchRun): BenchRun {
  const own = { startedAt: base.startedAt, durationSeconds: base.durationSeconds, command: base.command };
  const hasAllocation = (r: BenchRun): boolean =>
    (r.allocation ?? []).length > 0 || (r.admission ?? []).length > 0;
  if (run.loadBalancer && run.results.length === 0 && !hasAllocation(run)) {
    return {
      ...base,
      loadBalancer: run.loadBalancer,
      loadBalancerRun: {
        startedAt: run.startedAt,
        durationSeconds: run.durationSeconds,
        command: run.command,
      },
    };
  }
  if (run.results.length > 0 && !run.loadBalancer && !hasAllocation(run)) {
    return {
      ...run,
      ...(hasAllocation(base)
        ? {
            allocation: base.allocation,
            admission: base.admission,
            allocationRun: base.allocationRun ?? own,
          }
        : {}),
      ...(base.loadBalancer
        ? { loadBalancer: base.loadBalancer, loadBalancerRun: base.loadBalancerRun ?? own }
        : {}),
    };
  }
  throw new Error(
    '--merge-docs merges either S7/S8 alone or S1-S4/C1 alone: run only those (--scenarios=...)',
  );
}
