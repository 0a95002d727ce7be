/**
 * Time as every timed component sees it. Production code uses `realClock`; unit tests use
 * `FakeClock` and move time with `step(ms)`, so no unit test sleeps.
 *
 * Two kinds of time, never mixed: `now()` is a monotonic clock (milliseconds from an arbitrary
 * origin; it never jumps when the wall clock is set, by NTP or by hand) and is what every duration,
 * deadline, backoff, delay and lease expiry is measured on. `wallTime()` is the wall clock (ms since
 * the epoch), only for timestamps written into objects (Lease renewTime, Event timestamps) and
 * logs. On Linux the monotonic clock keeps counting while the process is stopped (SIGSTOP, a VM
 * pause seen as stolen time) but not across a system suspend.
 *
 * Contract: `setTimer(fn, ms)` runs `fn` once, no earlier than `now() + ms`; `cancel()` on the
 * returned handle prevents a run that has not happened yet and is a no-op afterwards.
 */
export interface Timer {
  cancel(): void;
}

export interface Clock {
  /** Monotonic milliseconds from an arbitrary origin: for durations and deadlines only. */
  now(): number;
  /** Wall-clock milliseconds since the epoch: for timestamps written into objects, never for durations. */
  wallTime(): number;
  setTimer(fn: () => void, delayMs: number): Timer;
  /** Resolves after `delayMs`, or at once (rejecting with the signal's reason) when `signal` aborts. */
  sleep(delayMs: number, signal?: AbortSignal): Promise<void>;
}

class RealClock implements Clock {
  now(): number {
    return performance.now();
  }

  wallTime(): number {
    return Date.now();
  }

  setTimer(fn: () => void, delayMs: number): Timer {
    const handle = setTimeout(fn, Math.max(0, delayMs));
    // Timers never keep the process alive on their own: shutdown is driven by signals.
    handle.unref();
    return { cancel: () => clearTimeout(handle) };
  }

  sleep(delayMs: number, signal?: AbortSignal): Promise<void> {
    return sleepOn(this, delayMs, signal);
  }
}

export const realClock: Clock = new RealClock();

function sleepOn(clock: Clock, delayMs: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason as Error);
      return;
    }
    const onAbort = (): void => {
      timer.cancel();
      reject(signal?.reason as Error);
    };
    const timer = clock.setTimer(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, delayMs);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

interface PendingTimer {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

/**
 * A clock that only moves when told. Timers due at the same instant fire in the order they were
 * set. `step` fires every timer due up to the new time, including timers set by timers it fires.
 */
export class FakeClock implements Clock {
  private current: number;
  private readonly wallOffset: number;
  private seq = 0;
  private pending: PendingTimer[] = [];

  /** `startMs` is the monotonic start; the wall clock starts at `wallStartMs` and moves with it. */
  constructor(startMs = 1_700_000_000_000, wallStartMs = startMs) {
    this.current = startMs;
    this.wallOffset = wallStartMs - startMs;
  }

  now(): number {
    return this.current;
  }

  wallTime(): number {
    return this.current + this.wallOffset;
  }

  setTimer(fn: () => void, delayMs: number): Timer {
    const timer: PendingTimer = {
      at: this.current + Math.max(0, delayMs),
      seq: this.seq++,
      fn,
      cancelled: false,
    };
    this.pending.push(timer);
    return {
      cancel: () => {
        timer.cancelled = true;
      },
    };
  }

  sleep(delayMs: number, signal?: AbortSignal): Promise<void> {
    return sleepOn(this, delayMs, signal);
  }

  /** Timers that are set and not yet fired nor cancelled. */
  pendingTimers(): number {
    return this.pending.filter((t) => !t.cancelled).length;
  }

  /** Moves time forward by `ms`, firing due timers in deadline order. */
  step(ms: number): void {
    const target = this.current + ms;
    for (;;) {
      this.pending = this.pending.filter((t) => !t.cancelled);
      let next: PendingTimer | undefined;
      for (const t of this.pending) {
        if (t.at <= target && (!next || t.at < next.at || (t.at === next.at && t.seq < next.seq))) next = t;
      }
      if (!next) break;
      this.current = Math.max(this.current, next.at);
      next.cancelled = true;
      next.fn();
    }
    this.current = target;
  }
}
