import { expect } from 'chai';
import { inPieces, turnMs, yieldIfTurnLong } from '../../shared/eventloop.ts';

/** Keeps the loop busy for `ms` of real time, as a sync of a large Service does. */
function spin(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until);
}

describe('event-loop sharing', () => {
  it('a turn that has run less than the budget does not yield', async () => {
    const order: string[] = [];
    setImmediate(() => order.push('event loop'));
    turnMs();
    await yieldIfTurnLong(undefined, 1_000);
    order.push('work');
    expect(order).to.deep.equal(['work']);
  });

  it('a turn that has run the budget lets the loop go round first', async () => {
    const order: string[] = [];
    turnMs();
    setImmediate(() => order.push('event loop'));
    spin(5);
    await yieldIfTurnLong(undefined, 5);
    order.push('work');
    expect(order).to.deep.equal(['event loop', 'work']);
  });

  it('an aborted signal ends the work at the next check', async () => {
    const aborted = AbortSignal.abort(new Error('stopping'));
    let error: unknown;
    await yieldIfTurnLong(aborted).catch((err: unknown) => (error = err));
    expect((error as Error).message).to.equal('stopping');
  });

  it('pieces of 256: 1,000 items in order as 256, 256, 256, 232, the loop going round between long ones', async () => {
    const items = Array.from({ length: 1000 }, (_, i) => i);
    const pieces: number[] = [];
    const seen: number[] = [];
    let turns = 0;
    const tick = (): void => {
      turns++;
      if (turns < 100) setImmediate(tick);
    };
    setImmediate(tick);
    await inPieces(items, (piece) => {
      pieces.push(piece.length);
      seen.push(...piece);
      spin(12); // each piece takes more than the 10 ms budget: the loop goes round after each
    });
    expect(pieces).to.deep.equal([256, 256, 256, 232]);
    expect(seen).to.deep.equal(items);
    expect(turns).to.be.at.least(3);
  });

  it('up to one piece is a single synchronous call', async () => {
    const items = Array.from({ length: 256 }, (_, i) => i);
    const pieces: number[] = [];
    const done = inPieces(items, (piece) => pieces.push(piece.length));
    // Called before inPieces returned its promise: no await in between.
    expect(pieces).to.deep.equal([256]);
    await done;
  });
});
