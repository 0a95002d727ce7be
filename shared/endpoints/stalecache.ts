/**
 * Guards against writing from a cache that has not yet seen our own last write.
 *
 * After we replace an object, the informer may still hold the version we replaced for a moment.
 * A sync that reads that version would compute from stale data and its update would fail with a
 * conflict anyway; worse, a create could race. So we remember, per key, the resourceVersion we
 * replaced and treat a cache that still shows it as stale: the sync is retried with backoff.
 * The record is cleared once the cache shows any other version (or nothing, after a delete).
 */
export class StaleCacheError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StaleCacheError';
  }
}

export class StaleCacheTracker {
  private readonly replaced = new Map<string, string>();

  /** Remembers that `oldResourceVersion` of `key` was replaced by our write. */
  recordReplaced(key: string, oldResourceVersion: string | undefined): void {
    if (oldResourceVersion) this.replaced.set(key, oldResourceVersion);
  }

  /** Throws StaleCacheError when the cache still shows a version we replaced. */
  check(key: string, cachedResourceVersion: string | undefined): void {
    const old = this.replaced.get(key);
    if (old === undefined) return;
    if (cachedResourceVersion === old)
      throw new StaleCacheError(
        `the cache still holds ${key} at resourceVersion ${old}, which we already replaced; retrying`,
      );
    this.replaced.delete(key);
  }

  forget(key: string): void {
    this.replaced.delete(key);
  }
}
