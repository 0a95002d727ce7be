import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { renderEndpointSections, renderMarkdown, repeatCount } from '../../../bench/report.ts';
import type { BenchRun, ScenarioResult, SinglePodFlips } from '../../../bench/run.ts';

const MiB = 2 ** 20;

function result(
  manager: ScenarioResult['manager'],
  repeat: number | undefined,
  figures: { converge: number; writes: number; rssMiB: number; flipP99?: number },
): ScenarioResult {
  const flips: SinglePodFlips | undefined =
    figures.flipP99 === undefined
      ? undefined
      : {
          service: 'big',
          flips: 20,
          unseen: 0,
          latency: { samples: 20, p50Seconds: 0.02, p99Seconds: figures.flipP99, maxSeconds: 0.1 },
          writes: { 'PUT endpoints': 10, 'PUT endpointslices': 20 },
          totalWrites: 30,
          seconds: 5,
          settled: true,
        };
  return {
    scenario: 'S1',
    title: 'one Service',
    manager,
    workloadSeconds: 10,
    convergeSeconds: figures.converge,
    writes: { 'PUT endpointslices': figures.writes, 'bytes endpointslices': MiB },
    totalWrites: figures.writes,
    peakRssBytes: figures.rssMiB * MiB,
    cpuSeconds: 2,
    comparison: { ok: true, differences: [], slices: 3, endpoints: 200 },
    ...(repeat === undefined ? {} : { repeat }),
    ...(flips ? { singlePodFlips: flips } : {}),
  };
}

function run(results: ScenarioResult[], repeats?: number): BenchRun {
  return {
    startedAt: '2026-12-03T00:00:00.000Z',
    durationSeconds: 60,
    command: 'make bench',
    machine: { cpus: 2, cpuModel: 'x', memoryBytes: 2 ** 30, node: 'v24' },
    versions: { kubernetes: 'v1', etcd: 'v3', ours: '0.1.0' },
    settings: { qps: 100, burst: 100, workers: 5, batchPeriod: '0s' },
    results,
    ...(repeats === undefined
      ? {}
      : {
          repeats: Array.from({ length: repeats }, (_, i) => ({
            repeat: i + 1,
            managers: ['ours' as const, 'kube-controller-manager' as const],
          })),
        }),
  };
}

function linesOf(text: string, startingWith: string): string[] {
  return text.split('\n').filter((l) => l.startsWith(startingWith));
}

describe('bench report across repeats', () => {
  it('one repeat (an older run without `repeat`): figures without ranges, as before', () => {
    const text = renderEndpointSections(
      run([
        result('ours', undefined, { converge: 0.243, writes: 846, rssMiB: 237 }),
        result('kube-controller-manager', undefined, { converge: 0.434, writes: 1514, rssMiB: 231 }),
      ]),
    );
    expect(linesOf(text, '| S1 |')).to.deep.equal([
      '| S1 | ours | 10.0 | 0.243 | PUT endpointslices 846 (total 846) | 1.0 MiB | 237 | 2.0 | — | expected objects (3 slices) |',
      '| S1 | kube-controller-manager | 10.0 | 0.434 | PUT endpointslices 1514 (total 1514) | 1.0 MiB | 231 | 2.0 | — | expected objects (3 slices) |',
      '| S1 | 0.56 | 0.56 | — | — | — | — | — | — | 1.03 | yes |',
    ]);
    expect(text).to.not.contain('Margins in every repeat');
  });

  it('three repeats: median (min–max) per figure, ratios of the medians, margins per repeat', () => {
    const r = run(
      [
        result('ours', 1, { converge: 0.2, writes: 846, rssMiB: 237, flipP99: 0.05 }),
        result('kube-controller-manager', 1, { converge: 0.4, writes: 1514, rssMiB: 231, flipP99: 0.09 }),
        // Repeat 2 ran kcm first; the table keeps the first repeat's order.
        result('kube-controller-manager', 2, { converge: 0.5, writes: 1520, rssMiB: 240, flipP99: 0.08 }),
        result('ours', 2, { converge: 0.6, writes: 850, rssMiB: 230, flipP99: 0.06 }),
        result('ours', 3, { converge: 0.3, writes: 846, rssMiB: 236, flipP99: 0.07 }),
        result('kube-controller-manager', 3, { converge: 0.45, writes: 1514, rssMiB: 232, flipP99: 0.1 }),
      ],
      3,
    );
    expect(repeatCount(r)).to.equal(3);
    const text = renderEndpointSections(r);
    expect(linesOf(text, '| S1 |')).to.deep.equal([
      '| S1 | ours | 10.0 | 0.300 (0.200–0.600) | PUT endpointslices 846 (846–850) (total 846 (846–850)) | 1.0 MiB | 236 (230–237) | 2.0 | — | expected objects (3 slices) |',
      '| S1 | kube-controller-manager | 10.0 | 0.450 (0.400–0.500) | PUT endpointslices 1514 (1514–1520) (total 1514 (1514–1520)) | 1.0 MiB | 232 (231–240) | 2.0 | — | expected objects (3 slices) |',
      // 846 / 1514, 0.300 / 0.450, 236 / 232: of the medians.
      '| S1 | 0.56 | 0.67 | — | — | — | — | — | — | 1.02 | yes |',
      // Repeat 2: ours converged in 0.6 s against 0.5 s; repeat 1 and 3 its RSS was higher.
      '| S1 | yes (3 of 3) | no (2 of 3) | no (1 of 3) | yes (3 of 3) |',
      '| S1 | ours | 0.300 (0.200–0.600) | 20 | 20.0 | 60.0 (50.0–70.0) | 100.0 | PUT endpoints 10, PUT endpointslices 20 (total 30) |',
      '| S1 | kube-controller-manager | 0.450 (0.400–0.500) | 20 | 20.0 | 90.0 (80.0–100.0) | 100.0 | PUT endpoints 10, PUT endpointslices 20 (total 30) |',
    ]);
    expect(text).to.contain('S1 flips: p50 ours / kcm 1.00, p99 ours / kcm 0.67.');
    expect(text).to.contain('the median (of an even number, the mean of the middle two)');
  });

  it("with a floor calibration: the bare floor and the fair floor at each result's workload pace", () => {
    // 100 writes/s, 10 ms per delivery, burst 100. Ours wrote 846, kcm 1514: the reference is 846.
    const floor = {
      writes: 600,
      seconds: 6,
      writesPerSecond: 100,
      writeLatencySeconds: 0.01,
      writeSeenSeconds: 0.01,
    };
    // All the workload's writes in the last 100 ms of its 10 s: the 746 writes past the burst take
    // 7.46 s after it (plus two deliveries), where the bare floor fits them inside the 10 s.
    const late = [...Array.from({ length: 99 }, () => 0), 50];
    const withPace = (r: ScenarioResult): ScenarioResult => ({ ...r, workloadProgress: late });
    const withFloor: BenchRun = {
      ...run([
        withPace(result('ours', undefined, { converge: 7.47, writes: 846, rssMiB: 237 })),
        withPace(result('kube-controller-manager', undefined, { converge: 9.0, writes: 1514, rssMiB: 231 })),
      ]),
      floor,
    };
    expect(linesOf(renderEndpointSections(withFloor), '| S1 |')[2]).to.equal(
      '| S1 | 0.56 | 0.83 | 0.020 | 374 | 450 | 7.480 | 1.00 | 1.20 | 1.03 | yes |',
    );
    expect(renderMarkdown(withFloor, 'x.json')).to.contain('The **fair floor** makes them due');
  });

  it('a repeat whose objects differ says which; the same-endpoints column says NO', () => {
    const bad = result('ours', 2, { converge: 0.3, writes: 846, rssMiB: 237 });
    bad.comparison = {
      ok: false,
      differences: ['big: slices hold 199 endpoints, want 200'],
      slices: 3,
      endpoints: 199,
    };
    const text = renderEndpointSections(
      run(
        [
          result('ours', 1, { converge: 0.2, writes: 846, rssMiB: 237 }),
          result('kube-controller-manager', 1, { converge: 0.4, writes: 1514, rssMiB: 231 }),
          bad,
          result('kube-controller-manager', 2, { converge: 0.4, writes: 1514, rssMiB: 231 }),
        ],
        2,
      ),
    );
    const [ours, , ratios] = linesOf(text, '| S1 |');
    expect(ours).to.match(
      /\| repeat 2 DIFFERS: big: slices hold 199 endpoints, want 200; expected objects in the other 1 \|$/,
    );
    expect(ratios).to.match(/\| NO \(see figures\) \|$/);
    // Two repeats: the median converge is the mean, 0.25.
    expect(ours).to.contain('| 0.250 (0.200–0.300) |');
  });

  it('renders the committed docs/BENCHMARKS.json as the committed docs/BENCHMARKS.md (older runs render as before)', () => {
    const committed = JSON.parse(readFileSync('docs/BENCHMARKS.json', 'utf8')) as BenchRun;
    expect(renderMarkdown(committed, 'docs/BENCHMARKS.json')).to.equal(
      readFileSync('docs/BENCHMARKS.md', 'utf8'),
    );
  });
});
