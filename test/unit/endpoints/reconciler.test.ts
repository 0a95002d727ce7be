import { expect } from 'chai';
import type {
  V1EndpointAddress,
  V1EndpointSubset,
  V1Endpoints,
  V1Pod,
  V1Service,
} from '@kubernetes/client-node';
import { EndpointsReconciler, type EndpointsWriter } from '../../../controllers/endpoints/reconciler.ts';
import {
  MANAGED_BY_LABEL,
  MANAGED_BY_VALUE,
  OVER_CAPACITY_ANNOTATION,
  TRIGGER_TIME_ANNOTATION,
} from '../../../controllers/endpoints/desired.ts';
import { Store } from '../../../shared/informer/store.ts';
import { StaleCacheError } from '../../../shared/endpoints/stalecache.ts';
import { KubeApiError } from '../../../shared/kube/errors.ts';
import { nopLogger } from '../../../shared/log.ts';
import { POD_LABEL_INDEX, podLabelIndex } from '../../../shared/endpoints/selection.ts';

// Fixtures: Service s in namespace n, selector app=a, port http 80 -> 8080/TCP.

const SERVICE_CREATED = new Date('2026-01-01T00:00:00Z');
const POD_READY_AT = new Date('2026-01-02T03:04:05.5Z');

function makeService(
  overrides: Partial<NonNullable<V1Service['spec']>> = {},
  withSelector = true,
): V1Service {
  return {
    metadata: {
      name: 's',
      namespace: 'n',
      uid: 'uid-s',
      creationTimestamp: SERVICE_CREATED,
      labels: { tier: 'web' },
    },
    spec: {
      type: 'ClusterIP',
      clusterIP: '10.96.0.10',
      ipFamilies: ['IPv4'],
      ...(withSelector ? { selector: { app: 'a' } } : {}),
      ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }],
      ...overrides,
    },
  };
}

function makePod(name: string, ip: string, readyAt: Date = POD_READY_AT): V1Pod {
  return {
    metadata: { name, namespace: 'n', uid: `uid-${name}`, labels: { app: 'a' } },
    spec: { nodeName: 'node-1', containers: [{ name: 'main' }] },
    status: {
      phase: 'Running',
      podIP: ip,
      podIPs: [{ ip }],
      conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: readyAt }],
    },
  };
}

function nthPod(i: number): V1Pod {
  return makePod(`p${i}`, `10.1.${(i >> 8) & 255}.${i & 255}`);
}

function addr(name: string, ip: string): V1EndpointAddress {
  return { ip, nodeName: 'node-1', targetRef: { kind: 'Pod', namespace: 'n', name, uid: `uid-${name}` } };
}

const LABELS = { tier: 'web', [MANAGED_BY_LABEL]: MANAGED_BY_VALUE };
const PORTS = [{ name: 'http', port: 8080, protocol: 'TCP' }];
const TWO_PODS_SUBSETS: V1EndpointSubset[] = [
  { addresses: [addr('p1', '10.0.0.1'), addr('p2', '10.0.0.2')], ports: PORTS },
];

function endpoints(
  resourceVersion: string,
  subsets: V1EndpointSubset[],
  annotations: Record<string, string> = {},
  labels: Record<string, string> = LABELS,
): V1Endpoints {
  return {
    apiVersion: 'v1',
    kind: 'Endpoints',
    metadata: { name: 's', namespace: 'n', resourceVersion, labels, annotations },
    subsets,
  };
}

type Write =
  | { verb: 'create' | 'update'; namespace: string; endpoints: V1Endpoints }
  | { verb: 'delete'; namespace: string; name: string };

/** Records every write; `fail` makes the next create/update throw it (the attempt is still recorded). */
class RecordingWriter implements EndpointsWriter {
  readonly writes: Write[] = [];
  fail: Error | undefined = undefined;

  create(namespace: string, endpoints: V1Endpoints): Promise<V1Endpoints> {
    this.writes.push({ verb: 'create', namespace, endpoints });
    return this.result(endpoints);
  }

  update(namespace: string, endpoints: V1Endpoints): Promise<V1Endpoints> {
    this.writes.push({ verb: 'update', namespace, endpoints });
    return this.result(endpoints);
  }

  delete(namespace: string, name: string): Promise<void> {
    this.writes.push({ verb: 'delete', namespace, name });
    return Promise.resolve();
  }

  private result(endpoints: V1Endpoints): Promise<V1Endpoints> {
    const err = this.fail;
    if (err !== undefined) {
      this.fail = undefined;
      return Promise.reject(err);
    }
    return Promise.resolve(endpoints);
  }
}

interface Harness {
  services: Store<V1Service>;
  pods: Store<V1Pod>;
  endpoints: Store<V1Endpoints>;
  writer: RecordingWriter;
  reconciler: EndpointsReconciler;
}

function harness(
  objects: { services?: V1Service[]; pods?: V1Pod[]; endpoints?: V1Endpoints[] } = {},
): Harness {
  const services = new Store<V1Service>();
  const pods = new Store<V1Pod>({ [POD_LABEL_INDEX]: podLabelIndex });
  const eps = new Store<V1Endpoints>();
  for (const s of objects.services ?? []) services.upsert(s);
  for (const p of objects.pods ?? []) pods.upsert(p);
  for (const e of objects.endpoints ?? []) eps.upsert(e);
  const writer = new RecordingWriter();
  const reconciler = new EndpointsReconciler({
    listers: { services, pods, endpoints: eps },
    writer,
    log: nopLogger,
  });
  return { services, pods, endpoints: eps, writer, reconciler };
}

const REQUEST = { namespace: 'n', name: 's' };
/** Never aborted: these tests do not stop the work they start. */
const SIGNAL = new AbortController().signal;

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected the promise to reject');
}

function written(w: Write): V1Endpoints {
  if (w.verb === 'delete') throw new Error('expected a create or update, got a delete');
  return w.endpoints;
}

function addressCount(e: V1Endpoints): number {
  return (e.subsets ?? []).reduce(
    (n, s) => n + (s.addresses?.length ?? 0) + (s.notReadyAddresses?.length ?? 0),
    0,
  );
}

describe('EndpointsReconciler', () => {
  it('creates the Endpoints of a new Service with labels, subsets and the trigger-time annotation', async () => {
    const h = harness({
      services: [makeService()],
      pods: [makePod('p2', '10.0.0.2'), makePod('p1', '10.0.0.1')],
    });

    await h.reconciler.reconcile(REQUEST, SIGNAL);

    // First sight of the Service: its creation is the earliest change.
    expect(h.writer.writes).to.deep.equal([
      {
        verb: 'create',
        namespace: 'n',
        endpoints: {
          apiVersion: 'v1',
          kind: 'Endpoints',
          metadata: {
            name: 's',
            namespace: 'n',
            labels: LABELS,
            annotations: { [TRIGGER_TIME_ANNOTATION]: '2026-01-01T00:00:00Z' },
          },
          subsets: TWO_PODS_SUBSETS,
        },
      },
    ]);
  });

  it('writes nothing when the cached Endpoints already match', async () => {
    const h = harness({
      services: [makeService()],
      pods: [makePod('p1', '10.0.0.1'), makePod('p2', '10.0.0.2')],
      endpoints: [endpoints('3', TWO_PODS_SUBSETS, { [TRIGGER_TIME_ANNOTATION]: '2025-12-31T00:00:00Z' })],
    });

    await h.reconciler.reconcile(REQUEST, SIGNAL);

    expect(h.writer.writes).to.have.length(0);
  });

  it('updates with the cached resourceVersion and keeps existing annotations', async () => {
    const h = harness({
      services: [makeService()],
      pods: [makePod('p1', '10.0.0.1'), makePod('p2', '10.0.0.2')],
      endpoints: [
        endpoints('7', [{ addresses: [addr('p1', '10.0.0.1')], ports: PORTS }], { owner: 'team-a' }),
      ],
    });

    await h.reconciler.reconcile(REQUEST, SIGNAL);

    expect(h.writer.writes).to.deep.equal([
      {
        verb: 'update',
        namespace: 'n',
        endpoints: {
          apiVersion: 'v1',
          kind: 'Endpoints',
          metadata: {
            name: 's',
            namespace: 'n',
            labels: LABELS,
            annotations: { owner: 'team-a', [TRIGGER_TIME_ANNOTATION]: '2026-01-01T00:00:00Z' },
            resourceVersion: '7',
          },
          subsets: TWO_PODS_SUBSETS,
        },
      },
    ]);
  });

  it('sets the over-capacity annotation above 1000 addresses and removes it below', async () => {
    const pods = Array.from({ length: 1001 }, (_, i) => nthPod(i));
    const h = harness({ services: [makeService()], pods });

    await h.reconciler.reconcile(REQUEST, SIGNAL);

    expect(h.writer.writes).to.have.length(1);
    const created = written(h.writer.writes[0]);
    expect(h.writer.writes[0].verb).to.equal('create');
    expect(created.metadata?.annotations?.[OVER_CAPACITY_ANNOTATION]).to.equal('truncated');
    expect(addressCount(created)).to.equal(1000);

    // The API server stores it; two pods go away.
    h.endpoints.upsert({ ...created, metadata: { ...created.metadata, resourceVersion: '1' } });
    h.pods.delete('n/p0');
    h.pods.delete('n/p1');

    await h.reconciler.reconcile(REQUEST, SIGNAL);

    expect(h.writer.writes).to.have.length(2);
    const updated = written(h.writer.writes[1]);
    expect(h.writer.writes[1].verb).to.equal('update');
    expect(updated.metadata?.resourceVersion).to.equal('1');
    expect(updated.metadata?.annotations).to.deep.equal({
      [TRIGGER_TIME_ANNOTATION]: '2026-01-01T00:00:00Z',
    });
    expect(addressCount(updated)).to.equal(999);
  });

  it('deletes the Endpoints when the Service is gone, and writes nothing when none is cached', async () => {
    const cached = harness({ endpoints: [endpoints('4', TWO_PODS_SUBSETS)] });
    await cached.reconciler.reconcile(REQUEST, SIGNAL);
    expect(cached.writer.writes).to.deep.equal([{ verb: 'delete', namespace: 'n', name: 's' }]);

    const empty = harness();
    await empty.reconciler.reconcile(REQUEST, SIGNAL);
    expect(empty.writer.writes).to.have.length(0);
  });

  it('leaves selector-less and ExternalName Services alone', async () => {
    const userEndpoints = endpoints('2', [{ addresses: [{ ip: '192.0.2.1' }], ports: PORTS }], {}, {});
    const selectorless = harness({
      services: [makeService({}, false)],
      pods: [makePod('p1', '10.0.0.1')],
      endpoints: [userEndpoints],
    });
    await selectorless.reconciler.reconcile(REQUEST, SIGNAL);
    expect(selectorless.writer.writes).to.have.length(0);

    const externalName = harness({
      services: [makeService({ type: 'ExternalName', externalName: 'example.com' })],
      pods: [makePod('p1', '10.0.0.1')],
    });
    await externalName.reconciler.reconcile(REQUEST, SIGNAL);
    expect(externalName.writer.writes).to.have.length(0);
  });

  it('a cache still holding the version we replaced throws StaleCacheError instead of writing', async () => {
    const h = harness({
      services: [makeService()],
      pods: [makePod('p1', '10.0.0.1'), makePod('p2', '10.0.0.2')],
      endpoints: [endpoints('7', [{ addresses: [addr('p1', '10.0.0.1')], ports: PORTS }])],
    });
    await h.reconciler.reconcile(REQUEST, SIGNAL);
    expect(h.writer.writes).to.have.length(1);

    // A pod change arrives before the informer has seen our update: the cache still shows rv 7.
    h.pods.upsert(makePod('p3', '10.0.0.3'));
    const err = await rejection(h.reconciler.reconcile(REQUEST, SIGNAL));

    expect(err).to.be.instanceOf(StaleCacheError);
    expect(h.writer.writes).to.have.length(1);

    // Once the cache shows our write, syncing resumes.
    const mine = written(h.writer.writes[0]);
    h.endpoints.upsert({ ...mine, metadata: { ...mine.metadata, resourceVersion: '8' } });
    await h.reconciler.reconcile(REQUEST, SIGNAL);
    expect(h.writer.writes).to.have.length(2);
    expect(written(h.writer.writes[1]).metadata?.resourceVersion).to.equal('8');
  });

  it('a create refused because the namespace is terminating is dropped quietly', async () => {
    const h = harness({ services: [makeService()], pods: [makePod('p1', '10.0.0.1')] });
    h.writer.fail = new KubeApiError(403, 'forbidden', {
      reason: 'Forbidden',
      details: { causes: [{ type: 'NamespaceTerminating' }] },
    });

    await h.reconciler.reconcile(REQUEST, SIGNAL);

    expect(h.writer.writes.map((w) => w.verb)).to.deep.equal(['create']);
  });

  it('other API errors are thrown for retry', async () => {
    const h = harness({ services: [makeService()], pods: [makePod('p1', '10.0.0.1')] });
    const internal = new KubeApiError(500, 'internal error', { reason: 'InternalError' });
    h.writer.fail = internal;

    expect(await rejection(h.reconciler.reconcile(REQUEST, SIGNAL))).to.equal(internal);

    // An update refused with a NamespaceTerminating cause is not a create: it is thrown too.
    const u = harness({
      services: [makeService()],
      pods: [makePod('p1', '10.0.0.1')],
      endpoints: [endpoints('7', [])],
    });
    const terminating = new KubeApiError(403, 'forbidden', {
      reason: 'Forbidden',
      details: { causes: [{ type: 'NamespaceTerminating' }] },
    });
    u.writer.fail = terminating;

    expect(await rejection(u.reconciler.reconcile(REQUEST, SIGNAL))).to.equal(terminating);
    expect(u.writer.writes.map((w) => w.verb)).to.deep.equal(['update']);
  });

  it('an Endpoints deleted by hand is created again with the same subsets', async () => {
    const h = harness({ services: [makeService()], pods: [makePod('p1', '10.0.0.1')] });
    await h.reconciler.reconcile(REQUEST, SIGNAL);
    // The API server stores our create; a second pod then brings an update, stored too.
    const created = written(h.writer.writes[0]);
    h.endpoints.upsert({ ...created, metadata: { ...created.metadata, resourceVersion: '1' } });
    h.pods.upsert(makePod('p2', '10.0.0.2'));
    await h.reconciler.reconcile(REQUEST, SIGNAL);
    const updated = written(h.writer.writes[1]);
    h.endpoints.upsert({ ...updated, metadata: { ...updated.metadata, resourceVersion: '2' } });
    expect(h.writer.writes.map((w) => w.verb)).to.deep.equal(['create', 'update']);

    // Someone deletes it; the informer drops it from the cache and the delete event enqueues it.
    h.endpoints.delete('n/s');
    await h.reconciler.reconcile(REQUEST, SIGNAL);

    // Created again: same labels and subsets, no resourceVersion, no trigger time (nothing changed
    // since our last write, so there is none to report, as upstream).
    expect(h.writer.writes.slice(2)).to.deep.equal([
      {
        verb: 'create',
        namespace: 'n',
        endpoints: {
          apiVersion: 'v1',
          kind: 'Endpoints',
          metadata: { name: 's', namespace: 'n', labels: LABELS, annotations: {} },
          subsets: TWO_PODS_SUBSETS,
        },
      },
    ]);
  });

  it('an orphan Endpoints whose Service is gone is deleted', async () => {
    // Found at start (the initial list enqueues every Endpoints): no Service s, only another one.
    const other = makeService();
    other.metadata = { ...other.metadata, name: 'other', uid: 'uid-other' };
    const h = harness({ services: [other], endpoints: [endpoints('4', TWO_PODS_SUBSETS)] });

    await h.reconciler.reconcile(REQUEST, SIGNAL);

    expect(h.writer.writes).to.deep.equal([{ verb: 'delete', namespace: 'n', name: 's' }]);
  });
});
