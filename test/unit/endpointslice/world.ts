/**
 * An in-memory world for EndpointSlice reconciler unit tests: stores standing in for the
 * informer caches, and a writer that applies writes to the slice store the way the API server
 * would (generated names, UIDs, generations, resourceVersions), counting them.
 */
import type { V1EndpointSlice, V1Node, V1Pod, V1Service } from '@kubernetes/client-node';
import { EndpointSliceReconciler, type SyncPlan } from '../../../controllers/endpointslice/reconciler.ts';
import { zoneCpuRatios } from '../../../controllers/endpointslice/zones.ts';
import {
  SERVICE_NAME_INDEX,
  serviceNameIndex,
  type EndpointSliceWriter,
} from '../../../shared/endpoints/slices.ts';
import { EndpointSliceTracker } from '../../../shared/endpoints/tracker.ts';
import { Store } from '../../../shared/informer/store.ts';
import { KubeApiError } from '../../../shared/kube/errors.ts';
import { keyOf } from '../../../shared/kube/labels.ts';
import { nopLogger } from '../../../shared/log.ts';
import { FakeClock } from '../../../shared/clock.ts';
import { POD_LABEL_INDEX, podLabelIndex } from '../../../shared/endpoints/selection.ts';

export const NS = 'n';

export interface WriteCounts {
  create: number;
  update: number;
  delete: number;
}

export interface RecordedEvent {
  type: string;
  reason: string;
  message: string;
}

export class SliceWorld {
  readonly services = new Store<V1Service>();
  readonly pods = new Store<V1Pod>({ [POD_LABEL_INDEX]: podLabelIndex });
  readonly slices = new Store<V1EndpointSlice>({ [SERVICE_NAME_INDEX]: serviceNameIndex });
  readonly nodes = new Store<V1Node>();
  readonly tracker = new EndpointSliceTracker();
  readonly writes: WriteCounts = { create: 0, update: 0, delete: 0 };
  readonly events: RecordedEvent[] = [];
  private seq = 0;
  private rv = 100;
  private reconciler: EndpointSliceReconciler;

  constructor(maxEndpointsPerSlice = 100) {
    this.reconciler = this.newReconciler(maxEndpointsPerSlice);
  }

  /** Replaces the reconciler (e.g. another max) over the same caches and tracker. */
  setMaxEndpointsPerSlice(max: number): void {
    this.reconciler = this.newReconciler(max);
  }

  /** Puts objects into the caches. */
  addServices(...services: V1Service[]): void {
    for (const svc of services) this.services.upsert(svc);
  }

  addPods(...pods: V1Pod[]): void {
    for (const p of pods) this.pods.upsert(p);
  }

  addNodes(...nodes: V1Node[]): void {
    for (const n of nodes) this.nodes.upsert(n);
  }

  /** One sync of Service n/<name>; returns the plan it issued. */
  sync(name = 's'): Promise<SyncPlan> {
    return this.reconciler.sync({ namespace: NS, name }, new AbortController().signal);
  }

  /** Syncs until a sync issues no write (at most 5 rounds); returns the total writes. */
  async settle(name = 's'): Promise<WriteCounts> {
    const before = { ...this.writes };
    for (let i = 0; i < 5; i++) {
      const plan = await this.sync(name);
      if (plan.creates.length + plan.updates.length + plan.deletes.length === 0) {
        return {
          create: this.writes.create - before.create,
          update: this.writes.update - before.update,
          delete: this.writes.delete - before.delete,
        };
      }
    }
    throw new Error('did not settle in 5 syncs');
  }

  /** Our slices of Service n/<name>, by name. */
  slicesOf(name = 's'): V1EndpointSlice[] {
    return this.slices
      .byIndex(SERVICE_NAME_INDEX, `${NS}/${name}`)
      .sort((a, b) => (a.metadata!.name! < b.metadata!.name! ? -1 : 1));
  }

  /** Stores a slice as if someone else wrote it (new generation). */
  handEdit(slice: V1EndpointSlice): void {
    const generation = (slice.metadata?.generation ?? 0) + 1;
    this.slices.upsert({
      ...slice,
      metadata: { ...slice.metadata, generation, resourceVersion: String(++this.rv) },
    });
  }

  readonly writer: EndpointSliceWriter = {
    create: (namespace, slice) => {
      this.writes.create++;
      const name = `${slice.metadata?.generateName ?? ''}${(++this.seq).toString(36).padStart(5, '0')}`;
      const stored: V1EndpointSlice = structuredClone({
        ...slice,
        metadata: {
          ...slice.metadata,
          name,
          namespace,
          uid: `uid-${name}`,
          generation: 1,
          resourceVersion: String(++this.rv),
        },
      });
      delete stored.metadata!.generateName;
      this.slices.upsert(stored);
      return Promise.resolve(structuredClone(stored));
    },
    update: (namespace, slice) => {
      this.writes.update++;
      const key = `${namespace}/${slice.metadata?.name ?? ''}`;
      const current = this.slices.get(key);
      if (!current) return Promise.reject(new KubeApiError(404, 'not found', { reason: 'NotFound' }));
      const rv = slice.metadata?.resourceVersion;
      if (rv !== undefined && rv !== current.metadata?.resourceVersion) {
        return Promise.reject(new KubeApiError(409, 'conflict', { reason: 'Conflict' }));
      }
      const stored: V1EndpointSlice = structuredClone({
        ...slice,
        metadata: {
          ...slice.metadata,
          uid: current.metadata?.uid,
          generation: (current.metadata?.generation ?? 0) + 1,
          resourceVersion: String(++this.rv),
        },
      });
      this.slices.upsert(stored);
      return Promise.resolve(structuredClone(stored));
    },
    delete: (namespace, name) => {
      this.writes.delete++;
      const removed = this.slices.delete(`${namespace}/${name}`);
      if (removed) this.tracker.handleDeletion(removed);
      return Promise.resolve();
    },
  };

  private newReconciler(maxEndpointsPerSlice: number): EndpointSliceReconciler {
    return new EndpointSliceReconciler({
      listers: { services: this.services, pods: this.pods, slices: this.slices, nodes: this.nodes },
      writer: this.writer,
      tracker: this.tracker,
      maxEndpointsPerSlice,
      cpuRatios: () => zoneCpuRatios(this.nodes.list()),
      log: nopLogger,
      clock: new FakeClock(),
      events: {
        event: (_ref, type, reason, message) => {
          this.events.push({ type, reason, message });
        },
      },
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Fixtures

export interface ServiceOptions {
  name?: string;
  uid?: string;
  families?: ('IPv4' | 'IPv6')[];
  clusterIP?: string;
  targetPort?: number | string;
  publishNotReadyAddresses?: boolean;
  trafficDistribution?: string;
  annotations?: Record<string, string>;
  labels?: Record<string, string>;
}

export function service(opts: ServiceOptions = {}): V1Service {
  const families = opts.families ?? ['IPv4'];
  return {
    metadata: {
      name: opts.name ?? 's',
      namespace: NS,
      uid: opts.uid ?? 'uid-s',
      creationTimestamp: new Date('2026-01-01T00:00:00Z'),
      labels: opts.labels ?? { tier: 'web' },
      ...(opts.annotations ? { annotations: opts.annotations } : {}),
    },
    spec: {
      type: 'ClusterIP',
      clusterIP: opts.clusterIP ?? (families[0] === 'IPv6' ? 'fd00::10' : '10.96.0.10'),
      ipFamilies: families,
      selector: { app: 'a' },
      ports: [{ name: 'http', port: 80, targetPort: opts.targetPort ?? 8080, protocol: 'TCP' }],
      ...(opts.publishNotReadyAddresses ? { publishNotReadyAddresses: true } : {}),
      ...(opts.trafficDistribution ? { trafficDistribution: opts.trafficDistribution } : {}),
    },
  };
}

export interface PodOptions {
  ips?: string[];
  ready?: boolean;
  node?: string;
  deleting?: boolean;
  containerPorts?: { name: string; containerPort: number }[];
}

/** Pod number `i`: IP 10.0.<i/250>.<i%250+1>, Ready, on node-<i%3> (zones a, b, c). */
export function pod(i: number, opts: PodOptions = {}): V1Pod {
  const name = `p${String(i).padStart(4, '0')}`;
  const ips = opts.ips ?? [`10.0.${Math.floor(i / 250)}.${(i % 250) + 1}`];
  return {
    metadata: {
      name,
      namespace: NS,
      uid: `uid-${name}`,
      labels: { app: 'a' },
      ...(opts.deleting ? { deletionTimestamp: new Date('2026-01-03T00:00:00Z') } : {}),
    },
    spec: {
      nodeName: opts.node ?? `node-${i % 3}`,
      containers: [{ name: 'main', ports: opts.containerPorts ?? [{ name: 'web', containerPort: 8080 }] }],
    },
    status: {
      phase: 'Running',
      podIP: ips[0],
      podIPs: ips.map((ip) => ({ ip })),
      conditions: [
        {
          type: 'Ready',
          status: opts.ready === false ? 'False' : 'True',
          lastTransitionTime: new Date('2026-01-02T00:00:00Z'),
        },
      ],
    },
  };
}

export function node(name: string, zone: string | undefined, cpu = '4'): V1Node {
  return {
    metadata: { name, labels: zone ? { 'topology.kubernetes.io/zone': zone } : {} },
    status: { allocatable: { cpu }, conditions: [{ type: 'Ready', status: 'True' }] },
  };
}

/** Three nodes node-0..2 in zones a, b, c. */
export function threeZones(): V1Node[] {
  return [node('node-0', 'a'), node('node-1', 'b'), node('node-2', 'c')];
}

export { keyOf };
