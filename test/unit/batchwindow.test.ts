import { expect } from 'chai';
import { FakeClock } from '../../shared/clock.ts';
import { AdaptiveBatchWindow, batchedWrites, chooseWindow } from '../../shared/controller/batchwindow.ts';

/** Observes `key` at each of `offsets` (ms after the clock's current time), stepping the clock. */
function observeAt(clock: FakeClock, w: AdaptiveBatchWindow, key: string, offsets: readonly number[]): void {
  const start = clock.now();
  for (const off of offsets) {
    clock.step(start + off - clock.now());
    w.observe(key);
  }
}

describe('AdaptiveBatchWindow', () => {
  describe('batchedWrites', () => {
    it('a window collapses the events within it of the batch first event, per key', () => {
      const times = [
        [0, 10, 20, 30, 40],
        [0, 500],
      ];
      expect(batchedWrites(times, 0)).to.equal(7);
      expect(batchedWrites(times, 25)).to.equal(4); // [0,10,20] [30,40] | [0] [500]
      expect(batchedWrites(times, 40)).to.equal(3);
      expect(batchedWrites(times, 1000)).to.equal(2);
    });

    it('events at the same instant are one write even with window 0', () => {
      expect(batchedWrites([[5, 5, 5]], 0)).to.equal(1);
    });
  });

  describe('chooseWindow', () => {
    const candidates = [0, 6.25, 12.5, 25, 50, 100];

    it('bursts of five changes within 40 ms give the window that covers them', () => {
      const bursts = Array.from({ length: 20 }, () => [0, 10, 20, 30, 40]);
      expect(chooseWindow(bursts, candidates, 100)).to.equal(50);
    });

    it('lone changes per key give 0: waiting would save nothing', () => {
      const lone = Array.from({ length: 50 }, (_, i) => [i * 17]);
      expect(chooseWindow(lone, candidates, 100)).to.equal(0);
    });

    it('pairs 90 ms apart give 0: the longest window must halve the writes to be worth its wait', () => {
      const pairs = Array.from({ length: 20 }, () => [0, 90]);
      expect(chooseWindow(pairs, candidates, 100)).to.equal(0);
    });

    it('one key changing every 10 ms gives the longest window', () => {
      const steady = [Array.from({ length: 100 }, (_, i) => i * 10)];
      expect(chooseWindow(steady, candidates, 100)).to.equal(100);
    });
  });

  it('is 0 before anything is observed, and when maxMs is 0', () => {
    const clock = new FakeClock();
    expect(new AdaptiveBatchWindow({ maxMs: 100, clock }).windowMs()).to.equal(0);
    const off = new AdaptiveBatchWindow({ maxMs: 0, clock });
    for (let k = 0; k < 20; k++) observeAt(clock, off, `ns/s${k}`, [0, 1, 2, 3]);
    expect(off.windowMs()).to.equal(0);
  });

  it('grows during bursts and falls back to 0 once they are past the horizon', () => {
    const clock = new FakeClock();
    const w = new AdaptiveBatchWindow({ maxMs: 100, clock, horizonMs: 1000, recomputeEveryMs: 0 });
    for (let k = 0; k < 10; k++) observeAt(clock, w, `ns/s${k}`, [0, 10, 20, 30, 40]);
    expect(w.windowMs()).to.equal(50);
    clock.step(1001);
    expect(w.windowMs()).to.equal(0);
  });

  it('fewer than minEvents events in the horizon give 0', () => {
    const clock = new FakeClock();
    const w = new AdaptiveBatchWindow({ maxMs: 100, clock, minEvents: 8, recomputeEveryMs: 0 });
    observeAt(clock, w, 'ns/a', [0, 10, 20, 30, 40, 50, 60]);
    expect(w.windowMs()).to.equal(0);
    observeAt(clock, w, 'ns/a', [10]);
    expect(w.windowMs()).to.equal(100);
  });

  it('keeps at most maxEvents, the newest', () => {
    const clock = new FakeClock();
    const w = new AdaptiveBatchWindow({
      maxMs: 100,
      clock,
      maxEvents: 16,
      minEvents: 1,
      recomputeEveryMs: 0,
    });
    // Bursts on one key, then 16 lone events on distinct keys: only those are left.
    observeAt(
      clock,
      w,
      'ns/hot',
      Array.from({ length: 50 }, (_, i) => i),
    );
    clock.step(500);
    for (let k = 0; k < 16; k++) observeAt(clock, w, `ns/lone${k}`, [0]);
    expect(w.windowMs()).to.equal(0);
  });

  it('is re-chosen at most every recomputeEveryMs', () => {
    const clock = new FakeClock();
    const w = new AdaptiveBatchWindow({ maxMs: 100, clock, recomputeEveryMs: 100 });
    const chosenAt = clock.now();
    expect(w.windowMs()).to.equal(0);
    for (let k = 0; k < 4; k++) observeAt(clock, w, `ns/s${k}`, [0, 1, 2, 3]);
    clock.step(chosenAt + 99 - clock.now());
    expect(w.windowMs()).to.equal(0);
    clock.step(1);
    expect(w.windowMs()).to.equal(6.25);
  });

  it('refuses a negative maxMs', () => {
    expect(() => new AdaptiveBatchWindow({ maxMs: -1 })).to.throw(RangeError, /maxMs/);
  });
});
