/**
 * One SharedInformer per kind for the whole process, so each kind is listed and watched once no
 * matter how many controllers read it. Controllers ask for informers while they are built; the
 * manager then calls `start` once and `waitForSync` before any reconcile.
 */
import type { KubernetesObject } from '@kubernetes/client-node';
import type { Clock } from '../clock.ts';
import type { ListWatchClient } from '../kube/client.ts';
import type { Logger } from '../log.ts';
import { SharedInformer } from './informer.ts';
import type { ReflectorOptions } from './reflector.ts';
import type { ResourceType } from './resources.ts';

export class InformerFactory {
  private readonly informers = new Map<string, SharedInformer<KubernetesObject>>();
  private readonly running: Promise<void>[] = [];
  private readonly deps: { client: ListWatchClient; clock: Clock; log: Logger; opts?: ReflectorOptions };

  constructor(deps: { client: ListWatchClient; clock: Clock; log: Logger; opts?: ReflectorOptions }) {
    this.deps = deps;
  }

  informerFor<T extends KubernetesObject>(resource: ResourceType<T>): SharedInformer<T> {
    let inf = this.informers.get(resource.kind);
    if (!inf) {
      inf = new SharedInformer<T>({
        ...this.deps,
        log: this.deps.log.child({ informer: resource.kind }),
        resource,
      }) as unknown as SharedInformer<KubernetesObject>;
      this.informers.set(resource.kind, inf);
    }
    return inf as unknown as SharedInformer<T>;
  }

  /** Starts every informer asked for so far; they run until `signal` aborts. */
  start(signal: AbortSignal): void {
    for (const inf of this.informers.values()) this.running.push(inf.run(signal));
  }

  hasSynced(): boolean {
    return [...this.informers.values()].every((i) => i.hasSynced());
  }

  async waitForSync(signal: AbortSignal): Promise<void> {
    await Promise.all([...this.informers.values()].map((i) => i.waitForSync(signal)));
  }

  /** Resolves when every started informer has stopped. */
  async stopped(): Promise<void> {
    await Promise.all(this.running);
  }
}
