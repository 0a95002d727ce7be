import { expect } from 'chai';
import type {
  CoreV1Event,
  DiscoveryV1EndpointPort,
  V1Endpoint,
  V1EndpointAddress,
  V1EndpointSlice,
  V1EndpointSubset,
  V1Endpoints,
  V1Service,
} from '@kubernetes/client-node';
import {
  clusterIPIndex,
  CLUSTER_IP_INDEX,
  endpointsAddressIndex,
  planMirroring,
  shouldMirror,
  type MirrorEvent,
  type MirrorOptions,
} from '../../../controllers/endpointslicemirroring/desired.ts';
import { EndpointSliceMirroringReconciler } from '../../../controllers/endpointslicemirroring/reconciler.ts';
import {
  SERVICE_NAME_INDEX,
  serviceNameIndex,
  type EndpointSliceWriter,
  type SlicePlan,
} from '../../../shared/endpoints/slices.ts';
import { StaleCacheError } from '../../../shared/endpoints/stalecache.ts';
import { repackSubsets } from '../../../shared/endpoints/subsets.ts';
import { Store } from '../../../shared/informer/store.ts';
import { EventRecorder } from '../../../shared/kube/events.ts';
import { nopLogger } from '../../../shared/log.ts';

// Fixtures: Endpoints s (uid-s) in namespace n of a selector-less Service s.

const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';
const MANAGED_BY_LABEL = 'endpointslice.kubernetes.io/managed-by';
const MIRRORING = 'endpointslicemirroring-controller.k8s.io';
const LABELS = { [SERVICE_NAME_LABEL]: 's', [MANAGED_BY_LABEL]: MIRRORING };
const OWNER = {
  apiVersion: 'v1',
  kind: 'Endpoints',
  name: 's',
  uid: 'uid-s',
  controller: true,
  blockOwnerDeletion: true,
};
const HTTP = [{ name: 'http', port: 80, protocol: 'TCP' }];
const OPTS: MirrorOptions = { maxEndpointsPerSubset: 1000 };

function makeEndpoints(
  subsets: V1EndpointSubset[],
  meta: {
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    deletionTimestamp?: Date;
  } = {},
): V1Endpoints {
  return {
    apiVersion: 'v1',
    kind: 'Endpoints',
    metadata: { name: 's', namespace: 'n', uid: 'uid-s', resourceVersion: '10', ...meta },
    subsets,
  };
}

function makeService(selector?: Record<string, string>, clusterIP = '10.96.0.10', name = 's'): V1Service {
  return {
    metadata: { name, namespace: 'n', uid: `uid-svc-${name}` },
    spec: { clusterIP, clusterIPs: [clusterIP], ports: [{ port: 80 }], ...(selector ? { selector } : {}) },
  };
}

const ips = (...list: string[]): V1EndpointAddress[] => list.map((ip) => ({ ip }));

function ep(ip: string, ready = true): V1Endpoint {
  return { addresses: [ip], conditions: { ready } };
}

/** The slice the controller writes: generateName when `name` is undefined. */
function mirrored(
  name: string | undefined,
  addressType: 'IPv4' | 'IPv6',
  endpoints: V1Endpoint[],
  ports: DiscoveryV1EndpointPort[] = HTTP,
  extra: {
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    resourceVersion?: string;
  } = {},
): V1EndpointSlice {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      ...(name === undefined
        ? { generateName: 's-' }
        : { name, ...(extra.resourceVersion ? { resourceVersion: extra.resourceVersion } : {}) }),
      namespace: 'n',
      labels: { ...(extra.labels ?? {}), ...LABELS },
      annotations: extra.annotations ?? {},
      ownerReferences: [OWNER],
    },
    addressType,
    endpoints,
    ports,
  };
}

/** A slice as the API server returns it (name, uid, generation). */
function stored(slice: V1EndpointSlice, name: string, generation = 1): V1EndpointSlice {
  const copy = structuredClone(slice);
  delete copy.metadata!.generateName;
  copy.metadata = { ...copy.metadata, name, uid: `uid-${name}`, resourceVersion: `rv-${name}`, generation };
  return copy;
}

const empty = (): SlicePlan => ({ creates: [], updates: [], deletes: [] });

interface Case {
  name: string;
  endpoints: V1Endpoints;
  existing?: V1EndpointSlice[];
  opts?: MirrorOptions;
  plan: SlicePlan;
  events?: MirrorEvent[];
}

const TWO_IPS = makeEndpoints([{ addresses: ips('10.0.0.1', '10.0.0.2'), ports: HTTP }]);
const TWO_IPS_SLICE = mirrored(undefined, 'IPv4', [ep('10.0.0.1'), ep('10.0.0.2')]);
const many = (n: number): string[] => Array.from({ length: n }, (_, i) => `10.1.${i >> 8}.${i & 255}`);

const CASES: Case[] = [
  {
    name: 'two IPs on port 80 -> one create with exactly the expected slice',
    endpoints: TWO_IPS,
    plan: { ...empty(), creates: [TWO_IPS_SLICE] },
  },
  {
    name: 'the state already mirrored -> an empty plan',
    endpoints: TWO_IPS,
    // Endpoints listed in another order, as another writer might have: still equal.
    existing: [stored(mirrored(undefined, 'IPv4', [ep('10.0.0.2'), ep('10.0.0.1')]), 's-abcde')],
    plan: empty(),
  },
  {
    name: 'a subset holding IPv4 and IPv6 addresses -> two slices',
    endpoints: makeEndpoints([{ addresses: ips('10.0.0.1', '2001:db8::1'), ports: HTTP }]),
    plan: {
      ...empty(),
      creates: [
        mirrored(undefined, 'IPv4', [ep('10.0.0.1')]),
        mirrored(undefined, 'IPv6', [ep('2001:db8::1')]),
      ],
    },
  },
  {
    name: 'two subsets with different ports -> two slices',
    endpoints: makeEndpoints([
      { addresses: ips('10.0.0.1'), ports: HTTP },
      { addresses: ips('10.0.0.2'), ports: [{ name: 'https', port: 443, protocol: 'TCP' }] },
    ]),
    plan: {
      ...empty(),
      creates: [
        mirrored(undefined, 'IPv4', [ep('10.0.0.1')]),
        mirrored(undefined, 'IPv4', [ep('10.0.0.2')], [{ name: 'https', port: 443, protocol: 'TCP' }]),
      ],
    },
  },
  {
    name: '1001 addresses -> 1000 endpoints and TooManyAddressesToMirror',
    endpoints: makeEndpoints([{ addresses: ips(...many(1001)), ports: HTTP }]),
    plan: {
      ...empty(),
      // Addresses are canonically ordered by IP text; the cap keeps the first 1000 of that order.
      creates: [
        mirrored(
          undefined,
          'IPv4',
          [...many(1001)]
            .sort()
            .slice(0, 1000)
            .map((ip) => ep(ip)),
        ),
      ],
    },
    events: [
      {
        reason: 'TooManyAddressesToMirror',
        message:
          'A max of 1000 addresses can be mirrored to EndpointSlices per Endpoints subset. 1 addresses were skipped',
      },
    ],
  },
  {
    name: 'an address that is not an IP is skipped with InvalidIPAddress',
    endpoints: makeEndpoints([{ addresses: ips('foo', '10.0.0.1'), ports: HTTP }]),
    plan: { ...empty(), creates: [mirrored(undefined, 'IPv4', [ep('10.0.0.1')])] },
    events: [
      {
        reason: 'InvalidIPAddress',
        message: 'Skipped 1 invalid IP addresses when mirroring to EndpointSlices',
      },
    ],
  },
  {
    name: "loopback, link-local and another Service's ClusterIP are skipped with ForbiddenIPAddress",
    endpoints: makeEndpoints([
      {
        addresses: ips('127.0.0.1', '169.254.1.1', '10.0.0.1', '10.96.0.20', '10.96.0.10'),
        notReadyAddresses: ips('::1', 'fe80::1'),
        ports: HTTP,
      },
    ]),
    opts: {
      // 10.96.0.10 is the Service's own ClusterIP (allowed); 10.96.0.20 belongs to other/db.
      maxEndpointsPerSubset: 3,
      clusterIPOwners: (ip) => (ip === '10.96.0.10' ? ['n/s'] : ip === '10.96.0.20' ? ['other/db'] : []),
    },
    plan: { ...empty(), creates: [mirrored(undefined, 'IPv4', [ep('10.0.0.1'), ep('10.96.0.10')])] },
    events: [
      {
        reason: 'ForbiddenIPAddress',
        message:
          'Skipped 5 IP addresses that may not be mirrored to EndpointSlices: 10.96.0.20 (ClusterIP of Service other/db), ' +
          '127.0.0.1 (loopback), 169.254.1.1 (link-local), ::1 (loopback), fe80::1 (link-local)',
      },
    ],
  },
  {
    name: 'labels and annotations are copied, except the trigger time and last-applied annotations',
    endpoints: makeEndpoints([{ addresses: ips('10.0.0.1'), ports: HTTP }], {
      labels: { app: 'db', [SERVICE_NAME_LABEL]: 'wrong' },
      annotations: {
        note: 'kept',
        'endpoints.kubernetes.io/last-change-trigger-time': '2026-01-01T00:00:00Z',
        'kubectl.kubernetes.io/last-applied-configuration': '{}',
      },
    }),
    plan: {
      ...empty(),
      creates: [
        mirrored(undefined, 'IPv4', [ep('10.0.0.1')], HTTP, {
          labels: { app: 'db' },
          annotations: { note: 'kept' },
        }),
      ],
    },
  },
  {
    name: 'a port change updates the slice in place (recycled), no create + delete',
    endpoints: makeEndpoints([
      { addresses: ips('10.0.0.1', '10.0.0.2'), ports: [{ port: 8080, protocol: 'TCP' }] },
    ]),
    existing: [stored(TWO_IPS_SLICE, 's-abcde')],
    plan: {
      ...empty(),
      updates: [
        mirrored('s-abcde', 'IPv4', [ep('10.0.0.1'), ep('10.0.0.2')], [{ port: 8080, protocol: 'TCP' }], {
          resourceVersion: 'rv-s-abcde',
        }),
      ],
    },
  },
  {
    name: 'ready addresses first, then not-ready ones, up to the cap',
    endpoints: makeEndpoints([
      { addresses: ips('10.0.0.9', '10.0.0.8'), notReadyAddresses: ips('10.0.0.1', '10.0.0.2'), ports: HTTP },
    ]),
    opts: { maxEndpointsPerSubset: 3 },
    plan: {
      ...empty(),
      creates: [mirrored(undefined, 'IPv4', [ep('10.0.0.8'), ep('10.0.0.9'), ep('10.0.0.1', false)])],
    },
    events: [
      {
        reason: 'TooManyAddressesToMirror',
        message:
          'A max of 3 addresses can be mirrored to EndpointSlices per Endpoints subset. 1 addresses were skipped',
      },
    ],
  },
  {
    name: 'an upper-case IPv6 address is canonicalised (and equals its lower-case twin)',
    endpoints: makeEndpoints([{ addresses: ips('2001:DB8:0:0::1', '2001:db8::1'), ports: HTTP }]),
    plan: { ...empty(), creates: [mirrored(undefined, 'IPv6', [ep('2001:db8::1')])] },
  },
  {
    name: 'duplicate slices for one group -> the first by name is kept, the others deleted',
    endpoints: TWO_IPS,
    existing: [
      stored(mirrored(undefined, 'IPv4', [ep('10.0.0.2')]), 's-zzzzz'),
      stored(TWO_IPS_SLICE, 's-aaaaa'),
    ],
    plan: { ...empty(), deletes: [stored(mirrored(undefined, 'IPv4', [ep('10.0.0.2')]), 's-zzzzz')] },
  },
  {
    name: 'the first slice of a group out of date and a duplicate -> update the first, delete the other',
    endpoints: TWO_IPS,
    existing: [
      stored(mirrored(undefined, 'IPv4', [ep('10.0.0.2')]), 's-aaaaa'),
      stored(mirrored(undefined, 'IPv4', [ep('10.0.0.1')]), 's-bbbbb'),
    ],
    plan: {
      ...empty(),
      updates: [
        mirrored('s-aaaaa', 'IPv4', [ep('10.0.0.1'), ep('10.0.0.2')], HTTP, {
          resourceVersion: 'rv-s-aaaaa',
        }),
      ],
      deletes: [stored(mirrored(undefined, 'IPv4', [ep('10.0.0.1')]), 's-bbbbb')],
    },
  },
  {
    name: 'an endpoint whose readiness changed -> update',
    endpoints: makeEndpoints([
      { addresses: ips('10.0.0.1'), notReadyAddresses: ips('10.0.0.2'), ports: HTTP },
    ]),
    existing: [stored(TWO_IPS_SLICE, 's-abcde')],
    plan: {
      ...empty(),
      updates: [
        mirrored('s-abcde', 'IPv4', [ep('10.0.0.1'), ep('10.0.0.2', false)], HTTP, {
          resourceVersion: 'rv-s-abcde',
        }),
      ],
    },
  },
  {
    name: 'a label change on the Endpoints -> update',
    endpoints: makeEndpoints([{ addresses: ips('10.0.0.1', '10.0.0.2'), ports: HTTP }], {
      labels: { a: 'b' },
    }),
    existing: [stored(TWO_IPS_SLICE, 's-abcde')],
    plan: {
      ...empty(),
      updates: [
        mirrored('s-abcde', 'IPv4', [ep('10.0.0.1'), ep('10.0.0.2')], HTTP, {
          labels: { a: 'b' },
          resourceVersion: 'rv-s-abcde',
        }),
      ],
    },
  },
  {
    name: 'no addresses left -> every mirrored slice deleted',
    endpoints: makeEndpoints([]),
    existing: [stored(TWO_IPS_SLICE, 's-abcde')],
    plan: { ...empty(), deletes: [stored(TWO_IPS_SLICE, 's-abcde')] },
  },
  {
    name: 'a slice owned by another Endpoints (old UID) is not recycled',
    endpoints: makeEndpoints([
      { addresses: ips('10.0.0.1', '10.0.0.2'), ports: [{ port: 8080, protocol: 'TCP' }] },
    ]),
    existing: [
      (() => {
        const s = stored(TWO_IPS_SLICE, 's-abcde');
        s.metadata!.ownerReferences = [{ ...OWNER, uid: 'uid-old' }];
        return s;
      })(),
    ],
    plan: {
      creates: [
        mirrored(undefined, 'IPv4', [ep('10.0.0.1'), ep('10.0.0.2')], [{ port: 8080, protocol: 'TCP' }]),
      ],
      updates: [],
      deletes: [
        (() => {
          const s = stored(TWO_IPS_SLICE, 's-abcde');
          s.metadata!.ownerReferences = [{ ...OWNER, uid: 'uid-old' }];
          return s;
        })(),
      ],
    },
  },
  {
    name: 'an Endpoints being deleted gets no creates, only updates and deletes',
    endpoints: makeEndpoints([{ addresses: ips('10.0.0.1', '2001:db8::1'), ports: HTTP }], {
      deletionTimestamp: new Date('2026-01-01T00:00:00Z'),
    }),
    existing: [stored(TWO_IPS_SLICE, 's-abcde')],
    plan: {
      ...empty(),
      updates: [mirrored('s-abcde', 'IPv4', [ep('10.0.0.1')], HTTP, { resourceVersion: 'rv-s-abcde' })],
    },
  },
  {
    name: 'duplicate addresses across subsets are merged, not-ready wins (repack)',
    endpoints: makeEndpoints([
      { addresses: ips('10.0.0.1', '10.0.0.2'), ports: HTTP },
      { addresses: ips('10.0.0.2'), notReadyAddresses: ips('10.0.0.1'), ports: HTTP },
    ]),
    plan: { ...empty(), creates: [mirrored(undefined, 'IPv4', [ep('10.0.0.2'), ep('10.0.0.1', false)])] },
  },
  {
    name: 'target, node name and hostname are copied',
    endpoints: makeEndpoints([
      {
        addresses: [
          {
            ip: '10.0.0.1',
            hostname: 'h1',
            nodeName: 'node-1',
            targetRef: { kind: 'Pod', namespace: 'n', name: 'p1', uid: 'uid-p1' },
          },
        ],
        ports: [{ name: 'dns', port: 53, protocol: 'UDP', appProtocol: 'dns' }],
      },
    ]),
    plan: {
      ...empty(),
      creates: [
        mirrored(
          undefined,
          'IPv4',
          [
            {
              addresses: ['10.0.0.1'],
              conditions: { ready: true },
              hostname: 'h1',
              nodeName: 'node-1',
              targetRef: { kind: 'Pod', namespace: 'n', name: 'p1', uid: 'uid-p1' },
            },
          ],
          [{ name: 'dns', port: 53, protocol: 'UDP', appProtocol: 'dns' }],
        ),
      ],
    },
  },
];

describe('planMirroring', () => {
  for (const c of CASES) {
    it(c.name, () => {
      const existing = structuredClone(c.existing ?? []);
      const result = planMirroring(c.endpoints, existing, c.opts ?? OPTS);
      expect(result.plan).to.deep.equal(c.plan);
      expect(result.events).to.deep.equal(c.events ?? []);
      expect(existing, 'the existing slices are not modified').to.deep.equal(c.existing ?? []);
    });
  }

  it('an upper-case IPv6 address already mirrored in canonical form writes nothing', () => {
    const endpoints = makeEndpoints([{ addresses: ips('2001:DB8::1'), ports: HTTP }]);
    const existing = [stored(mirrored(undefined, 'IPv6', [ep('2001:db8::1')]), 's-abcde')];
    expect(planMirroring(endpoints, existing, OPTS).plan).to.deep.equal(empty());
  });

  it('invalid, forbidden and over-cap addresses are counted apart', () => {
    // Ready addresses are considered first: the invalid and forbidden ones use up no room, so the
    // cap of 2 cuts the third not-ready address only. (Past the cap, nothing is examined.)
    const endpoints = makeEndpoints([
      {
        addresses: ips('foo', 'bar', '127.0.0.1'),
        notReadyAddresses: ips('10.0.0.1', '10.0.0.2', '10.0.0.3'),
        ports: HTTP,
      },
    ]);
    const result = planMirroring(endpoints, [], { maxEndpointsPerSubset: 2 });
    expect(result.skipped).to.deep.equal({ invalid: 2, forbidden: 1, overCap: 1 });
    expect(result.events.map((e) => e.reason)).to.deep.equal([
      'InvalidIPAddress',
      'ForbiddenIPAddress',
      'TooManyAddressesToMirror',
    ]);
    expect(result.events[2].message).to.equal(
      'A max of 2 addresses can be mirrored to EndpointSlices per Endpoints subset. 4 addresses were skipped',
    );
  });

  it('names at most 10 forbidden addresses in the event', () => {
    const loopbacks = Array.from({ length: 12 }, (_, i) => `127.0.0.${i + 1}`);
    const result = planMirroring(makeEndpoints([{ addresses: ips(...loopbacks), ports: HTTP }]), [], OPTS);
    expect(result.events).to.have.length(1);
    expect(result.events[0].message).to.match(
      /^Skipped 12 IP addresses .*127\.0\.0\.7 \(loopback\), and 2 more$/,
    );
  });

  it('a subset without ports is mirrored to a port-less slice', () => {
    const result = planMirroring(makeEndpoints([{ addresses: ips('10.0.0.1') }]), [], OPTS);
    expect(result.plan.creates).to.deep.equal([mirrored(undefined, 'IPv4', [ep('10.0.0.1')], [])]);
  });
});

describe('planMirroring: address text, as kube-controller-manager mirrors it', () => {
  // Upstream parses each Endpoints address (ParseIPSloppy) and mirrors it back with String(), in
  // the slice of its family.
  const cases: { name: string; address: string; type: 'IPv4' | 'IPv6'; want: string }[] = [
    {
      name: 'an upper-case IPv6 address is mirrored in lower case',
      address: 'FD00:1::1',
      type: 'IPv6',
      want: 'fd00:1::1',
    },
    {
      name: 'an IPv6 address with leading zeros in its groups is mirrored without them',
      address: 'fd00:0001::0001',
      type: 'IPv6',
      want: 'fd00:1::1',
    },
    {
      name: 'an IPv4-mapped IPv6 address is mirrored as the IPv4 address it maps, in an IPv4 slice',
      address: '::ffff:10.0.0.1',
      type: 'IPv4',
      want: '10.0.0.1',
    },
    {
      name: 'a plain IPv4 address is mirrored as it is',
      address: '10.0.0.1',
      type: 'IPv4',
      want: '10.0.0.1',
    },
    {
      name: 'an IPv4 address with leading zeros is read as decimal and mirrored without them',
      address: '010.000.000.001',
      type: 'IPv4',
      want: '10.0.0.1',
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const result = planMirroring(makeEndpoints([{ addresses: ips(c.address), ports: HTTP }]), [], OPTS);
      expect(result.plan).to.deep.equal({ ...empty(), creates: [mirrored(undefined, c.type, [ep(c.want)])] });
      expect(result.events).to.deep.equal([]);
    });
  }
});

describe('repackSubsets', () => {
  it('merges subsets with the same ports and splits ports with different address sets', () => {
    expect(
      repackSubsets([
        { addresses: ips('10.0.0.2'), ports: [{ port: 80, protocol: 'TCP' }] },
        {
          addresses: ips('10.0.0.1'),
          ports: [
            { port: 80, protocol: 'TCP' },
            { port: 81, protocol: 'TCP' },
          ],
        },
      ]),
    ).to.deep.equal([
      { addresses: ips('10.0.0.1', '10.0.0.2'), ports: [{ port: 80, protocol: 'TCP' }] },
      { addresses: ips('10.0.0.1'), ports: [{ port: 81, protocol: 'TCP' }] },
    ]);
  });

  it('keeps two addresses with one IP but different targets', () => {
    const a = { ip: '10.0.0.1', targetRef: { kind: 'Pod', name: 'a', uid: 'u1' } };
    const b = { ip: '10.0.0.1', targetRef: { kind: 'Pod', name: 'b', uid: 'u2' } };
    expect(repackSubsets([{ addresses: [b, a], ports: HTTP }])).to.deep.equal([
      { addresses: [a, b], ports: HTTP },
    ]);
  });
});

describe('mirroring predicates and indexes', () => {
  const endpoints = makeEndpoints([{ addresses: ips('10.0.0.1'), ports: HTTP }]);

  it('mirrors only Endpoints of existing selector-less Services, without skip-mirror or leader record', () => {
    expect(shouldMirror(endpoints, makeService())).to.equal(true);
    expect(shouldMirror(endpoints, makeService({}))).to.equal(true, 'an empty selector is no selector');
    expect(shouldMirror(endpoints, makeService({ app: 'a' }))).to.equal(false);
    expect(shouldMirror(endpoints, undefined)).to.equal(false);
    expect(shouldMirror(undefined, makeService())).to.equal(false);
    const skip = makeEndpoints([], { labels: { 'endpointslice.kubernetes.io/skip-mirror': 'true' } });
    expect(shouldMirror(skip, makeService())).to.equal(false);
    const notSkip = makeEndpoints([], { labels: { 'endpointslice.kubernetes.io/skip-mirror': 'false' } });
    expect(shouldMirror(notSkip, makeService())).to.equal(true);
    const leader = makeEndpoints([], { annotations: { 'control-plane.alpha.kubernetes.io/leader': '{}' } });
    expect(shouldMirror(leader, makeService())).to.equal(false);
  });

  it('indexes Services by canonical ClusterIPs, ignoring None', () => {
    const dual = makeService(undefined, '10.96.0.10');
    dual.spec!.clusterIPs = ['10.96.0.10', '2001:DB8::A'];
    expect(clusterIPIndex(dual)).to.deep.equal(['10.96.0.10', '2001:db8::a']);
    expect(clusterIPIndex(makeService(undefined, 'None'))).to.deep.equal([]);
  });

  it('indexes hand-written Endpoints by address, not those of the endpoints controller', () => {
    expect(
      endpointsAddressIndex(
        makeEndpoints([{ addresses: ips('10.0.0.1'), notReadyAddresses: ips('2001:DB8::1') }]),
      ),
    ).to.deep.equal(['10.0.0.1', '2001:db8::1']);
    const managed = makeEndpoints([{ addresses: ips('10.0.0.1') }], {
      labels: { 'endpoints.kubernetes.io/managed-by': 'endpoint-controller' },
    });
    expect(endpointsAddressIndex(managed)).to.deep.equal([]);
  });
});

// ---------------------------------------------------------------------------------------------
// Reconciler: plans from the caches, executes, records events, guards against a stale cache.

type Write =
  { verb: 'create' | 'update'; slice: V1EndpointSlice } | { verb: 'delete'; namespace: string; name: string };

class RecordingWriter implements EndpointSliceWriter {
  readonly writes: Write[] = [];
  private seq = 0;

  create(_namespace: string, slice: V1EndpointSlice): Promise<V1EndpointSlice> {
    this.writes.push({ verb: 'create', slice });
    const name = `${slice.metadata?.generateName ?? ''}gen${++this.seq}`;
    return Promise.resolve(stored(slice, name));
  }

  update(_namespace: string, slice: V1EndpointSlice): Promise<V1EndpointSlice> {
    this.writes.push({ verb: 'update', slice });
    return Promise.resolve(stored(slice, slice.metadata?.name ?? '', 2));
  }

  delete(namespace: string, name: string): Promise<void> {
    this.writes.push({ verb: 'delete', namespace, name });
    return Promise.resolve();
  }
}

function harness(objects: { endpoints?: V1Endpoints[]; services?: V1Service[]; slices?: V1EndpointSlice[] }) {
  const endpoints = new Store<V1Endpoints>();
  const services = new Store<V1Service>({ [CLUSTER_IP_INDEX]: clusterIPIndex });
  const slices = new Store<V1EndpointSlice>({ [SERVICE_NAME_INDEX]: serviceNameIndex });
  for (const e of objects.endpoints ?? []) endpoints.upsert(e);
  for (const s of objects.services ?? []) services.upsert(s);
  for (const s of objects.slices ?? []) slices.upsert(s);
  const writer = new RecordingWriter();
  const recorded: CoreV1Event[] = [];
  const events = new EventRecorder({
    component: 'test',
    sink: {
      create: (_ns, e) => {
        recorded.push(e);
        return Promise.resolve(e);
      },
      update: (_ns, e) => Promise.resolve(e),
    },
  });
  const reconciler = new EndpointSliceMirroringReconciler({
    listers: { endpoints, services, slices },
    writer,
    log: nopLogger,
    events,
    maxEndpointsPerSubset: 1000,
  });
  return { endpoints, services, slices, writer, events, recorded, reconciler };
}

const REQUEST = { namespace: 'n', name: 's' };
/** Never aborted: these tests do not stop the work they start. */
const SIGNAL = new AbortController().signal;

describe('EndpointSliceMirroringReconciler', () => {
  it('creates the mirrored slice, then writes nothing on a second sync of the same state', async () => {
    const h = harness({ endpoints: [TWO_IPS], services: [makeService()] });
    await h.reconciler.reconcile(REQUEST, SIGNAL);
    expect(h.writer.writes).to.deep.equal([{ verb: 'create', slice: TWO_IPS_SLICE }]);
    h.slices.upsert(stored(TWO_IPS_SLICE, 's-gen1'));
    await h.reconciler.reconcile(REQUEST, SIGNAL);
    expect(h.writer.writes).to.have.length(1);
  });

  it('refuses to plan from a cache that misses its own create: waits for it, no retry used up', async () => {
    const h = harness({ endpoints: [TWO_IPS], services: [makeService()] });
    await h.reconciler.reconcile(REQUEST, SIGNAL);
    let err: unknown;
    try {
      await h.reconciler.sync(REQUEST, SIGNAL);
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(StaleCacheError);
    expect(await h.reconciler.reconcile(REQUEST, SIGNAL)).to.deep.equal({ requeueAfterMs: 1000 });
    expect(h.reconciler.tracker.isWaitingForCache('n/s')).to.equal(true);
    expect(h.writer.writes).to.have.length(1);
  });

  it('does not delete again while the cache still shows the slices it deleted', async () => {
    const ours = stored(TWO_IPS_SLICE, 's-abcde');
    const h = harness({ services: [makeService()], slices: [ours] });
    await h.reconciler.reconcile(REQUEST, SIGNAL);
    expect(h.writer.writes).to.deep.equal([{ verb: 'delete', namespace: 'n', name: 's-abcde' }]);
    expect(await h.reconciler.reconcile(REQUEST, SIGNAL)).to.deep.equal({ requeueAfterMs: 1000 });
    // The watch delivers the deletion: the cache drops it, the tracker expected it.
    h.slices.delete('n/s-abcde');
    expect(h.reconciler.tracker.handleDeletion(ours)).to.equal(true);
    await h.reconciler.reconcile(REQUEST, SIGNAL);
    expect(h.writer.writes).to.have.length(1);
  });

  const notMirrored: [string, { endpoints?: V1Endpoints[]; services?: V1Service[] }][] = [
    ['the Service has a selector', { endpoints: [TWO_IPS], services: [makeService({ app: 'a' })] }],
    ['the Service is gone', { endpoints: [TWO_IPS] }],
    ['the Endpoints is gone', { services: [makeService()] }],
    [
      'the Endpoints is labelled skip-mirror',
      {
        endpoints: [
          makeEndpoints(TWO_IPS.subsets!, { labels: { 'endpointslice.kubernetes.io/skip-mirror': 'true' } }),
        ],
        services: [makeService()],
      },
    ],
  ];
  for (const [what, objects] of notMirrored) {
    it(`deletes our slices, and only ours, when ${what}`, async () => {
      const ours = stored(TWO_IPS_SLICE, 's-abcde');
      const theirs = stored(TWO_IPS_SLICE, 's-other');
      theirs.metadata!.labels = { [SERVICE_NAME_LABEL]: 's', [MANAGED_BY_LABEL]: 'someone-else' };
      const h = harness({ ...objects, slices: [ours, theirs] });
      expect(h.reconciler.plan(REQUEST).plan).to.deep.equal({ ...empty(), deletes: [ours] });
      await h.reconciler.reconcile(REQUEST, SIGNAL);
      expect(h.writer.writes).to.deep.equal([{ verb: 'delete', namespace: 'n', name: 's-abcde' }]);
    });
  }

  it("skips another Service's ClusterIP (from the services index) and records the events on the Endpoints", async () => {
    const endpoints = makeEndpoints([{ addresses: ips('10.0.0.1', '10.96.0.99', 'foo'), ports: HTTP }]);
    const h = harness({
      endpoints: [endpoints],
      services: [makeService(), makeService({ x: 'y' }, '10.96.0.99', 'db')],
    });
    await h.reconciler.reconcile(REQUEST, SIGNAL);
    expect(h.writer.writes).to.deep.equal([
      { verb: 'create', slice: mirrored(undefined, 'IPv4', [ep('10.0.0.1')]) },
    ]);
    await h.events.flush();
    expect(
      h.recorded.map((e) => ({
        kind: e.involvedObject.kind,
        name: e.involvedObject.name,
        uid: e.involvedObject.uid,
        type: e.type,
        reason: e.reason,
        message: e.message,
      })),
    ).to.deep.equal([
      {
        kind: 'Endpoints',
        name: 's',
        uid: 'uid-s',
        type: 'Warning',
        reason: 'InvalidIPAddress',
        message: 'Skipped 1 invalid IP addresses when mirroring to EndpointSlices',
      },
      {
        kind: 'Endpoints',
        name: 's',
        uid: 'uid-s',
        type: 'Warning',
        reason: 'ForbiddenIPAddress',
        message:
          'Skipped 1 IP addresses that may not be mirrored to EndpointSlices: 10.96.0.99 (ClusterIP of Service n/db)',
      },
    ]);
  });
});
