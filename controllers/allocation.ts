/**
 * What the ClusterIP and NodePort controllers share: the Runnable that runs their repair loops
 * and releases-on-watch while this replica leads, the fresh paged list of every Service a repair
 * pass reads, and the informer index that tells whether any Service still holds a value.
 */
import { CoreV1Api, type V1Service } from '@kubernetes/client-node';
import { whenAborted } from '../shared/abort.ts';
import type { RepairLoop } from '../shared/allocator/repairloop.ts';
import type { WatchReleaser } from '../shared/allocator/release.ts';
import type { Syncable } from '../shared/controller/controller.ts';
import type { KubeClient } from '../shared/kube/client.ts';
import type { Logger } from '../shared/log.ts';
import type { Runnable } from './context.ts';

const LIST_PAGE_SIZE = 500;

/** Every Service, read from etcd (a consistent read, not the watch cache): what a repair pass trusts. */
export function listAllServices(client: KubeClient): (signal: AbortSignal) => Promise<V1Service[]> {
  const core = client.api(CoreV1Api);
  return async (signal) => {
    const out: V1Service[] = [];
    let cont: string | undefined;
    do {
      const page = await core.listServiceForAllNamespaces(
        { limit: LIST_PAGE_SIZE, _continue: cont },
        client.withSignal(signal),
      );
      out.push(...page.items);
      cont = page.metadata?._continue || undefined;
    } while (cont);
    return out;
  };
}

export interface AllocationControllerOptions {
  name: string;
  loops: readonly RepairLoop<unknown>[];
  releasers: readonly WatchReleaser<unknown>[];
  caches: readonly Syncable[];
  log: Logger;
}

export class AllocationController implements Runnable {
  readonly name: string;
  private readonly opts: AllocationControllerOptions;

  constructor(opts: AllocationControllerOptions) {
    this.name = opts.name;
    this.opts = opts;
  }

  async start(stop: AbortSignal, abort: AbortSignal): Promise<void> {
    const signal = AbortSignal.any([stop, abort]);
    try {
      await Promise.all(this.opts.caches.map((c) => c.waitForSync(signal)));
    } catch {
      return; // stopped before the caches synced
    }
    for (const r of this.opts.releasers) r.activate();
    this.opts.log.info('allocation controller started', { controller: this.name });
    await Promise.all([...this.opts.loops.map((l) => l.run(signal)), whenAborted(signal)]);
    await Promise.all(this.opts.releasers.map((r) => r.deactivate()));
  }
}
