import { expect } from 'chai';
import type {
  CoreV1EndpointPort,
  V1Container,
  V1ContainerPort,
  V1EndpointAddress,
  V1EndpointSubset,
  V1Endpoints,
  V1Pod,
  V1Service,
  V1ServicePort,
} from '@kubernetes/client-node';
import {
  DesiredEndpointsBuilder,
  desiredEndpoints,
  HEADLESS_LABEL,
  labelsEqual,
  MANAGED_BY_LABEL,
  MANAGED_BY_VALUE,
  MAX_ENDPOINTS_ADDRESSES,
  subsetsEqual,
  type DesiredEndpoints,
} from '../../../controllers/endpoints/desired.ts';
import { formatTriggerTime, podReadyTransitionTime } from '../../../shared/endpoints/triggertime.ts';
import { PodMemo } from '../../../shared/endpoints/podmemo.ts';
import type { AddressEntry } from '../../../shared/endpoints/subsets.ts';
import { keyOf, parseKey } from '../../../shared/kube/labels.ts';

// Fixtures. Defaults follow the spec: Service s in namespace n, selector app=a, port 80 -> 8080/TCP.

interface PodOptions {
  name: string;
  ip?: string;
  ips?: string[];
  ready?: boolean;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  node?: string;
  uid?: string;
  phase?: string;
  deleting?: boolean;
  hostname?: string;
  subdomain?: string;
  ports?: V1ContainerPort[];
  initContainers?: V1Container[];
  resourceVersion?: string;
}

function makePod(o: PodOptions): V1Pod {
  const ips = o.ips ?? (o.ip === undefined ? [] : [o.ip]);
  return {
    metadata: {
      name: o.name,
      namespace: 'n',
      uid: o.uid ?? `uid-${o.name}`,
      resourceVersion: o.resourceVersion ?? '1',
      labels: o.labels ?? { app: 'a' },
      ...(o.annotations ? { annotations: o.annotations } : {}),
      ...(o.deleting ? { deletionTimestamp: new Date('2026-01-02T03:04:05Z') } : {}),
    },
    spec: {
      nodeName: o.node ?? 'node-1',
      containers: [{ name: 'main', ports: o.ports ?? [] }],
      ...(o.initContainers ? { initContainers: o.initContainers } : {}),
      ...(o.hostname ? { hostname: o.hostname } : {}),
      ...(o.subdomain ? { subdomain: o.subdomain } : {}),
    },
    status: {
      phase: o.phase ?? 'Running',
      ...(ips.length > 0 ? { podIP: ips[0], podIPs: ips.map((ip) => ({ ip })) } : {}),
      conditions: [
        {
          type: 'Ready',
          status: o.ready === false ? 'False' : 'True',
          lastTransitionTime: new Date('2026-01-02T03:04:05Z'),
        },
      ],
    },
  };
}

interface ServiceOptions {
  name?: string;
  labels?: Record<string, string>;
  selector?: Record<string, string> | null;
  ports?: V1ServicePort[];
  clusterIP?: string;
  ipFamilies?: string[];
  type?: string;
  publishNotReadyAddresses?: boolean;
}

function makeService(o: ServiceOptions = {}): V1Service {
  return {
    metadata: { name: o.name ?? 's', namespace: 'n', ...(o.labels ? { labels: o.labels } : {}) },
    spec: {
      type: o.type ?? 'ClusterIP',
      clusterIP: o.clusterIP ?? '10.96.0.10',
      ipFamilies: o.ipFamilies ?? ['IPv4'],
      ...(o.selector === null ? {} : { selector: o.selector ?? { app: 'a' } }),
      ports: o.ports ?? [{ port: 80, targetPort: 8080, protocol: 'TCP' }],
      ...(o.publishNotReadyAddresses ? { publishNotReadyAddresses: true } : {}),
    },
  };
}

/** The address kube-controller-manager writes for a pod made by `makePod`. */
function addr(name: string, ip: string, extra: Partial<V1EndpointAddress> = {}): V1EndpointAddress {
  return {
    ip,
    nodeName: 'node-1',
    targetRef: { kind: 'Pod', namespace: 'n', name, uid: `uid-${name}` },
    ...extra,
  };
}

function port(p: number, name?: string, extra: Partial<CoreV1EndpointPort> = {}): CoreV1EndpointPort {
  return { ...(name ? { name } : {}), port: p, protocol: 'TCP', ...extra };
}

const P8080 = port(8080);
const LABELS = { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE };

/** Pod i of a large set: unique IP 10.x.y.z and name p<i>. */
function nthPod(i: number, extra: Partial<PodOptions> = {}): V1Pod {
  return makePod({ name: `p${i}`, ip: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, ...extra });
}

function count(subsets: readonly V1EndpointSubset[], field: 'addresses' | 'notReadyAddresses'): number {
  return subsets.reduce((n, s) => n + (s[field]?.length ?? 0), 0);
}

/** Deterministic shuffle (a small LCG), so a failure reproduces. */
function shuffled<T>(items: readonly T[], seed: number): T[] {
  const out = [...items];
  let state = seed;
  for (let i = out.length - 1; i > 0; i--) {
    state = (state * 1103515245 + 12345) % 2147483648;
    const j = state % (i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

interface Case {
  name: string;
  service: V1Service;
  pods: V1Pod[];
  want: DesiredEndpoints | undefined;
}

const namedHttp: V1ServicePort = { port: 80, targetPort: 'http', protocol: 'TCP' };

const specCases: Case[] = [
  {
    name: '1: one ready pod gives one subset with its address and port {"", 8080, TCP}',
    service: makeService(),
    pods: [makePod({ name: 'p1', ip: '10.0.0.1' })],
    want: {
      subsets: [{ addresses: [addr('p1', '10.0.0.1')], ports: [P8080] }],
      labels: LABELS,
      overCapacity: false,
    },
  },
  {
    name: '2: a not-ready pod goes to notReadyAddresses',
    service: makeService(),
    pods: [makePod({ name: 'p1', ip: '10.0.0.1', ready: false })],
    want: {
      subsets: [{ notReadyAddresses: [addr('p1', '10.0.0.1')], ports: [P8080] }],
      labels: LABELS,
      overCapacity: false,
    },
  },
  {
    name: '2: with publishNotReadyAddresses a not-ready pod goes to addresses',
    service: makeService({ publishNotReadyAddresses: true }),
    pods: [makePod({ name: 'p1', ip: '10.0.0.1', ready: false })],
    want: {
      subsets: [{ addresses: [addr('p1', '10.0.0.1')], ports: [P8080] }],
      labels: LABELS,
      overCapacity: false,
    },
  },
  {
    name: '3: a terminating ready pod is absent',
    service: makeService(),
    pods: [makePod({ name: 'p1', ip: '10.0.0.1', deleting: true })],
    want: { subsets: [], labels: LABELS, overCapacity: false },
  },
  {
    name: '3: with publishNotReadyAddresses a terminating pod is present',
    service: makeService({ publishNotReadyAddresses: true }),
    pods: [makePod({ name: 'p1', ip: '10.0.0.1', deleting: true })],
    want: {
      subsets: [{ addresses: [addr('p1', '10.0.0.1')], ports: [P8080] }],
      labels: LABELS,
      overCapacity: false,
    },
  },
  {
    name: '4: Failed and Succeeded pods with an IP are absent',
    service: makeService(),
    pods: [
      makePod({ name: 'p1', ip: '10.0.0.1', phase: 'Failed' }),
      makePod({ name: 'p2', ip: '10.0.0.2', phase: 'Succeeded' }),
    ],
    want: { subsets: [], labels: LABELS, overCapacity: false },
  },
  {
    name: '4: Failed and Succeeded pods are absent even with publishNotReadyAddresses',
    service: makeService({ publishNotReadyAddresses: true }),
    pods: [
      makePod({ name: 'p1', ip: '10.0.0.1', phase: 'Failed', ready: false }),
      makePod({ name: 'p2', ip: '10.0.0.2', phase: 'Succeeded', ready: false }),
    ],
    want: { subsets: [], labels: LABELS, overCapacity: false },
  },
  {
    name: '5: a named targetPort resolving to 8080 and 9090 gives two subsets',
    service: makeService({ ports: [namedHttp] }),
    pods: [
      makePod({ name: 'b', ip: '10.0.0.2', ports: [{ name: 'http', containerPort: 9090, protocol: 'TCP' }] }),
      makePod({ name: 'a', ip: '10.0.0.1', ports: [{ name: 'http', containerPort: 8080, protocol: 'TCP' }] }),
    ],
    want: {
      subsets: [
        { addresses: [addr('a', '10.0.0.1')], ports: [port(8080)] },
        { addresses: [addr('b', '10.0.0.2')], ports: [port(9090)] },
      ],
      labels: LABELS,
      overCapacity: false,
    },
  },
  {
    name: '6: a pod lacking the second named port is in a subset with only the first',
    service: makeService({
      ports: [
        { name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' },
        { name: 'metrics', port: 9100, targetPort: 'metrics', protocol: 'TCP' },
      ],
    }),
    pods: [
      makePod({
        name: 'a',
        ip: '10.0.0.1',
        ports: [
          { name: 'http', containerPort: 8080, protocol: 'TCP' },
          { name: 'metrics', containerPort: 9100, protocol: 'TCP' },
        ],
      }),
      makePod({ name: 'b', ip: '10.0.0.2', ports: [{ name: 'http', containerPort: 8080, protocol: 'TCP' }] }),
    ],
    want: {
      subsets: [
        { addresses: [addr('a', '10.0.0.1'), addr('b', '10.0.0.2')], ports: [port(8080, 'http')] },
        { addresses: [addr('a', '10.0.0.1')], ports: [port(9100, 'metrics')] },
      ],
      labels: LABELS,
      overCapacity: false,
    },
  },
  {
    name: '7: a named port whose container port is UDP while the Service port is TCP leaves the pod out',
    service: makeService({ ports: [namedHttp] }),
    pods: [
      makePod({ name: 'a', ip: '10.0.0.1', ports: [{ name: 'http', containerPort: 8080, protocol: 'UDP' }] }),
    ],
    want: { subsets: [], labels: LABELS, overCapacity: false },
  },
  {
    name: '8: a headless Service without ports gives one subset without ports and the headless label',
    service: makeService({ clusterIP: 'None', ports: [] }),
    pods: [makePod({ name: 'b', ip: '10.0.0.2' }), makePod({ name: 'a', ip: '10.0.0.1', ready: false })],
    want: {
      subsets: [{ addresses: [addr('b', '10.0.0.2')], notReadyAddresses: [addr('a', '10.0.0.1')] }],
      labels: { [HEADLESS_LABEL]: '', ...LABELS },
      overCapacity: false,
    },
  },
  {
    name: '9: hostname web-0 with subdomain equal to the Service name sets hostname, also when not headless',
    service: makeService(),
    pods: [makePod({ name: 'web-0', ip: '10.0.0.1', hostname: 'web-0', subdomain: 's' })],
    want: {
      subsets: [{ addresses: [addr('web-0', '10.0.0.1', { hostname: 'web-0' })], ports: [P8080] }],
      labels: LABELS,
      overCapacity: false,
    },
  },
  {
    name: '9: hostname web-0 with a headless Service of that subdomain sets hostname',
    service: makeService({ clusterIP: 'None' }),
    pods: [makePod({ name: 'web-0', ip: '10.0.0.1', hostname: 'web-0', subdomain: 's' })],
    want: {
      subsets: [{ addresses: [addr('web-0', '10.0.0.1', { hostname: 'web-0' })], ports: [P8080] }],
      labels: { [HEADLESS_LABEL]: '', ...LABELS },
      overCapacity: false,
    },
  },
  {
    name: '9: hostname with another subdomain sets no hostname',
    service: makeService(),
    pods: [makePod({ name: 'web-0', ip: '10.0.0.1', hostname: 'web-0', subdomain: 'other' })],
    want: {
      subsets: [{ addresses: [addr('web-0', '10.0.0.1')], ports: [P8080] }],
      labels: LABELS,
      overCapacity: false,
    },
  },
  {
    name: '10: ipFamilies [IPv6, IPv4] takes IPv6 addresses only and skips an IPv4-only pod',
    service: makeService({ clusterIP: 'fd00::10', ipFamilies: ['IPv6', 'IPv4'] }),
    pods: [makePod({ name: 'dual', ips: ['10.0.0.1', 'fd00::1'] }), makePod({ name: 'v4', ip: '10.0.0.2' })],
    want: {
      subsets: [{ addresses: [addr('dual', 'fd00::1')], ports: [P8080] }],
      labels: LABELS,
      overCapacity: false,
    },
  },
  {
    name: '14: the labels are the Service labels plus managed-by',
    service: makeService({ labels: { team: 'y' } }),
    pods: [],
    want: { subsets: [], labels: { team: 'y', ...LABELS }, overCapacity: false },
  },
  {
    name: '15: a Service without selector is not managed',
    service: makeService({ selector: null }),
    pods: [makePod({ name: 'p1', ip: '10.0.0.1' })],
    want: undefined,
  },
  {
    name: '15: a Service with an empty selector is not managed (the API server drops an empty selector)',
    service: makeService({ selector: {} }),
    pods: [makePod({ name: 'p1', ip: '10.0.0.1' })],
    want: undefined,
  },
  {
    name: '16: an ExternalName Service gets no Endpoints, even with a selector',
    service: makeService({ type: 'ExternalName' }),
    pods: [makePod({ name: 'p1', ip: '10.0.0.1' })],
    want: undefined,
  },
  {
    name: '19: addresses are ordered by IP string, 10.0.0.10 before 10.0.0.2',
    service: makeService(),
    pods: [makePod({ name: 'two', ip: '10.0.0.2' }), makePod({ name: 'ten', ip: '10.0.0.10' })],
    want: {
      subsets: [{ addresses: [addr('ten', '10.0.0.10'), addr('two', '10.0.0.2')], ports: [P8080] }],
      labels: LABELS,
      overCapacity: false,
    },
  },
  {
    name: '20: two Service ports both targeting 8080 give one subset with two ports',
    service: makeService({
      ports: [
        { name: 'b', port: 81, targetPort: 8080, protocol: 'TCP' },
        { name: 'a', port: 80, targetPort: 8080, protocol: 'TCP' },
      ],
    }),
    pods: [makePod({ name: 'p1', ip: '10.0.0.1' })],
    want: {
      subsets: [{ addresses: [addr('p1', '10.0.0.1')], ports: [port(8080, 'a'), port(8080, 'b')] }],
      labels: LABELS,
      overCapacity: false,
    },
  },
];

/** Spec cases that are not a single (Service, Pods) -> Endpoints row. */
const specChecks: { name: string; check: () => void }[] = [
  {
    name: '11: 1001 ready pods give the 1000 lowest addresses and overCapacity',
    check: () => {
      const pods = Array.from({ length: 1001 }, (_, i) => nthPod(i));
      const got = desiredEndpoints(makeService(), pods);
      expect(got?.overCapacity).to.equal(true);
      expect(got?.subsets).to.have.length(1);
      const ips = got?.subsets[0].addresses?.map((a) => a.ip) ?? [];
      expect(ips).to.have.length(MAX_ENDPOINTS_ADDRESSES);
      const allSorted = pods.map((p) => p.status?.podIP ?? '').sort();
      expect(ips).to.deep.equal(allSorted.slice(0, 1000));
    },
  },
  {
    name: '11: back to 999 ready pods keeps them all without overCapacity',
    check: () => {
      const pods = Array.from({ length: 999 }, (_, i) => nthPod(i));
      const got = desiredEndpoints(makeService(), pods);
      expect(got?.overCapacity).to.equal(false);
      expect(count(got?.subsets ?? [], 'addresses')).to.equal(999);
    },
  },
  {
    name: '12: 950 ready and 100 not-ready pods keep all 950 ready and 50 not-ready',
    check: () => {
      const pods = [
        ...Array.from({ length: 950 }, (_, i) => nthPod(i)),
        ...Array.from({ length: 100 }, (_, i) => nthPod(950 + i, { ready: false })),
      ];
      const got = desiredEndpoints(makeService(), pods);
      expect(got?.overCapacity).to.equal(true);
      expect(count(got?.subsets ?? [], 'addresses')).to.equal(950);
      expect(count(got?.subsets ?? [], 'notReadyAddresses')).to.equal(50);
    },
  },
  {
    name: '13: a pod annotation change or a label change keeping membership leaves the desired Endpoints equal',
    check: () => {
      const service = makeService();
      const before = desiredEndpoints(service, [makePod({ name: 'p1', ip: '10.0.0.1' })]);
      const annotated = makePod({
        name: 'p1',
        ip: '10.0.0.1',
        annotations: { note: 'x' },
        resourceVersion: '2',
      });
      const relabelled = makePod({
        name: 'p1',
        ip: '10.0.0.1',
        labels: { app: 'a', extra: 'y' },
        resourceVersion: '3',
      });
      for (const pod of [annotated, relabelled]) {
        const after = desiredEndpoints(service, [pod]);
        expect(after).to.deep.equal(before);
        expect(subsetsEqual(before?.subsets, after?.subsets)).to.equal(true);
        expect(labelsEqual(before?.labels, after?.labels)).to.equal(true);
      }
    },
  },
  {
    name: '14: a Service label change replaces the Endpoints labels',
    check: () => {
      const pods = [makePod({ name: 'p1', ip: '10.0.0.1' })];
      const before = desiredEndpoints(makeService({ labels: { team: 'x', keep: 'k' } }), pods);
      const after = desiredEndpoints(makeService({ labels: { team: 'y' } }), pods);
      expect(before?.labels).to.deep.equal({ team: 'x', keep: 'k', ...LABELS });
      expect(after?.labels).to.deep.equal({ team: 'y', ...LABELS });
      expect(labelsEqual(before?.labels, after?.labels)).to.equal(false);
    },
  },
  {
    name: '17: an Endpoints deleted by hand is rebuilt from the Service and Pods alone, with the subsets and labels it had',
    check: () => {
      const service = makeService({ labels: { team: 'x' } });
      const pods = [
        makePod({ name: 'p1', ip: '10.0.0.1' }),
        makePod({ name: 'p2', ip: '10.0.0.2', ready: false }),
      ];
      // What was written and then deleted, as the API server had stored it.
      const deleted = JSON.parse(JSON.stringify(desiredEndpoints(service, pods))) as DesiredEndpoints;
      // Nothing of it is left to read: the desired state takes no Endpoints, only the Service and Pods.
      const rebuilt = desiredEndpoints(service, pods);
      expect(rebuilt).to.deep.equal({
        subsets: [
          {
            addresses: [addr('p1', '10.0.0.1')],
            notReadyAddresses: [addr('p2', '10.0.0.2')],
            ports: [P8080],
          },
        ],
        labels: { team: 'x', ...LABELS },
        overCapacity: false,
      });
      expect(subsetsEqual(deleted.subsets, rebuilt?.subsets)).to.equal(true);
      expect(labelsEqual(deleted.labels, rebuilt?.labels)).to.equal(true);
    },
  },
  {
    name: "18: an orphan Endpoints has its Service's key, which parses back to the namespace and name the sync looks up",
    check: () => {
      const orphan: V1Endpoints = { metadata: { namespace: 'n', name: 'gone' } };
      expect(keyOf(orphan)).to.equal(keyOf(makeService({ name: 'gone' })));
      expect(parseKey(keyOf(orphan))).to.deep.equal({ namespace: 'n', name: 'gone' });
    },
  },
];

describe('desiredEndpoints: spec cases', () => {
  const all = [
    ...specCases.map((c) => ({
      name: c.name,
      check: () => expect(desiredEndpoints(c.service, c.pods)).to.deep.equal(c.want),
    })),
    ...specChecks,
  ].sort((a, b) => parseInt(a.name, 10) - parseInt(b.name, 10));
  for (const c of all) it(c.name, c.check);
});

describe('desiredEndpoints: canonical form', () => {
  it('gives byte-identical output for any order of the input pods', () => {
    const service = makeService({
      ports: [
        { name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' },
        { name: 'dns', port: 53, targetPort: 53, protocol: 'UDP' },
      ],
      publishNotReadyAddresses: false,
    });
    const pods = Array.from({ length: 40 }, (_, i) =>
      nthPod(i, {
        ready: i % 3 !== 0,
        ports: [{ name: 'http', containerPort: 8000 + (i % 4), protocol: 'TCP' }],
        hostname: i % 5 === 0 ? `h${i}` : undefined,
        subdomain: 's',
      }),
    );
    const reference = JSON.stringify(desiredEndpoints(service, pods));
    for (const seed of [1, 2, 3, 42, 1234]) {
      expect(JSON.stringify(desiredEndpoints(service, shuffled(pods, seed)))).to.equal(reference);
    }
    expect(JSON.stringify(desiredEndpoints(service, [...pods].reverse()))).to.equal(reference);
  });

  it('built in pieces of 1, 7 and 40 pods it gives the same bytes as all the pods at once', () => {
    const service = makeService({ publishNotReadyAddresses: false });
    const pods = Array.from({ length: 40 }, (_, i) => nthPod(i, { ready: i % 4 !== 0 }));
    const reference = JSON.stringify(desiredEndpoints(service, pods));
    for (const size of [1, 7, 40]) {
      const builder = new DesiredEndpointsBuilder(service);
      for (let i = 0; i < pods.length; i += size) builder.addPods(pods.slice(i, i + size));
      expect(JSON.stringify(builder.finish())).to.equal(reference);
    }
    // A Service that is not ours gives undefined however its pods come.
    const external = new DesiredEndpointsBuilder(makeService({ type: 'ExternalName' }));
    external.addPods(pods);
    expect(external.finish()).to.equal(undefined);
  });

  it('with a memo: only pods changed since the last sync are rebuilt, and the output is the same bytes', () => {
    /** Counts the pods whose entries were built (not found in the memo). */
    class CountingMemo extends PodMemo<AddressEntry[]> {
      built = 0;
      override set(pod: V1Pod, key: string, value: AddressEntry[]): void {
        this.built++;
        super.set(pod, key, value);
      }
    }
    const memo = new CountingMemo();
    const build = (svc: V1Service, list: readonly V1Pod[]): string => {
      memo.built = 0;
      const builder = new DesiredEndpointsBuilder(svc, { memo });
      builder.addPods(list);
      return JSON.stringify(builder.finish());
    };
    const service = makeService({});
    const pods = Array.from({ length: 20 }, (_, i) => nthPod(i, { ready: i % 3 !== 0 }));
    expect(build(service, pods)).to.equal(JSON.stringify(desiredEndpoints(service, pods)));
    expect(memo.built).to.equal(20);
    // Pod 1 turns not ready (a new object, as the informer makes one); pod 19 leaves.
    const changed = pods.slice(0, 19);
    changed[1] = nthPod(1, { ready: false });
    expect(build(service, changed)).to.equal(JSON.stringify(desiredEndpoints(service, changed)));
    expect(memo.built).to.equal(1);
    // The Service's target port changes: every pod is built again, under the new Service.
    const retargeted = makeService({ ports: [{ port: 80, targetPort: 9090, protocol: 'TCP' }] });
    expect(build(retargeted, changed)).to.equal(JSON.stringify(desiredEndpoints(retargeted, changed)));
    expect(memo.built).to.equal(19);
    // Whatever a caller does to one output, the next one is not affected.
    const out = new DesiredEndpointsBuilder(service, { memo });
    out.addPods(changed);
    out.finish()!.subsets[0].addresses![0].ip = '192.0.2.1';
    expect(build(service, changed)).to.equal(JSON.stringify(desiredEndpoints(service, changed)));
    expect(memo.built).to.equal(0);
  });

  it('lists a pod given twice once, and not-ready wins when the copies disagree', () => {
    const ready = makePod({ name: 'p1', ip: '10.0.0.1' });
    const notReady = makePod({ name: 'p1', ip: '10.0.0.1', ready: false });
    expect(desiredEndpoints(makeService(), [ready, ready])?.subsets).to.deep.equal([
      { addresses: [addr('p1', '10.0.0.1')], ports: [P8080] },
    ]);
    expect(desiredEndpoints(makeService(), [ready, notReady])?.subsets).to.deep.equal([
      { notReadyAddresses: [addr('p1', '10.0.0.1')], ports: [P8080] },
    ]);
  });

  it('returns objects shared neither with the inputs nor between subsets', () => {
    const service = makeService({
      labels: { team: 'x' },
      ports: [
        { name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' },
        { name: 'metrics', port: 9100, targetPort: 9100, protocol: 'TCP' },
      ],
    });
    const pods = [
      makePod({ name: 'a', ip: '10.0.0.1', ports: [{ name: 'http', containerPort: 8080, protocol: 'TCP' }] }),
      makePod({ name: 'b', ip: '10.0.0.2' }),
    ];
    const got = desiredEndpoints(service, pods);
    const first = got?.subsets[0].addresses?.[0];
    if (first?.targetRef) first.targetRef.name = 'changed';
    if (got) got.labels.team = 'changed';
    expect(got?.subsets[1].addresses?.[0].targetRef?.name).to.equal('a');
    expect(service.metadata?.labels).to.deep.equal({ team: 'x' });
  });

  it('keeps two pods sharing one IP (host network) as two addresses ordered by UID', () => {
    const pods = [
      makePod({ name: 'y', ip: '192.168.0.5', uid: 'uid-b' }),
      makePod({ name: 'x', ip: '192.168.0.5', uid: 'uid-a' }),
    ];
    const subsets = desiredEndpoints(makeService(), pods)?.subsets;
    expect(subsets?.[0].addresses?.map((a) => a.targetRef?.uid)).to.deep.equal(['uid-a', 'uid-b']);
  });

  it('orders subsets by their ports and ports by name, port, protocol', () => {
    const service = makeService({
      ports: [
        { name: 'z', port: 2, targetPort: 'z', protocol: 'TCP' },
        { name: 'a', port: 1, targetPort: 'a', protocol: 'TCP' },
        { name: 'm', port: 3, targetPort: 7000, protocol: 'UDP' },
        { name: 'k', port: 4, targetPort: 7000, protocol: 'TCP' },
      ],
    });
    const pods = [
      makePod({
        name: 'p1',
        ip: '10.0.0.1',
        ports: [
          { name: 'a', containerPort: 5000, protocol: 'TCP' },
          { name: 'z', containerPort: 6000, protocol: 'TCP' },
        ],
      }),
      makePod({ name: 'p2', ip: '10.0.0.2', ports: [{ name: 'z', containerPort: 6000, protocol: 'TCP' }] }),
    ];
    expect(desiredEndpoints(service, pods)?.subsets).to.deep.equal([
      { addresses: [addr('p1', '10.0.0.1')], ports: [port(5000, 'a')] },
      {
        addresses: [addr('p1', '10.0.0.1'), addr('p2', '10.0.0.2')],
        ports: [port(7000, 'k'), port(7000, 'm', { protocol: 'UDP' }), port(6000, 'z')],
      },
    ]);
  });
});

describe('desiredEndpoints: pods, ports and families', () => {
  it('resolves a named port on a restartable (sidecar) init container', () => {
    const sidecar: V1Container = {
      name: 'proxy',
      restartPolicy: 'Always',
      ports: [{ name: 'http', containerPort: 15001, protocol: 'TCP' }],
    };
    const pod = makePod({ name: 'p1', ip: '10.0.0.1', initContainers: [sidecar] });
    expect(desiredEndpoints(makeService({ ports: [namedHttp] }), [pod])?.subsets).to.deep.equal([
      { addresses: [addr('p1', '10.0.0.1')], ports: [port(15001)] },
    ]);
  });

  it('ignores the ports of a plain init container', () => {
    const init: V1Container = {
      name: 'setup',
      ports: [{ name: 'http', containerPort: 15001, protocol: 'TCP' }],
    };
    const pod = makePod({ name: 'p1', ip: '10.0.0.1', initContainers: [init] });
    expect(desiredEndpoints(makeService({ ports: [namedHttp] }), [pod])?.subsets).to.deep.equal([]);
  });

  it('prefers a regular container port over a sidecar port of the same name', () => {
    const sidecar: V1Container = {
      name: 'proxy',
      restartPolicy: 'Always',
      ports: [{ name: 'http', containerPort: 15001, protocol: 'TCP' }],
    };
    const pod = makePod({
      name: 'p1',
      ip: '10.0.0.1',
      initContainers: [sidecar],
      ports: [{ name: 'http', containerPort: 8080, protocol: 'TCP' }],
    });
    expect(desiredEndpoints(makeService({ ports: [namedHttp] }), [pod])?.subsets?.[0].ports).to.deep.equal([
      P8080,
    ]);
  });

  it('carries appProtocol from the Service port', () => {
    const service = makeService({
      ports: [{ name: 'web', port: 80, targetPort: 8080, protocol: 'TCP', appProtocol: 'http' }],
    });
    expect(desiredEndpoints(service, [makePod({ name: 'p1', ip: '10.0.0.1' })])?.subsets).to.deep.equal([
      { addresses: [addr('p1', '10.0.0.1')], ports: [port(8080, 'web', { appProtocol: 'http' })] },
    ]);
  });

  it('uses the Service port when targetPort is absent', () => {
    const service = makeService({ ports: [{ port: 80, protocol: 'TCP' }] });
    expect(
      desiredEndpoints(service, [makePod({ name: 'p1', ip: '10.0.0.1' })])?.subsets?.[0].ports,
    ).to.deep.equal([port(80)]);
  });

  it('publishes a terminating not-ready pod as ready with publishNotReadyAddresses', () => {
    const pod = makePod({ name: 'p1', ip: '10.0.0.1', deleting: true, ready: false });
    expect(desiredEndpoints(makeService({ publishNotReadyAddresses: true }), [pod])?.subsets).to.deep.equal([
      { addresses: [addr('p1', '10.0.0.1')], ports: [P8080] },
    ]);
  });

  it('leaves out pods without an IP and pods the selector does not match', () => {
    const pods = [
      makePod({ name: 'noip' }),
      makePod({ name: 'other', ip: '10.0.0.3', labels: { app: 'b' } }),
      makePod({ name: 'ok', ip: '10.0.0.1' }),
    ];
    expect(desiredEndpoints(makeService(), pods)?.subsets).to.deep.equal([
      { addresses: [addr('ok', '10.0.0.1')], ports: [P8080] },
    ]);
  });

  it('gives a non-headless Service without ports no subsets', () => {
    expect(
      desiredEndpoints(makeService({ ports: [] }), [makePod({ name: 'p1', ip: '10.0.0.1' })]),
    ).to.deep.equal({
      subsets: [],
      labels: LABELS,
      overCapacity: false,
    });
  });

  it('takes the ClusterIP family when ipFamilies is absent', () => {
    const service = makeService({ clusterIP: 'fd00::10' });
    delete service.spec?.ipFamilies;
    const pod = makePod({ name: 'p1', ips: ['10.0.0.1', 'fd00::1'] });
    expect(desiredEndpoints(service, [pod])?.subsets?.[0].addresses).to.deep.equal([addr('p1', 'fd00::1')]);
  });

  it("takes the pod's primary IP family for a headless Service without ipFamilies", () => {
    const service = makeService({ clusterIP: 'None' });
    delete service.spec?.ipFamilies;
    const pod = makePod({ name: 'p1', ips: ['fd00::1', '10.0.0.1'] });
    expect(desiredEndpoints(service, [pod])?.subsets?.[0].addresses).to.deep.equal([addr('p1', 'fd00::1')]);
  });

  it('falls back to status.podIP when status.podIPs is absent', () => {
    const pod = makePod({ name: 'p1', ip: '10.0.0.1' });
    delete pod.status?.podIPs;
    expect(desiredEndpoints(makeService(), [pod])?.subsets?.[0].addresses).to.deep.equal([
      addr('p1', '10.0.0.1'),
    ]);
  });

  it('removes a headless label the Service carries when it has a ClusterIP, and owns managed-by', () => {
    const service = makeService({
      labels: { [HEADLESS_LABEL]: '', [MANAGED_BY_LABEL]: 'someone', app: 'x' },
    });
    expect(desiredEndpoints(service, [])?.labels).to.deep.equal({ app: 'x', ...LABELS });
  });
});

describe('desiredEndpoints: address text, as kube-controller-manager writes it', () => {
  // Upstream parses each pod IP (ParseIPSloppy) and writes it back with String().
  const ipv6Service = (): V1Service => makeService({ clusterIP: 'fd00::10', ipFamilies: ['IPv6'] });
  const cases: { name: string; service: () => V1Service; podIP: string; want: string }[] = [
    {
      name: 'an upper-case IPv6 pod IP is written in lower case',
      service: ipv6Service,
      podIP: 'FD00:1::1',
      want: 'fd00:1::1',
    },
    {
      name: 'an IPv6 pod IP with leading zeros in its groups is written without them',
      service: ipv6Service,
      podIP: 'fd00:0001::0001',
      want: 'fd00:1::1',
    },
    {
      name: 'an IPv4-mapped IPv6 pod IP is written as the IPv4 address it maps',
      service: makeService,
      podIP: '::ffff:10.0.0.1',
      want: '10.0.0.1',
    },
    {
      name: 'a plain IPv4 pod IP is written as it is',
      service: makeService,
      podIP: '10.0.0.1',
      want: '10.0.0.1',
    },
    {
      name: 'an IPv4 pod IP with leading zeros is read as decimal and written without them',
      service: makeService,
      podIP: '010.000.000.001',
      want: '10.0.0.1',
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(desiredEndpoints(c.service(), [makePod({ name: 'p1', ip: c.podIP })])).to.deep.equal({
        subsets: [{ addresses: [addr('p1', c.want)], ports: [P8080] }],
        labels: LABELS,
        overCapacity: false,
      });
    });
  }

  it('an IPv4-mapped IPv6 pod IP is no address of an IPv6 Service', () => {
    const pod = makePod({ name: 'p1', ip: '::ffff:10.0.0.1' });
    expect(desiredEndpoints(ipv6Service(), [pod])?.subsets).to.deep.equal([]);
  });

  it('a pod IP that is not an IP gives the pod no address (upstream writes "<nil>", which the API server rejects)', () => {
    const pod = makePod({ name: 'p1', ip: 'not-an-ip' });
    expect(desiredEndpoints(makeService(), [pod])?.subsets).to.deep.equal([]);
  });
});

describe('desiredEndpoints: address cap', () => {
  /** Pods answering a named port "p" on `containerPort`, so each port number forms a subset. */
  function group(from: number, n: number, containerPort: number, ready = true): V1Pod[] {
    return Array.from({ length: n }, (_, i) =>
      nthPod(from + i, { ready, ports: [{ name: 'p', containerPort, protocol: 'TCP' }] }),
    );
  }
  const service = makeService({ ports: [{ port: 80, targetPort: 'p', protocol: 'TCP' }] });

  function perSubset(got: DesiredEndpoints | undefined): [number, number, number][] {
    return (got?.subsets ?? []).map((s) => [
      s.ports?.[0].port ?? 0,
      s.addresses?.length ?? 0,
      s.notReadyAddresses?.length ?? 0,
    ]);
  }

  it('shares the cap among ready subsets as upstream: ceil(n / total * 1000), bounded by what is left', () => {
    // 150 + 600 + 300 = 1050 ready. Subsets in port order 7070, 8080, 9090:
    // ceil(150/1050*1000) = 143, ceil(600/1050*1000) = 572, ceil(300/1050*1000) = 286 -> 285 left.
    const pods = [...group(0, 600, 8080), ...group(600, 300, 9090), ...group(900, 150, 7070)];
    const got = desiredEndpoints(service, pods);
    expect(got?.overCapacity).to.equal(true);
    expect(perSubset(got)).to.deep.equal([
      [7070, 143, 0],
      [8080, 572, 0],
      [9090, 285, 0],
    ]);
  });

  it('drops every not-ready address when the ready ones alone exceed the cap', () => {
    const pods = [...group(0, 1001, 8080), ...group(1001, 10, 8080, false), ...group(1011, 5, 9090, false)];
    const got = desiredEndpoints(service, pods);
    expect(perSubset(got)).to.deep.equal([[8080, 1000, 0]]);
  });

  it('shares the room left by ready addresses among not-ready subsets', () => {
    // 900 ready, 150 not ready: room 100 over 150. 7070: ceil(60/150*100) = 40; 8080 has none;
    // 9090: ceil(90/150*100) = 60.
    const pods = [...group(0, 900, 8080), ...group(900, 60, 7070, false), ...group(960, 90, 9090, false)];
    const got = desiredEndpoints(service, pods);
    expect(got?.overCapacity).to.equal(true);
    expect(perSubset(got)).to.deep.equal([
      [7070, 0, 40],
      [8080, 900, 0],
      [9090, 0, 60],
    ]);
  });

  it('keeps exactly 1000 ready and drops a single not-ready address', () => {
    const got = desiredEndpoints(service, [...group(0, 1000, 8080), ...group(1000, 1, 8080, false)]);
    expect(got?.overCapacity).to.equal(true);
    expect(perSubset(got)).to.deep.equal([[8080, 1000, 0]]);
  });

  it('drops a subset the rounding leaves empty (upstream would send a subset the API server rejects)', () => {
    // 500 + 500 + 1 ready: ceil(500/1001*1000) = 500 twice uses the whole cap; 9090 gets 0.
    const pods = [...group(0, 500, 7070), ...group(500, 500, 8080), ...group(1000, 1, 9090)];
    expect(perSubset(desiredEndpoints(service, pods))).to.deep.equal([
      [7070, 500, 0],
      [8080, 500, 0],
    ]);
  });

  it('honours a smaller maxAddresses option', () => {
    const got = desiredEndpoints(makeService(), [nthPod(1), nthPod(2), nthPod(3)], { maxAddresses: 2 });
    expect(got?.overCapacity).to.equal(true);
    expect(got?.subsets[0].addresses?.map((a) => a.ip)).to.deep.equal(['10.0.0.1', '10.0.0.2']);
  });
});

describe('subsetsEqual and labelsEqual', () => {
  const base: V1EndpointSubset[] = [
    { addresses: [addr('a', '10.0.0.1'), addr('b', '10.0.0.2')], ports: [port(8080, 'x'), port(9090, 'y')] },
    { notReadyAddresses: [addr('c', '10.0.0.3')], ports: [port(7070, 'z')] },
  ];

  it('ignores targetRef.resourceVersion', () => {
    const other = structuredClone(base);
    const ref = other[0].addresses?.[0].targetRef;
    if (ref) ref.resourceVersion = '99';
    expect(subsetsEqual(base, other)).to.equal(true);
  });

  it('treats absent and empty lists and absent and empty strings alike', () => {
    expect(subsetsEqual(undefined, [])).to.equal(true);
    expect(
      subsetsEqual(
        [{ addresses: [addr('a', '10.0.0.1')], ports: [port(80)] }],
        [
          {
            addresses: [addr('a', '10.0.0.1')],
            notReadyAddresses: [],
            ports: [{ name: '', port: 80, protocol: 'TCP' }],
          },
        ],
      ),
    ).to.equal(true);
  });

  it('ignores the order of subsets, addresses and ports', () => {
    const reordered: V1EndpointSubset[] = [
      { notReadyAddresses: [addr('c', '10.0.0.3')], ports: [port(7070, 'z')] },
      {
        addresses: [addr('b', '10.0.0.2'), addr('a', '10.0.0.1')],
        ports: [port(9090, 'y'), port(8080, 'x')],
      },
    ];
    expect(subsetsEqual(base, reordered)).to.equal(true);
  });

  it('sees a moved address, a changed port, a changed node and a missing hostname', () => {
    const moved = structuredClone(base);
    moved[1] = { addresses: [addr('c', '10.0.0.3')], ports: [port(7070, 'z')] };
    const ported = structuredClone(base);
    ported[0].ports = [port(8081, 'x'), port(9090, 'y')];
    const noded = structuredClone(base);
    noded[0].addresses = [addr('a', '10.0.0.1', { nodeName: 'node-2' }), addr('b', '10.0.0.2')];
    const named = structuredClone(base);
    named[0].addresses = [addr('a', '10.0.0.1', { hostname: 'h' }), addr('b', '10.0.0.2')];
    for (const other of [moved, ported, noded, named]) expect(subsetsEqual(base, other)).to.equal(false);
    expect(subsetsEqual(base, base.slice(0, 1))).to.equal(false);
  });

  it('compares label maps by content, absent equal to empty', () => {
    expect(labelsEqual({ a: '1', b: '2' }, { b: '2', a: '1' })).to.equal(true);
    expect(labelsEqual(undefined, {})).to.equal(true);
    expect(labelsEqual({ a: '1' }, { a: '2' })).to.equal(false);
    expect(labelsEqual({ a: '1' }, { a: '1', b: '' })).to.equal(false);
  });
});

describe('trigger time helpers', () => {
  it('reads the Ready condition lastTransitionTime', () => {
    const pod = makePod({ name: 'p1', ip: '10.0.0.1' });
    expect(podReadyTransitionTime(pod)?.toISOString()).to.equal('2026-01-02T03:04:05.000Z');
    delete pod.status?.conditions;
    expect(podReadyTransitionTime(pod)).to.equal(undefined);
  });

  it("formats like Go's RFC3339Nano in UTC, trimming trailing zeros of the fraction", () => {
    expect(formatTriggerTime(new Date('2026-01-02T03:04:05.123Z'))).to.equal('2026-01-02T03:04:05.123Z');
    expect(formatTriggerTime(new Date('2026-01-02T03:04:05.120Z'))).to.equal('2026-01-02T03:04:05.12Z');
    expect(formatTriggerTime(new Date('2026-01-02T03:04:05.000Z'))).to.equal('2026-01-02T03:04:05Z');
    expect(formatTriggerTime(new Date('2026-01-02T05:04:05+02:00'))).to.equal('2026-01-02T03:04:05Z');
  });
});
