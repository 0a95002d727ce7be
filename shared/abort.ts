/** Resolves when the first of `signals` aborts (at once if one already has); never rejects. */
export function whenAborted(...signals: AbortSignal[]): Promise<void> {
  const any = signals.length === 1 ? signals[0] : AbortSignal.any(signals);
  return new Promise<void>((resolve) => {
    if (any.aborted) resolve();
    else any.addEventListener('abort', () => resolve(), { once: true });
  });
}
