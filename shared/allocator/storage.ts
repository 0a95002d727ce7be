/**
 * RangeAllocation objects (`scm.dev/v1alpha1`, cluster-scoped): where each allocation map lives,
 * so in etcd through the API server. One per range: `serviceips-ipv4`, `serviceips-ipv6`,
 * `servicenodeports`. Every change is a replace carrying the resourceVersion that was read, so two
 * writers never both win (compare-and-swap); the loser gets a 409 and redoes its work on a fresh
 * read (committer.ts).
 */
import { CustomObjectsApi, type KubernetesObject, type V1ObjectMeta } from '@kubernetes/client-node';
import type { KubeClient } from '../kube/client.ts';
import { isNotFound } from '../kube/errors.ts';
import type { RangeSnapshot } from './allocator.ts';

export const RANGE_ALLOCATION_GROUP = 'scm.dev';
export const RANGE_ALLOCATION_VERSION = 'v1alpha1';
export const RANGE_ALLOCATION_PLURAL = 'rangeallocations';
export const RANGE_ALLOCATION_API_VERSION = `${RANGE_ALLOCATION_GROUP}/${RANGE_ALLOCATION_VERSION}`;

/**
 * Values a webhook replica has marked in the map ahead of demand, to hand out without a write per
 * Service (pool.ts). Only `holder` hands them out, and only until `renewedAt + ttlSeconds` minus a
 * margin; the repair loop keeps them until then (plus a grace for clock skew) and drops the entry
 * afterwards, so the values of a replica that went away become leaks and are freed.
 */
export interface Reservation {
  holder: string;
  values: string[];
  /** RFC 3339. */
  renewedAt: string;
  ttlSeconds: number;
}

/** The object's fields: the range and bitmap, and the counts `kubectl get` shows. */
export interface RangeAllocation extends KubernetesObject, RangeSnapshot {
  apiVersion: typeof RANGE_ALLOCATION_API_VERSION;
  kind: 'RangeAllocation';
  metadata: V1ObjectMeta;
  /** How many values the range holds, used and free. */
  size: number;
  used: number;
  free: number;
  /** Percent used, rounded down. */
  percent: number;
  /** How many of `used` are reserved by webhook replicas and not handed out yet. */
  reserved?: number;
  reservations?: Reservation[];
}

export function rangeAllocationObject(
  name: string,
  snapshot: RangeSnapshot,
  counts: { size: number; used: number },
  metadata: V1ObjectMeta = {},
  reservations: readonly Reservation[] = [],
): RangeAllocation {
  const held = reservations.filter((r) => r.values.length > 0);
  return {
    apiVersion: RANGE_ALLOCATION_API_VERSION,
    kind: 'RangeAllocation',
    metadata: { ...metadata, name },
    range: snapshot.range,
    data: snapshot.data,
    size: counts.size,
    used: counts.used,
    free: counts.size - counts.used,
    percent: counts.size === 0 ? 100 : Math.floor((counts.used * 100) / counts.size),
    ...(held.length > 0
      ? { reserved: held.reduce((n, r) => n + r.values.length, 0), reservations: held.map((r) => ({ ...r })) }
      : {}),
  };
}

/** The time after which a reservation no longer counts, in wall milliseconds. */
export function reservationExpiry(r: Reservation): number {
  return Date.parse(r.renewedAt) + r.ttlSeconds * 1000;
}

export interface RangeAllocationStore {
  /** The stored object, undefined when there is none. */
  get(name: string, signal?: AbortSignal): Promise<RangeAllocation | undefined>;
  /** Creates it; throws the API's 409 AlreadyExists when another writer was first. */
  create(obj: RangeAllocation, signal?: AbortSignal): Promise<RangeAllocation>;
  /** Replaces it if `obj.metadata.resourceVersion` is still current; else throws the API's 409. */
  replace(obj: RangeAllocation, signal?: AbortSignal): Promise<RangeAllocation>;
}

/**
 * The store on the API server. `fenced: false` for the admission webhook, which allocates on every
 * replica; the leader's repair loops and releases use the fenced one, so a deposed leader can
 * never free a value that a newer leader handed out again.
 */
export class KubeRangeAllocationStore implements RangeAllocationStore {
  private readonly client: KubeClient;
  private readonly api: CustomObjectsApi;

  constructor(client: KubeClient, opts: { fenced: boolean }) {
    this.client = client;
    this.api = client.api(CustomObjectsApi, { fenced: opts.fenced });
  }

  async get(name: string, signal?: AbortSignal): Promise<RangeAllocation | undefined> {
    try {
      return (await this.api.getClusterCustomObject(
        {
          group: RANGE_ALLOCATION_GROUP,
          version: RANGE_ALLOCATION_VERSION,
          plural: RANGE_ALLOCATION_PLURAL,
          name,
        },
        this.client.withSignal(signal),
      )) as RangeAllocation;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async create(obj: RangeAllocation, signal?: AbortSignal): Promise<RangeAllocation> {
    return (await this.api.createClusterCustomObject(
      {
        group: RANGE_ALLOCATION_GROUP,
        version: RANGE_ALLOCATION_VERSION,
        plural: RANGE_ALLOCATION_PLURAL,
        body: obj,
      },
      this.client.withSignal(signal),
    )) as RangeAllocation;
  }

  async replace(obj: RangeAllocation, signal?: AbortSignal): Promise<RangeAllocation> {
    return (await this.api.replaceClusterCustomObject(
      {
        group: RANGE_ALLOCATION_GROUP,
        version: RANGE_ALLOCATION_VERSION,
        plural: RANGE_ALLOCATION_PLURAL,
        name: obj.metadata.name ?? '',
        body: obj,
      },
      this.client.withSignal(signal),
    )) as RangeAllocation;
  }
}
