/**
 * LoadBalancer reconciler: one Service key at a time, the fewest writes.
 *
 * - In scope: the cleanup finalizer first (the webhook adds it at create, so this is usually no
 *   write), then the addresses (desired.ts) claimed in the book at once, then one status write —
 *   a JSON patch carrying the resourceVersion read, so a newer status written by someone else is
 *   never overwritten blindly (409, retried from the cache). A status that already says the same
 *   is not written.
 * - Deleted (deletionTimestamp): the addresses are released and the finalizer removed.
 * - Left our scope (type or class changed): the addresses are released, the ingress entries we
 *   wrote and our condition cleared, the finalizer removed.
 * - Gone from the cache: the addresses are released.
 * Events: `IPAllocated`, `AllocationFailed` (with the reason), `IPReleased`, `PoolChanged`; each
 * with the status write that records it, so a Service already right gets none. A Service that
 * failed is retried whenever addresses are freed or the pools change (`pendingKeys`).
 */
import type { V1Service, V1ServiceStatus } from '@kubernetes/client-node';
import type { Clock } from '../../shared/clock.ts';
import type { Reconciler, Request } from '../../shared/controller/reconciler.ts';
import type { ReadonlyStore } from '../../shared/informer/store.ts';
import { isNotFound } from '../../shared/kube/errors.ts';
import type { EventRecorder } from '../../shared/kube/events.ts';
import { objectKey } from '../../shared/kube/labels.ts';
import type { Logger } from '../../shared/log.ts';
import type { AddressBook } from './book.ts';
import {
  chooseAddresses,
  conditionFor,
  desiredIngress,
  desiredStatus,
  inScope,
  type Scope,
  statusAddresses,
  statusMatches,
} from './desired.ts';
import type { LoadBalancerMetrics } from './metrics.ts';
import type { ParsedPool } from './pools.ts';
import { familyOfText } from '../../shared/net/ip.ts';
import { sharingProfile } from './sharing.ts';
import { ADDRESS_ASSIGNED_CONDITION, CLEANUP_FINALIZER } from './types.ts';

/** The writes the reconciler issues; the controller binds them to the API, unit tests record them. */
export interface ServiceStatusWriter {
  /** Replaces the status if the Service is still at `resourceVersion` (else the API's 409). */
  writeStatus(svc: V1Service, status: V1ServiceStatus, signal: AbortSignal): Promise<V1Service>;
  /** Sets the finalizers if the Service is still at its resourceVersion (else the API's 409). */
  writeFinalizers(svc: V1Service, finalizers: string[], signal: AbortSignal): Promise<V1Service>;
}

export interface LoadBalancerReconcilerOptions {
  services: ReadonlyStore<V1Service>;
  namespaceLabels: (namespace: string) => Readonly<Record<string, string>> | undefined;
  /** Every pool in choice order (resolvePools), as of now. */
  pools: () => readonly ParsedPool[];
  book: AddressBook;
  writer: ServiceStatusWriter;
  scope: Scope;
  reassignOnPoolChange: boolean;
  events: EventRecorder;
  metrics: LoadBalancerMetrics;
  clock: Clock;
  log: Logger;
  /** Addresses became free (pending Services may get them now). */
  onFreed: () => void;
}

export class LoadBalancerReconciler implements Reconciler {
  private readonly opts: LoadBalancerReconcilerOptions;
  /** Services in scope that have no address (to retry when addresses free up or pools change). */
  readonly pendingKeys = new Set<string>();

  constructor(opts: LoadBalancerReconcilerOptions) {
    this.opts = opts;
  }

  async reconcile({ namespace, name }: Request, signal: AbortSignal): Promise<void> {
    const key = objectKey(namespace, name);
    const svc = this.opts.services.get(key);
    if (!svc) {
      this.pendingKeys.delete(key);
      this.released(this.opts.book.release(key));
      return;
    }
    if (!inScope(svc, this.opts.scope)) return this.leaveScope(key, svc, signal);
    if (svc.metadata?.deletionTimestamp) return this.finish(key, svc, signal);
    try {
      await this.assign(key, svc, signal);
    } catch (err) {
      if (!isNotFound(err)) throw err;
      this.pendingKeys.delete(key);
      this.released(this.opts.book.release(key)); // deleted meanwhile
    }
  }

  private async assign(key: string, cached: V1Service, signal: AbortSignal): Promise<void> {
    const { book, writer, events } = this.opts;
    let svc = cached;
    const finalizers = svc.metadata?.finalizers ?? [];
    if (!finalizers.includes(CLEANUP_FINALIZER)) {
      svc = await writer.writeFinalizers(svc, [...finalizers, CLEANUP_FINALIZER], signal);
    }
    const profile = sharingProfile(key, svc);
    const choice = chooseAddresses({
      key,
      service: svc,
      profile,
      namespaceLabels: this.opts.namespaceLabels(svc.metadata?.namespace ?? ''),
      pools: this.opts.pools(),
      book,
      reassignOnPoolChange: this.opts.reassignOnPoolChange,
    });
    let freed: string[];
    if (choice.ok) {
      freed = book.assign(choice.addresses, profile);
      this.pendingKeys.delete(key);
    } else {
      freed = book.release(key);
      this.pendingKeys.add(key);
    }
    const ingress = choice.ok ? desiredIngress(svc, choice.addresses) : [];
    const want = desiredStatus(svc, ingress, conditionFor(choice), new Date(this.opts.clock.wallTime()));
    if (!statusMatches(svc, want)) {
      await writer.writeStatus(svc, want, signal);
      const ref = serviceRef(svc);
      if (choice.ok) {
        if (choice.added.length > 0) {
          events.event(ref, 'Normal', 'IPAllocated', `Assigned IP [${choice.addresses.join(', ')}]`);
          for (const ip of choice.added) this.opts.metrics.allocated(book.poolOf(ip) ?? '', familyOfText(ip));
        }
        if (choice.poolChanged) events.event(ref, 'Warning', 'PoolChanged', choice.poolChanged);
      } else {
        events.event(ref, 'Warning', 'AllocationFailed', choice.message);
        this.opts.metrics.failed(choice.reason);
      }
      if (freed.length > 0) events.event(ref, 'Normal', 'IPReleased', `Released IP [${freed.join(', ')}]`);
    }
    this.released(freed);
  }

  /** Deletion: release and let the Service go. */
  private async finish(key: string, svc: V1Service, signal: AbortSignal): Promise<void> {
    this.pendingKeys.delete(key);
    const freed = this.opts.book.release(key);
    const finalizers = svc.metadata?.finalizers ?? [];
    if (finalizers.includes(CLEANUP_FINALIZER)) {
      await this.ignoreGone(() =>
        this.opts.writer.writeFinalizers(
          svc,
          finalizers.filter((f) => f !== CLEANUP_FINALIZER),
          signal,
        ),
      );
      if (freed.length > 0) {
        this.opts.events.event(serviceRef(svc), 'Normal', 'IPReleased', `Released IP [${freed.join(', ')}]`);
      }
    }
    this.released(freed);
  }

  /** The Service is no longer ours: release, clear what we wrote, drop the finalizer. */
  private async leaveScope(key: string, svc: V1Service, signal: AbortSignal): Promise<void> {
    this.pendingKeys.delete(key);
    let finalizers = svc.metadata?.finalizers ?? [];
    const hadFinalizer = finalizers.includes(CLEANUP_FINALIZER);
    const hasCondition = svc.status?.conditions?.some((c) => c.type === ADDRESS_ASSIGNED_CONDITION) ?? false;
    const shown = statusAddresses(svc);
    // What we hold for it; after a restart (the book is rebuilt from Services in scope only) the
    // addresses its status shows from our pools, when our condition or finalizer says we served it.
    const held =
      this.opts.book.addressesOf(key) ??
      (hadFinalizer || hasCondition ? shown.filter((ip) => this.opts.book.poolOf(ip) !== undefined) : []);
    if (held.length === 0 && !hadFinalizer && !hasCondition) return;
    const freed = this.opts.book.release(key);
    let current = svc;
    if (hasCondition || shown.some((ip) => held.includes(ip))) {
      const ingress = (svc.status?.loadBalancer?.ingress ?? []).filter((i) => !held.includes(i.ip ?? ''));
      const want = desiredStatus(svc, ingress, undefined, new Date(this.opts.clock.wallTime()));
      const written = await this.ignoreGone(() => this.opts.writer.writeStatus(svc, want, signal));
      if (written) current = written;
    }
    if (hadFinalizer) {
      finalizers = finalizers.filter((f) => f !== CLEANUP_FINALIZER);
      await this.ignoreGone(() => this.opts.writer.writeFinalizers(current, finalizers, signal));
    }
    if (held.length > 0) {
      this.opts.events.event(
        serviceRef(svc),
        'Normal',
        'IPReleased',
        `Released IP [${held.join(', ')}]: the Service is no longer a LoadBalancer this controller serves`,
      );
    }
    this.released(freed);
  }

  private released(freed: readonly string[]): void {
    if (freed.length > 0) this.opts.onFreed();
  }

  private async ignoreGone<T>(write: () => Promise<T>): Promise<T | undefined> {
    try {
      return await write();
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }
}

function serviceRef(svc: V1Service): {
  kind: string;
  apiVersion: string;
  namespace?: string;
  name: string;
  uid?: string;
} {
  return {
    kind: 'Service',
    apiVersion: 'v1',
    namespace: svc.metadata?.namespace,
    name: svc.metadata?.name ?? '',
    uid: svc.metadata?.uid,
  };
}
