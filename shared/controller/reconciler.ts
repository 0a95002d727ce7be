/**
 * The one method a controller implements.
 *
 * `reconcile(request)` makes the world match the desired state for one object key and reports
 * how it went:
 * - resolves (with nothing or `{}`): done; the key's backoff is forgotten.
 * - resolves with `{ requeueAfterMs }`: done for now; run again after that delay (backoff forgotten).
 * - throws any error: retried with the queue's rate limiter (per-key exponential backoff, shared
 *   token bucket), up to the controller's retry cap, then dropped with a log line and a callback.
 * - throws `TerminalError`: logged and dropped at once; retrying cannot help.
 * An error never stops the controller's workers.
 *
 * `signal` aborts when the work must stop at once (the leader Lease was lost, or a graceful
 * shutdown ran out of time): every API call made for the reconcile takes it
 * (`client.withSignal(signal)`), so an aborted reconcile sends nothing more and ends soon. A
 * graceful stop does not abort it: in-flight reconciles finish while the Lease is still renewed.
 */
export interface Request {
  namespace: string;
  name: string;
}

export interface Result {
  requeueAfterMs?: number;
}

export interface Reconciler {
  reconcile(request: Request, signal: AbortSignal): Promise<Result | void>;
}

/** An error that retrying cannot fix (bad input); the key is dropped after one log line. */
export class TerminalError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'TerminalError';
  }
}
