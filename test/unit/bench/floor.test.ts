import { expect } from 'chai';
import {
  fairFloorSeconds,
  floorSeconds,
  progressBins,
  PROGRESS_BIN_MS,
  type FloorCalibration,
} from '../../../bench/floor.ts';

/** 100 writes/s sustained, 10 ms from a write until a watch delivers it. */
const calibration: FloorCalibration = {
  writes: 600,
  seconds: 6,
  writesPerSecond: 100,
  writeLatencySeconds: 0.01,
  writeSeenSeconds: 0.01,
};

describe('bench floor', () => {
  it('progress bins count the writes of each 100 ms from the start, earlier writes left out', () => {
    const start = 1_000_000;
    const bins = progressBins([start - 5, start, start + 99, start + 100, start + 350], start);
    expect(PROGRESS_BIN_MS).to.equal(100);
    expect(bins).to.deep.equal([2, 1, 0, 1]);
  });

  it('a workload slower than the bucket leaves no backlog: the fair floor is two deliveries', () => {
    // 10 s of workload, 100 writes per second of it; 500 controller writes at 100/s keep up.
    const bins = Array.from({ length: 100 }, () => 10);
    expect(fairFloorSeconds(calibration, 100, 500, bins, 10)).to.be.closeTo(0.02, 1e-9);
    expect(floorSeconds(calibration, 100, 500, 10)).to.be.closeTo(0.02, 1e-9);
  });

  it('a workload that makes 4,000 writes due in its first second leaves a backlog the bare floor ignores', () => {
    // All workload writes in the first 100 ms of a 40 s scenario: the burst of 100 goes at once,
    // the other 3,900 at 100/s take 39 s from 0.11 s, i.e. until 39.11 s; the workload ended at 40 s.
    const early = [1000, ...Array.from({ length: 399 }, () => 0)];
    expect(fairFloorSeconds(calibration, 100, 4000, early, 40)).to.be.closeTo(0.02, 1e-9);
    // The same writes due in the workload's last 100 ms: the whole backlog comes after it.
    const late = [...Array.from({ length: 399 }, () => 0), 1000];
    const fair = fairFloorSeconds(calibration, 100, 4000, late, 40);
    expect(fair).to.be.closeTo(39 + 0.02, 1e-6);
    // The bare floor fits all of them inside the 40 s of workload.
    expect(floorSeconds(calibration, 100, 4000, 40)).to.be.closeTo(0.02, 1e-9);
  });

  it('writes due at a steady pace above the rate pile up by the difference', () => {
    // 2 s of workload making 300 writes due per second; 600 writes at 100/s with a burst of 0 (1).
    const bins = Array.from({ length: 20 }, () => 30);
    const fair = fairFloorSeconds(calibration, 0, 600, bins, 2);
    // The 600th write goes at 6 s (one per 10 ms from 0.11 s: 0.11 + 599 * 0.01 = 6.1 s).
    expect(fair).to.be.closeTo(6.1 + 0.01 - 2, 1e-6);
  });

  it('no writes or no workload progress give the two deliveries', () => {
    expect(fairFloorSeconds(calibration, 100, 0, [5], 1)).to.be.closeTo(0.02, 1e-9);
    expect(fairFloorSeconds(calibration, 100, 50, [], 1)).to.be.closeTo(0.02, 1e-9);
  });
});
