import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { mergeIntoDocs } from '../../../bench/docsmerge.ts';
import type { BenchRun } from '../../../bench/run.ts';

describe('bench --merge-docs', () => {
  const committed = JSON.parse(readFileSync('docs/BENCHMARKS.json', 'utf8')) as BenchRun;
  const endpointsOnly: BenchRun = {
    ...committed,
    startedAt: '2026-12-02T13:00:00.000Z',
    command: 'make bench ARGS="--scenarios=S1 --repeat=3"',
    allocation: undefined,
    admission: undefined,
    allocationRun: undefined,
    loadBalancer: undefined,
    loadBalancerRun: undefined,
  };

  it("a run of S1-S4/C1 alone replaces those and keeps S5-S8 with their own run's date and command", () => {
    const merged = mergeIntoDocs(endpointsOnly, committed);
    expect(merged.startedAt).to.equal('2026-12-02T13:00:00.000Z');
    expect(merged.results).to.equal(endpointsOnly.results);
    expect(merged.allocation).to.deep.equal(committed.allocation);
    expect(merged.admission).to.deep.equal(committed.admission);
    expect(merged.loadBalancer).to.deep.equal(committed.loadBalancer);
    const own = {
      startedAt: committed.startedAt,
      durationSeconds: committed.durationSeconds,
      command: committed.command,
    };
    expect(merged.allocationRun).to.deep.equal(committed.allocationRun ?? own);
    expect(merged.loadBalancerRun).to.deep.equal(committed.loadBalancerRun ?? own);
  });

  it('a run of S7/S8 alone replaces those and keeps the rest', () => {
    const lb: BenchRun = { ...endpointsOnly, results: [], loadBalancer: committed.loadBalancer };
    const merged = mergeIntoDocs(lb, committed);
    expect(merged.results).to.equal(committed.results);
    expect(merged.loadBalancerRun?.startedAt).to.equal('2026-12-02T13:00:00.000Z');
  });

  it('a run of both kinds is refused', () => {
    const both: BenchRun = { ...endpointsOnly, loadBalancer: committed.loadBalancer };
    expect(() => mergeIntoDocs(both, committed)).to.throw(/merges either/);
  });
});
