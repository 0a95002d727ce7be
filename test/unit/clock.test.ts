import { expect } from 'chai';
import { FakeClock } from '../../shared/clock.ts';

describe('FakeClock', () => {
  it('fires timers in deadline order when stepped past them', () => {
    const clock = new FakeClock(0);
    const fired: string[] = [];
    clock.setTimer(() => fired.push('b'), 20);
    clock.setTimer(() => fired.push('a'), 10);
    const c = clock.setTimer(() => fired.push('c'), 15);
    c.cancel();
    clock.step(25);
    expect(fired).to.deep.equal(['a', 'b']);
    expect(clock.now()).to.equal(25);
  });

  it('fires a timer set by a firing timer when its deadline is within the same step', () => {
    const clock = new FakeClock(0);
    const fired: number[] = [];
    clock.setTimer(() => {
      fired.push(clock.now());
      clock.setTimer(() => fired.push(clock.now()), 5);
    }, 10);
    clock.step(20);
    expect(fired).to.deep.equal([10, 15]);
  });
});

describe('FakeClock wall time', () => {
  it('the wall clock starts where it is told and moves with the monotonic clock', () => {
    const clock = new FakeClock(100, Date.UTC(2026, 0, 1));
    clock.step(1_500);
    expect(clock.now()).to.equal(1_600);
    expect(new Date(clock.wallTime()).toISOString()).to.equal('2026-01-01T00:00:01.500Z');
  });
});
