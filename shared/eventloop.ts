/**
 * Sharing the event loop: how long the current turn has run, and a yield for long computations.
 *
 * One process serves every controller, its watches, probes, metrics and the leader lease on one
 * thread. A computation that holds the loop for hundreds of milliseconds (a sync of a
 * 10,000-pod Service) delays all of them: watch events pile up, probes time out. Work that can run
 * long therefore checks `turnMs()` and awaits `yieldIfTurnLong()` between pieces: the loop goes
 * round (timers, I/O) and the work resumes. Short work never yields, so small Services pay nothing.
 *
 * The turn is measured from the first `turnMs()` call of a turn until the loop goes round
 * (a setImmediate resets it), so it counts the time spent since the first check, not since the
 * macrotask began: the callers check often enough for that to be the same.
 */

/** How long one turn may run before long work yields (docs/PERFORMANCE.md section 11). */
export const TURN_BUDGET_MS = 10;

let turnStartedAt: number | undefined;

/** Milliseconds the current event-loop turn has been running (0 on its first call in a turn). */
export function turnMs(): number {
  const now = performance.now();
  if (turnStartedAt === undefined) {
    turnStartedAt = now;
    setImmediate(() => (turnStartedAt = undefined));
  }
  return now - turnStartedAt;
}

/**
 * Resolves once the event loop has gone round (after pending I/O callbacks and timers); the turn
 * in which it resolves is counted from then, so the work that follows counts toward it.
 */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) =>
    setImmediate(() => {
      turnMs();
      resolve();
    }),
  );
}

/**
 * Yields to the event loop when the current turn has run for `budgetMs` or more; otherwise
 * resolves at once (a microtask). Throws the signal's reason when it is aborted by then.
 */
export async function yieldIfTurnLong(signal?: AbortSignal, budgetMs = TURN_BUDGET_MS): Promise<void> {
  if (turnMs() >= budgetMs) await nextTurn();
  signal?.throwIfAborted();
}

/** Pods (or other items) handed to piecewise work at a time, between checks of the turn. */
export const PIECE_SIZE = 256;

/**
 * Calls `add` with consecutive pieces of `items` (`pieceSize` at a time, in order), yielding to the
 * event loop between pieces when the turn has run long (`yieldIfTurnLong`). For up to `pieceSize`
 * items it is one synchronous call and no yield.
 */
export async function inPieces<T>(
  items: readonly T[],
  add: (piece: readonly T[]) => void,
  signal?: AbortSignal,
  pieceSize = PIECE_SIZE,
): Promise<void> {
  if (items.length <= pieceSize) {
    add(items);
    return;
  }
  turnMs(); // the turn is counted from here at the latest, so the first piece counts too
  for (let start = 0; start < items.length; start += pieceSize) {
    if (start > 0) await yieldIfTurnLong(signal);
    add(items.slice(start, start + pieceSize));
  }
}
