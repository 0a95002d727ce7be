/**
 * Informer event wiring the endpoints, EndpointSlice and mirroring controllers share: pod events
 * -> the Services to resync, and events of a controller's own slices -> the key that owns them.
 *
 * Contract of `watchPodsForServices` (which Services a pod event concerns is decided by
 * predicates.ts):
 * - A pod add or delete enqueues every Service of the pod's namespace whose selector matches it.
 * - A pod update enqueues the Services `servicesToSyncOnPodUpdate` names (none for a resync).
 * - Services are found through the Service cache's SERVICE_SELECTOR_INDEX (selection.ts) when the
 *   event arrives; the cache must have it.
 *
 * Contract of `watchOwnSlices` (slices are "ours" by `isOurs`, owned by "namespace/<service-name
 * label>"; a slice without that label has no owner to enqueue):
 * - Add or update of one of ours: the owner is enqueued (`enqueueOwner`) when `tracker.shouldSync`
 *   says someone else wrote it or it is new to us (at start, every slice once: orphans get
 *   cleaned); otherwise it is our own write coming back, which wakes the owner at once
 *   (`enqueueNow`) if a sync of it waits for the cache.
 * - An update that changes the service-name label, or whether the slice is ours, moves the slice
 *   to another owner: the tracker forgets it under the old owner, and the old owner (if the old
 *   slice was ours) and the new one (if the new slice is ours) are enqueued.
 * - Delete of one of ours: a deletion we issued wakes the owner as above; any other (or of a slice
 *   we never wrote, e.g. before a restart) enqueues the owner: the slice may have to be recreated.
 */
import type { V1EndpointSlice, V1Pod, V1Service } from '@kubernetes/client-node';
import type { SharedInformer } from '../informer/informer.ts';
import type { ReadonlyStore } from '../informer/store.ts';
import { servicesToSyncOnPodUpdate } from './predicates.ts';
import { candidateServices, servicesSelecting } from './selection.ts';
import { LABEL_SERVICE_NAME } from './slices.ts';
import { type EndpointSliceTracker, serviceKeyOf } from './tracker.ts';

/** Calls `enqueue` with the key of every Service a pod add, update or delete concerns. */
export function watchPodsForServices(
  pods: SharedInformer<V1Pod>,
  services: ReadonlyStore<V1Service>,
  enqueue: (serviceKey: string) => void,
): void {
  const enqueueServicesOf = (pod: V1Pod): void => {
    for (const key of servicesSelecting(pod, services)) enqueue(key);
  };
  pods.addEventHandler({
    add: enqueueServicesOf,
    update: (oldPod, newPod) => {
      // Only the Services that may select the old or the new pod need their selectors tested.
      const candidates = [...candidateServices(oldPod, services), ...candidateServices(newPod, services)];
      for (const key of servicesToSyncOnPodUpdate(oldPod, newPod, candidates)) enqueue(key);
    },
    delete: enqueueServicesOf,
  });
}

/**
 * Enqueues the owner of `isOurs` slices on the events that need a sync of it, and wakes a sync
 * waiting for our own writes to reach the cache (see the module contract).
 */
export function watchOwnSlices(
  slices: SharedInformer<V1EndpointSlice>,
  tracker: EndpointSliceTracker,
  isOurs: (slice: V1EndpointSlice) => boolean,
  enqueueOwner: (ownerKey: string) => void,
  enqueueNow: (ownerKey: string) => void,
): void {
  const syncOwner = (slice: V1EndpointSlice): void => {
    if (slice.metadata?.labels?.[LABEL_SERVICE_NAME]) enqueueOwner(serviceKeyOf(slice));
  };
  // Our own write coming back: wakes a sync that found the cache behind it.
  const wakeWaiting = (slice: V1EndpointSlice): void => {
    const key = serviceKeyOf(slice);
    if (tracker.isWaitingForCache(key)) enqueueNow(key);
  };
  const changed = (slice: V1EndpointSlice): void => {
    if (tracker.shouldSync(slice)) syncOwner(slice);
    else wakeWaiting(slice);
  };
  slices.addEventHandler({
    add: (slice) => {
      if (isOurs(slice)) changed(slice);
    },
    update: (oldSlice, slice) => {
      const moved =
        oldSlice.metadata?.labels?.[LABEL_SERVICE_NAME] !== slice.metadata?.labels?.[LABEL_SERVICE_NAME] ||
        isOurs(oldSlice) !== isOurs(slice);
      if (moved) {
        // It left the old owner's set: what we wrote under that key must not keep it waiting.
        tracker.forget(oldSlice);
        if (isOurs(oldSlice)) syncOwner(oldSlice);
        if (isOurs(slice)) syncOwner(slice);
      } else if (isOurs(slice)) {
        changed(slice);
      }
    },
    delete: (slice) => {
      if (!isOurs(slice)) return;
      // A deletion we did not issue, or of a slice we never wrote (one from before a restart),
      // needs a sync: the slice may have to be recreated.
      if (tracker.has(slice) && tracker.handleDeletion(slice)) wakeWaiting(slice);
      else syncOwner(slice);
    },
  });
}
