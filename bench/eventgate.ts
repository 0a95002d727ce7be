/**
 * What the bench's watches share: informer handlers call `noteEvent()`, and `until(holds)` checks
 * again after each burst of watch events, resolving with the arrival time of the last event seen
 * before `holds()` was true (NaN on timeout). That time, not the moment the check ran, is when the
 * state was reached.
 */
export class EventGate {
  private lastEventAt = Date.now();
  private changed = true;
  private wake: (() => void) | undefined;

  /** Records a watch event now; returns its arrival time. */
  noteEvent(): number {
    this.lastEventAt = Date.now();
    this.changed = true;
    this.wake?.();
    return this.lastEventAt;
  }

  async until(holds: () => boolean, timeoutMs: number): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.changed) {
        this.changed = false;
        const upTo = this.lastEventAt;
        if (holds()) return upTo;
      }
      const left = deadline - Date.now();
      if (left <= 0) return Number.NaN;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          // Let the rest of a burst of watch events land before checking again.
          setImmediate(resolve);
        };
      });
      this.wake = undefined;
    }
  }
}
