/**
 * Endpoints reconciler: compares the desired Endpoints of one Service with the cached one and
 * issues the fewest writes (none when subsets, labels and the capacity annotation already match).
 *
 * Errors: an API error is thrown (the controller retries it with backoff); a create refused because
 * the namespace is terminating is dropped quietly; a cache that still shows a version we replaced
 * throws StaleCacheError (retried) instead of writing from stale data.
 */
import type { V1Endpoints, V1Pod, V1Service } from '@kubernetes/client-node';
import { namespacedPath, type KubeClient } from '../../shared/kube/client.ts';
import type { Reconciler, Request } from '../../shared/controller/reconciler.ts';
import { hasStatusCause, isNotFound, describeError } from '../../shared/kube/errors.ts';
import type { EventRecorder } from '../../shared/kube/events.ts';
import { objectKey } from '../../shared/kube/labels.ts';
import { podsSelectedBy } from '../../shared/endpoints/selection.ts';
import type { ReadonlyStore } from '../../shared/informer/store.ts';
import type { Logger } from '../../shared/log.ts';
import { selectsPods } from '../../shared/endpoints/pods.ts';
import { StaleCacheTracker } from '../../shared/endpoints/stalecache.ts';
import { formatTriggerTime, TriggerTimeTracker } from '../../shared/endpoints/triggertime.ts';
import { inPieces, yieldIfTurnLong } from '../../shared/eventloop.ts';
import { PodMemo } from '../../shared/endpoints/podmemo.ts';
import type { AddressEntry } from '../../shared/endpoints/subsets.ts';
import {
  DesiredEndpointsBuilder,
  labelsEqual,
  OVER_CAPACITY_ANNOTATION,
  subsetsEqual,
  TRIGGER_TIME_ANNOTATION,
} from './desired.ts';

/**
 * The writes the reconciler may issue; the controller binds it to the API, unit tests record it.
 * Each write ends when `signal` aborts.
 */
export interface EndpointsWriter {
  create(namespace: string, endpoints: V1Endpoints, signal: AbortSignal): Promise<V1Endpoints>;
  update(namespace: string, endpoints: V1Endpoints, signal: AbortSignal): Promise<V1Endpoints>;
  /** Deletes; resolves also when it does not exist. */
  delete(namespace: string, name: string, signal: AbortSignal): Promise<void>;
}

export interface EndpointsListers {
  services: ReadonlyStore<V1Service>;
  /** Must have POD_LABEL_INDEX (shared/endpoints/selection.ts). */
  pods: ReadonlyStore<V1Pod>;
  endpoints: ReadonlyStore<V1Endpoints>;
}

export class EndpointsReconciler implements Reconciler {
  private readonly listers: EndpointsListers;
  private readonly writer: EndpointsWriter;
  private readonly events: EventRecorder | undefined;
  private readonly log: Logger;
  private readonly stale = new StaleCacheTracker();
  private readonly triggerTimes = new TriggerTimeTracker();
  /** Each pod's entries at the last sync of its Service (the incremental desired state). */
  private readonly memo = new PodMemo<AddressEntry[]>();

  constructor(deps: {
    listers: EndpointsListers;
    writer: EndpointsWriter;
    log: Logger;
    events?: EventRecorder;
  }) {
    this.listers = deps.listers;
    this.writer = deps.writer;
    this.log = deps.log;
    this.events = deps.events;
  }

  async reconcile({ namespace, name }: Request, signal: AbortSignal): Promise<void> {
    const key = objectKey(namespace, name);
    const service = this.listers.services.get(key);
    if (!service) {
      // Spec 1: the Service is gone, so are its Endpoints (selector-less ones included: they were
      // created for that Service and upstream deletes them too).
      // Deleting only what the cache holds saves a 404 DELETE per Service deletion; if our own
      // create is not in the cache yet, its add event brings the key back here.
      this.triggerTimes.forget(key);
      this.stale.forget(key);
      if (this.listers.endpoints.get(key)) await this.writer.delete(namespace, name, signal);
      return;
    }
    if (!selectsPods(service)) return; // ExternalName or selector-less: the user's Endpoints.
    // Before the pods are read: a sync that will throw anyway should not pay for 10,000 of them.
    this.stale.check(key, this.listers.endpoints.get(key)?.metadata?.resourceVersion);

    const pods = podsSelectedBy(service, this.listers.pods);
    // A large Service is built a piece at a time, the event loop going round between pieces.
    const builder = new DesiredEndpointsBuilder(service, { memo: this.memo });
    await inPieces(pods, (piece) => builder.addPods(piece), signal);
    const desired = builder.finish();
    if (!desired) return;
    await yieldIfTurnLong(signal);
    // Read now: other events may have been handled while the pieces were built.
    const current = this.listers.endpoints.get(key);
    this.stale.check(key, current?.metadata?.resourceVersion);

    const currentOver = current?.metadata?.annotations?.[OVER_CAPACITY_ANNOTATION] === 'truncated';
    if (
      current &&
      currentOver === desired.overCapacity &&
      labelsEqual(current.metadata?.labels ?? {}, desired.labels) &&
      subsetsEqual(current.subsets ?? [], desired.subsets)
    ) {
      return;
    }

    // Computed only when writing: the earliest change since our last write (cheaper, and no change
    // seen by a sync that wrote nothing is lost).
    await yieldIfTurnLong(signal);
    const triggerTime = this.triggerTimes.compute(key, service, pods);
    const annotations: Record<string, string> = { ...(current?.metadata?.annotations ?? {}) };
    if (triggerTime) annotations[TRIGGER_TIME_ANNOTATION] = formatTriggerTime(triggerTime);
    if (desired.overCapacity) annotations[OVER_CAPACITY_ANNOTATION] = 'truncated';
    else delete annotations[OVER_CAPACITY_ANNOTATION];

    const next: V1Endpoints = {
      apiVersion: 'v1',
      kind: 'Endpoints',
      metadata: {
        name,
        namespace,
        labels: desired.labels,
        annotations,
        ...(current ? { resourceVersion: current.metadata?.resourceVersion } : {}),
      },
      subsets: desired.subsets,
    };
    try {
      if (current) {
        await this.writer.update(namespace, next, signal);
        this.stale.recordReplaced(key, current.metadata?.resourceVersion);
      } else {
        await this.writer.create(namespace, next, signal);
      }
    } catch (err) {
      if (!current && hasStatusCause(err, 'NamespaceTerminating')) {
        this.log
          .v(2)
          .info('namespace is terminating; not creating Endpoints', { object: { namespace, name } });
        return;
      }
      const reason = current ? 'FailedToUpdateEndpoint' : 'FailedToCreateEndpoint';
      this.events?.event(
        { kind: 'Service', apiVersion: 'v1', namespace, name, uid: service.metadata?.uid },
        'Warning',
        reason,
        `Failed to ${current ? 'update' : 'create'} endpoint ${namespace}/${name}: ${describeError(err)}`,
      );
      throw err;
    }
  }
}

/** The API-backed writer. */
export function apiEndpointsWriter(client: KubeClient): EndpointsWriter {
  const core = client.core;
  return {
    // Creates and updates as plain JSON (KubeClient.writeJson): an Endpoints holds up to 1,000
    // addresses, which the typed API would walk through client-node's models both ways.
    create: (namespace, body, signal) =>
      client.writeJson<V1Endpoints>('POST', namespacedPath('/api/v1', 'endpoints', namespace), body, signal),
    update: (namespace, body, signal) =>
      client.writeJson<V1Endpoints>(
        'PUT',
        namespacedPath('/api/v1', 'endpoints', namespace, body.metadata?.name ?? ''),
        body,
        signal,
      ),
    delete: async (namespace, name, signal) => {
      try {
        await core.deleteNamespacedEndpoints({ name, namespace }, client.withSignal(signal));
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    },
  };
}
