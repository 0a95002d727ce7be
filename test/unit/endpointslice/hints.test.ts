import { expect } from 'chai';
import type {
  V1Endpoint,
  V1EndpointHints,
  V1EndpointSlice,
  V1Node,
  V1Service,
} from '@kubernetes/client-node';
import {
  DEPRECATED_TOPOLOGY_HINTS_ANNOTATION,
  hintModeOf,
  TOPOLOGY_MODE_ANNOTATION,
  TopologyHints,
  type HintEvent,
  type HintMode,
  type HintsInput,
  type HintsResult,
} from '../../../controllers/endpointslice/hints.ts';
import { zoneCpuRatios } from '../../../controllers/endpointslice/zones.ts';

// Fixtures. Hints are written compactly: '-' none, 'a' zone a, 'a@n1' zone a and node n1, '@n1' node n1.

function hints(text: string): V1EndpointHints | undefined {
  if (text === '-') return undefined;
  const [zone, node] = text.split('@');
  return {
    ...(zone ? { forZones: [{ name: zone }] } : {}),
    ...(node ? { forNodes: [{ name: node }] } : {}),
  };
}

interface EndpointOptions {
  zone?: string;
  node?: string;
  ready?: boolean;
  /** Hints the endpoint already carries (notation above). */
  hinted?: string;
}

let nextIP = 1;

function ep(o: EndpointOptions = {}): V1Endpoint {
  const hinted = o.hinted === undefined ? undefined : hints(o.hinted);
  return {
    addresses: [`10.0.0.${nextIP++}`],
    conditions: { ready: o.ready ?? true, serving: o.ready ?? true, terminating: false },
    ...(o.zone === undefined ? {} : { zone: o.zone }),
    ...(o.node === undefined ? {} : { nodeName: o.node }),
    ...(hinted === undefined ? {} : { hints: hinted }),
  };
}

/** Ready endpoints in the given zones, without hints. */
function inZones(...zones: string[]): V1Endpoint[] {
  return zones.map((zone) => ep({ zone }));
}

/** Ready endpoints in zone/hint pairs, e.g. hintedAs(['a', 'b']) is in zone a with hints for zone b. */
function hintedAs(...pairs: [string, string][]): V1Endpoint[] {
  return pairs.map(([zone, hinted]) => ep({ zone, hinted }));
}

function slice(name: string, endpoints: V1Endpoint[]): V1EndpointSlice {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      name,
      namespace: 'n',
      resourceVersion: '7',
      creationTimestamp: new Date('2026-01-01T00:00:00Z'),
    },
    addressType: 'IPv4',
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
    endpoints,
  };
}

/** Freezes a cache object all the way down: any mutation by the module under test throws. */
function frozen<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !(value instanceof Date)) {
    for (const child of Object.values(value)) frozen(child);
    Object.freeze(value);
  }
  return value;
}

function input(o: Partial<HintsInput> & { mode: HintMode }): HintsInput {
  return {
    serviceKey: 'n/s',
    addressType: 'IPv4',
    creates: [],
    updates: [],
    unchanged: [],
    cpuRatios: undefined,
    ...o,
  };
}

/** The hints of each endpoint of each slice, in order. */
function hintsOf(slices: readonly V1EndpointSlice[]): (V1EndpointHints | undefined)[][] {
  return slices.map((s) => (s.endpoints ?? []).map((e) => e.hints));
}

function expected(...slices: string[][]): (V1EndpointHints | undefined)[][] {
  return slices.map((s) => s.map(hints));
}

function names(slices: readonly V1EndpointSlice[]): (string | undefined)[] {
  return slices.map((s) => s.metadata?.name);
}

const ENABLED: HintEvent = {
  type: 'Normal',
  reason: 'TopologyAwareHintsEnabled',
  message: 'Topology Aware Hints has been enabled, addressType: IPv4',
};

function ratios(entries: Record<string, number>): Map<string, number> {
  return new Map(Object.entries(entries));
}

const EQUAL_AB = ratios({ a: 0.5, b: 0.5 });

function node(
  name: string,
  zone: string | undefined,
  cpu: string | undefined,
  extra: Partial<NodeExtra> = {},
): V1Node {
  const labels: Record<string, string> = { 'kubernetes.io/hostname': name, ...(extra.labels ?? {}) };
  if (zone !== undefined) labels['topology.kubernetes.io/zone'] = zone;
  return {
    metadata: { name, labels },
    status: {
      ...(cpu === undefined ? {} : { allocatable: { cpu, memory: '8Gi' } }),
      conditions:
        extra.ready === undefined
          ? [{ type: 'Ready', status: 'True' }]
          : extra.ready === null
            ? []
            : [{ type: 'Ready', status: extra.ready }],
    },
  };
}

interface NodeExtra {
  labels: Record<string, string>;
  /** Status of the Ready condition; null for no condition. */
  ready: string | null;
}

describe('endpointslice hints', () => {
  describe('hintModeOf', () => {
    const cases: {
      name: string;
      annotations?: Record<string, string>;
      trafficDistribution?: string;
      want: HintMode;
    }[] = [
      { name: 'nothing set', want: 'none' },
      { name: 'topology-mode Auto', annotations: { [TOPOLOGY_MODE_ANNOTATION]: 'Auto' }, want: 'auto' },
      { name: 'topology-mode auto', annotations: { [TOPOLOGY_MODE_ANNOTATION]: 'auto' }, want: 'auto' },
      { name: 'topology-mode AUTO', annotations: { [TOPOLOGY_MODE_ANNOTATION]: 'AUTO' }, want: 'none' },
      {
        name: 'deprecated annotation Auto',
        annotations: { [DEPRECATED_TOPOLOGY_HINTS_ANNOTATION]: 'Auto' },
        want: 'auto',
      },
      {
        name: 'deprecated annotation auto',
        annotations: { [DEPRECATED_TOPOLOGY_HINTS_ANNOTATION]: 'auto' },
        want: 'auto',
      },
      {
        name: 'topology-mode Disabled wins over deprecated Auto',
        annotations: {
          [TOPOLOGY_MODE_ANNOTATION]: 'Disabled',
          [DEPRECATED_TOPOLOGY_HINTS_ANNOTATION]: 'Auto',
        },
        want: 'none',
      },
      {
        name: 'topology-mode Auto wins over deprecated Disabled',
        annotations: {
          [TOPOLOGY_MODE_ANNOTATION]: 'Auto',
          [DEPRECATED_TOPOLOGY_HINTS_ANNOTATION]: 'Disabled',
        },
        want: 'auto',
      },
      { name: 'PreferClose', trafficDistribution: 'PreferClose', want: 'zone' },
      { name: 'PreferSameZone', trafficDistribution: 'PreferSameZone', want: 'zone' },
      { name: 'PreferSameNode', trafficDistribution: 'PreferSameNode', want: 'node' },
      { name: 'unknown trafficDistribution', trafficDistribution: 'PreferFar', want: 'none' },
      {
        name: 'Auto wins over trafficDistribution',
        annotations: { [TOPOLOGY_MODE_ANNOTATION]: 'Auto' },
        trafficDistribution: 'PreferSameNode',
        want: 'auto',
      },
      {
        name: 'topology-mode other than Auto leaves trafficDistribution',
        annotations: { [TOPOLOGY_MODE_ANNOTATION]: 'Disabled' },
        trafficDistribution: 'PreferClose',
        want: 'zone',
      },
    ];
    for (const c of cases) {
      it(`${c.name} -> ${c.want}`, () => {
        const service: V1Service = {
          metadata: { name: 's', namespace: 'n', ...(c.annotations ? { annotations: c.annotations } : {}) },
          spec: {
            selector: { app: 'a' },
            ...(c.trafficDistribution ? { trafficDistribution: c.trafficDistribution } : {}),
          },
        };
        expect(hintModeOf(service)).to.equal(c.want);
      });
    }
  });

  describe('zoneCpuRatios', () => {
    const cases: { name: string; nodes: V1Node[]; want: Record<string, number> | undefined }[] = [
      {
        name: 'equal CPU in two zones',
        nodes: [node('n1', 'a', '4'), node('n2', 'b', '4000m')],
        want: { a: 0.5, b: 0.5 },
      },
      {
        name: 'millicores and decimals',
        nodes: [node('n1', 'a', '3500m'), node('n2', 'b', '0.5')],
        want: { a: 0.875, b: 0.125 },
      },
      {
        name: 'exponents, binary suffixes and nanocores rounded up to millicores',
        nodes: [
          node('n1', 'a', '1e3'),
          node('n2', 'b', '1k'),
          node('n3', 'c', '1Ki'),
          node('n4', 'd', '100n'),
        ],
        // In millicores: 1e6, 1e6, 1024e3 and 1 (rounded up).
        want: { a: 1e6 / 3024001, b: 1e6 / 3024001, c: 1024e3 / 3024001, d: 1 / 3024001 },
      },
      {
        name: 'several nodes per zone add up',
        nodes: [node('n1', 'a', '1'), node('n2', 'a', '1'), node('n3', 'b', '2'), node('n4', 'c', '4')],
        want: { a: 0.25, b: 0.25, c: 0.5 },
      },
      {
        name: 'control-plane and master nodes are excluded, even without zone or CPU',
        nodes: [
          node('n1', 'a', '2'),
          node('n2', 'b', '2'),
          node('cp', 'c', '64', { labels: { 'node-role.kubernetes.io/control-plane': '' } }),
          node('m', undefined, undefined, { labels: { 'node-role.kubernetes.io/master': 'true' } }),
        ],
        want: { a: 0.5, b: 0.5 },
      },
      {
        name: 'nodes not Ready are excluded, even without zone or CPU',
        nodes: [
          node('n1', 'a', '1'),
          node('n2', 'b', '3'),
          node('n3', 'a', '100', { ready: 'False' }),
          node('n4', undefined, undefined, { ready: 'Unknown' }),
          node('n5', 'c', '8', { ready: null }),
        ],
        want: { a: 0.25, b: 0.75 },
      },
      {
        name: 'one zone only',
        nodes: [node('n1', 'a', '2'), node('n2', 'a', '2')],
        want: { a: 1 },
      },
      {
        name: 'a Ready worker without zone',
        nodes: [node('n1', 'a', '2'), node('n2', undefined, '2')],
        want: undefined,
      },
      {
        name: 'a Ready worker with an empty zone',
        nodes: [node('n1', 'a', '2'), node('n2', '', '2')],
        want: undefined,
      },
      {
        name: 'a Ready worker without allocatable CPU',
        nodes: [node('n1', 'a', '2'), node('n2', 'b', undefined)],
        want: undefined,
      },
      {
        name: 'a Ready worker with zero CPU',
        nodes: [node('n1', 'a', '2'), node('n2', 'b', '0')],
        want: undefined,
      },
      {
        name: 'a Ready worker with unparsable CPU',
        nodes: [node('n1', 'a', '2'), node('n2', 'b', 'lots')],
        want: undefined,
      },
      {
        name: 'no eligible node',
        nodes: [node('n1', 'a', '2', { ready: 'False' })],
        want: undefined,
      },
      { name: 'no node', nodes: [], want: undefined },
    ];
    for (const c of cases) {
      it(c.name, () => {
        const got = zoneCpuRatios(c.nodes);
        expect(got === undefined ? undefined : Object.fromEntries(got)).to.deep.equal(c.want);
      });
    }
  });

  describe("mode 'zone'", () => {
    it('hints ready endpoints with a zone to their zone, and no others', () => {
      const result = new TopologyHints().reconcile(
        input({
          mode: 'zone',
          creates: [slice('c', [ep({ zone: 'a' }), ep({ zone: 'b', ready: false }), ep({ node: 'n1' })])],
          updates: [
            slice('u', [ep({ zone: 'b', node: 'n2' }), ep({ zone: 'a', ready: false, hinted: 'a' })]),
          ],
        }),
      );

      expect(hintsOf(result.creates)).to.deep.equal(expected(['a', '-', '-']));
      expect(hintsOf(result.updates)).to.deep.equal(expected(['b', '-']));
      expect(result.events).to.deep.equal([]);
    });

    it('leaves an unchanged slice with the right hints unchanged', () => {
      const cached = frozen(
        slice('x', [ep({ zone: 'a', hinted: 'a' }), ep({ zone: 'b', ready: false }), ep({ node: 'n1' })]),
      );

      const result = new TopologyHints().reconcile(input({ mode: 'zone', unchanged: [cached] }));

      expect(result.updates).to.deep.equal([]);
      expect(result.creates).to.deep.equal([]);
    });

    it('moves an unchanged slice with stale hints to updates as a copy, leaving the original alone', () => {
      const stale = slice('stale', [
        ep({ zone: 'a', hinted: 'b' }),
        ep({ zone: 'b' }),
        ep({ zone: 'a', ready: false, hinted: 'a' }),
        ep({ zone: 'b', hinted: 'b@n9' }),
      ]);
      const before = structuredClone(stale);
      const fine = frozen(slice('fine', [ep({ zone: 'a', hinted: 'a' })]));
      frozen(stale);
      const planned = slice('planned', [ep({ zone: 'c' })]);

      const result = new TopologyHints().reconcile(
        input({ mode: 'zone', updates: [planned], unchanged: [fine, stale] }),
      );

      expect(names(result.updates)).to.deep.equal(['planned', 'stale']);
      expect(result.updates[1]).to.not.equal(stale);
      expect(hintsOf(result.updates)).to.deep.equal(expected(['c'], ['a', 'b', '-', 'b']));
      expect(stale).to.deep.equal(before);
      // Apart from the hints, the copy is the cached slice.
      const { endpoints: _copied, ...copyRest } = result.updates[1];
      const { endpoints: _cached, ...cachedRest } = before;
      expect(copyRest).to.deep.equal(cachedRest);
    });
  });

  describe("mode 'node'", () => {
    it('adds the node to the zone hint of ready endpoints', () => {
      const result = new TopologyHints().reconcile(
        input({
          mode: 'node',
          creates: [
            slice('c', [
              ep({ zone: 'a', node: 'n1' }),
              ep({ node: 'n2' }),
              ep({ zone: 'b' }),
              ep({ zone: 'b', node: 'n3', ready: false }),
              ep(),
            ]),
          ],
        }),
      );

      expect(hintsOf(result.creates)).to.deep.equal(expected(['a@n1', '@n2', 'b', '-', '-']));
    });

    it('moves unchanged slices lacking node hints and keeps those already right', () => {
      const right = frozen(slice('right', [ep({ zone: 'a', node: 'n1', hinted: 'a@n1' })]));
      const zoneOnly = frozen(slice('zone-only', [ep({ zone: 'a', node: 'n1', hinted: 'a' })]));

      const result = new TopologyHints().reconcile(input({ mode: 'node', unchanged: [right, zoneOnly] }));

      expect(names(result.updates)).to.deep.equal(['zone-only']);
      expect(hintsOf(result.updates)).to.deep.equal(expected(['a@n1']));
    });
  });

  describe("mode 'none'", () => {
    it('strips every hint and moves only the unchanged slices holding hints', () => {
      const hinted = slice('hinted', [ep({ zone: 'a' }), ep({ zone: 'b', hinted: 'b' })]);
      const before = structuredClone(hinted);
      frozen(hinted);
      const bare = frozen(slice('bare', [ep({ zone: 'a' }), ep({ zone: 'a', ready: false })]));

      const result = new TopologyHints().reconcile(
        input({
          mode: 'none',
          creates: [slice('c', [ep({ zone: 'a', hinted: 'a' })])],
          updates: [slice('u', [ep({ zone: 'b', hinted: 'a@n1' }), ep({ zone: 'b' })])],
          unchanged: [bare, hinted],
        }),
      );

      expect(hintsOf(result.creates)).to.deep.equal(expected(['-']));
      expect(names(result.updates)).to.deep.equal(['u', 'hinted']);
      expect(hintsOf(result.updates)).to.deep.equal(expected(['-', '-'], ['-', '-']));
      expect(result.updates[1]).to.not.equal(hinted);
      expect(hinted).to.deep.equal(before);
      expect(result.events).to.deep.equal([]);
    });
  });

  describe("mode 'auto'", () => {
    const disabledCases: {
      name: string;
      cpuRatios: Map<string, number> | undefined;
      endpoints: V1Endpoint[];
      why: string;
    }[] = [
      {
        name: 'more zones than ready endpoints',
        cpuRatios: ratios({ a: 0.4, b: 0.3, c: 0.3 }),
        endpoints: [...inZones('a', 'b'), ep({ zone: 'c', ready: false })],
        why: 'insufficient number of endpoints (2 endpoints, 3 zones)',
      },
      {
        name: 'insufficient node information',
        cpuRatios: undefined,
        endpoints: inZones('a', 'b', 'a', 'b'),
        why: 'insufficient Node information: allocatable CPU or zone not specified on one or more ready Nodes',
      },
      {
        name: 'nodes in one zone only',
        cpuRatios: ratios({ a: 1 }),
        endpoints: inZones('a', 'a'),
        why: 'ready Nodes are in fewer than 2 zones',
      },
      {
        name: 'minimum allocations exceeding the endpoints',
        // desired 1.5 each, minimum ceil(1.25) = 2 each: 4 > 3.
        cpuRatios: ratios({ a: 0.5, b: 0.5 }),
        endpoints: inZones('a', 'a', 'b'),
        why:
          'unable to allocate the minimum number of endpoints to each zone without exceeding the overload ' +
          'threshold (3 endpoints, 2 zones)',
      },
      {
        name: 'a ready endpoint without zone',
        cpuRatios: EQUAL_AB,
        endpoints: [...inZones('a', 'b', 'a'), ep({ node: 'n1' })],
        why: 'one or more ready endpoints have no zone',
      },
    ];
    for (const c of disabledCases) {
      it(`is disabled, hints stripped, with a Warning: ${c.name}`, () => {
        // Not ready, so not counted, but its hints must go.
        const cached = slice('cached', [
          ep({ zone: 'a', ready: false, hinted: 'a' }),
          ep({ zone: 'b', ready: false, hinted: 'b' }),
        ]);
        const before = structuredClone(cached);
        frozen(cached);

        const result = new TopologyHints().reconcile(
          input({
            mode: 'auto',
            cpuRatios: c.cpuRatios,
            creates: [slice('c', c.endpoints)],
            unchanged: [cached],
          }),
        );

        expect(hintsOf(result.creates)).to.deep.equal([c.endpoints.map(() => undefined)]);
        expect(names(result.updates)).to.deep.equal(['cached']);
        expect(hintsOf(result.updates)).to.deep.equal(expected(['-', '-']));
        expect(cached).to.deep.equal(before);
        expect(result.events).to.deep.equal([
          {
            type: 'Warning',
            reason: 'TopologyAwareHintsDisabled',
            message: `Topology Aware Hints has been disabled: ${c.why}, addressType: IPv4`,
          },
        ]);
      });
    }

    it('with 3 zones and 2 endpoints: no hints anywhere, one Warning', () => {
      const cached = frozen(slice('cached', hintedAs(['a', 'a'])));

      const result = new TopologyHints().reconcile(
        input({
          mode: 'auto',
          cpuRatios: ratios({ a: 0.4, b: 0.3, c: 0.3 }),
          creates: [slice('c', [ep({ zone: 'b', hinted: 'b' })])],
          unchanged: [cached],
        }),
      );

      expect(hintsOf(result.creates)).to.deep.equal(expected(['-']));
      expect(names(result.updates)).to.deep.equal(['cached']);
      expect(hintsOf(result.updates)).to.deep.equal(expected(['-']));
      expect(result.events).to.deep.equal([
        {
          type: 'Warning',
          reason: 'TopologyAwareHintsDisabled',
          message:
            'Topology Aware Hints has been disabled: insufficient number of endpoints (2 endpoints, 3 zones), addressType: IPv4',
        },
      ]);
    });

    it('warns once per reason: a second sync with the same reason records no Event', () => {
      const hints = new TopologyHints();
      const call = () =>
        hints.reconcile(
          input({
            mode: 'auto',
            cpuRatios: ratios({ a: 0.4, b: 0.3, c: 0.3 }),
            creates: [slice('c', [ep({ zone: 'b' }), ep({ zone: 'a' })])],
          }),
        );
      expect(call().events.map((e) => e.reason)).to.deep.equal(['TopologyAwareHintsDisabled']);
      expect(call().events).to.deep.equal([]);
    });

    const allocationCases: {
      name: string;
      cpuRatios: Map<string, number>;
      creates: string[][];
      updates?: string[][];
      want: { creates: string[][]; updates?: string[][] };
    }[] = [
      {
        name: '2 zones, equal CPU, 4 endpoints all in zone a: the first 2 go to zone b',
        cpuRatios: EQUAL_AB,
        creates: [['a', 'a', 'a', 'a']],
        want: { creates: [['b', 'b', 'a', 'a']] },
      },
      {
        name: '2 zones, equal CPU, already balanced: own zones',
        cpuRatios: EQUAL_AB,
        creates: [['a', 'b', 'b', 'a']],
        want: { creates: [['a', 'b', 'b', 'a']] },
      },
      {
        name: 'zones a:b CPU 2:1, 6 endpoints 2 in a and 4 in b: 2 of b go to a',
        cpuRatios: ratios({ a: 2 / 3, b: 1 / 3 }),
        creates: [['a', 'b', 'b', 'b', 'b', 'a']],
        want: { creates: [['a', 'a', 'a', 'b', 'b', 'a']] },
      },
      {
        name: 'zones a:b CPU 2:1 over two slices: creates first, then updates, endpoints in order',
        cpuRatios: ratios({ a: 2 / 3, b: 1 / 3 }),
        creates: [['a', 'b']],
        updates: [['a', 'b', 'b', 'b']],
        want: { creates: [['a', 'a']], updates: [['a', 'a', 'b', 'b']] },
      },
      {
        name: 'zones a:b:c CPU 2:1:1, 12 endpoints 4/4/4: b and c each give one to a',
        cpuRatios: ratios({ a: 0.5, b: 0.25, c: 0.25 }),
        creates: [
          ['c', 'c', 'c', 'c'],
          ['b', 'b', 'b', 'b'],
          ['a', 'a', 'a', 'a'],
        ],
        want: {
          creates: [
            ['a', 'c', 'c', 'c'],
            ['a', 'b', 'b', 'b'],
            ['a', 'a', 'a', 'a'],
          ],
        },
      },
      {
        name: 'endpoints in a zone without nodes keep their own zone (upstream)',
        cpuRatios: EQUAL_AB,
        creates: [['a', 'b', 'x', 'a']],
        want: { creates: [['a', 'b', 'x', 'a']] },
      },
    ];
    for (const c of allocationCases) {
      it(c.name, () => {
        const result = new TopologyHints().reconcile(
          input({
            mode: 'auto',
            cpuRatios: c.cpuRatios,
            creates: c.creates.map((zones, i) => slice(`c${i}`, inZones(...zones))),
            updates: (c.updates ?? []).map((zones, i) => slice(`u${i}`, inZones(...zones))),
          }),
        );

        expect(hintsOf(result.creates)).to.deep.equal(expected(...c.want.creates));
        expect(hintsOf(result.updates)).to.deep.equal(expected(...(c.want.updates ?? [])));
        expect(result.events).to.deep.equal([ENABLED]);
      });
    }

    it('gives not-ready endpoints no hints and does not count them', () => {
      const result = new TopologyHints().reconcile(
        input({
          mode: 'auto',
          cpuRatios: EQUAL_AB,
          creates: [
            slice('c', [
              ...inZones('a', 'a'),
              ep({ zone: 'a', ready: false, hinted: 'a' }),
              ep({ ready: false }),
              ...inZones('a', 'a'),
            ]),
          ],
        }),
      );

      expect(hintsOf(result.creates)).to.deep.equal(expected(['b', 'b', '-', '-', 'a', 'a']));
    });

    it('keeps valid hints of unchanged slices, counts them, and redoes only the invalid ones', () => {
      // Valid: zone b's two endpoints hinted for a and b. Invalid: a ready endpoint without hints,
      // a hint for a zone without nodes, two zones in one hint.
      const valid = frozen(slice('valid', hintedAs(['b', 'a'], ['b', 'b'])));
      const missing = slice('missing', [ep({ zone: 'a', hinted: 'a' }), ep({ zone: 'a' })]);
      const unknownZone = slice('unknown-zone', hintedAs(['b', 'x']));
      const twoZones = slice('two-zones', [ep({ zone: 'b', hinted: 'b' })]);
      twoZones.endpoints![0].hints = { forZones: [{ name: 'a' }, { name: 'b' }] };
      const before = structuredClone([missing, unknownZone, twoZones]);
      frozen([missing, unknownZone, twoZones]);

      const result = new TopologyHints().reconcile(
        input({
          mode: 'auto',
          cpuRatios: EQUAL_AB,
          creates: [slice('c', inZones('a'))],
          unchanged: [valid, missing, unknownZone, twoZones],
        }),
      );

      // 7 ready endpoints: desired 3.5 each, minimum 3, maximum 4. Kept: a 1, b 1. Own zones: a 4,
      // b 3 (7 hints). No zone is 0.5 or more away from desired on both sides, so nothing moves.
      expect(names(result.updates)).to.deep.equal(['missing', 'unknown-zone', 'two-zones']);
      expect(hintsOf(result.creates)).to.deep.equal(expected(['a']));
      expect(hintsOf(result.updates)).to.deep.equal(expected(['a', 'a'], ['b'], ['b']));
      expect([missing, unknownZone, twoZones]).to.deep.equal(before);
    });

    it('redoes an unchanged slice whose kept hints would push a zone over its maximum', () => {
      // 4 ready endpoints, equal CPU: minimum 2, maximum 2 per zone.
      const first = frozen(slice('first', hintedAs(['a', 'a'], ['a', 'a'])));
      const second = frozen(slice('second', hintedAs(['a', 'a'], ['b', 'b'])));

      const result = new TopologyHints().reconcile(
        input({ mode: 'auto', cpuRatios: EQUAL_AB, unchanged: [first, second] }),
      );

      expect(names(result.updates)).to.deep.equal(['second']);
      // Counted: a 2 (first) + own zones of second: a 3, b 1 -> one a goes to b.
      expect(hintsOf(result.updates)).to.deep.equal(expected(['b', 'b']));
    });

    it('costs no write in the steady state: its own output, cached, stays unchanged', () => {
      const hints = new TopologyHints();
      const first = hints.reconcile(
        input({
          mode: 'auto',
          cpuRatios: ratios({ a: 2 / 3, b: 1 / 3 }),
          creates: [slice('c', inZones('b', 'b', 'b', 'b', 'a', 'a'))],
        }),
      );
      expect(first.events).to.deep.equal([ENABLED]);

      const second = hints.reconcile(
        input({
          mode: 'auto',
          cpuRatios: ratios({ a: 2 / 3, b: 1 / 3 }),
          unchanged: [frozen(structuredClone(first.creates[0]))],
        }),
      );

      expect(second).to.deep.equal({ creates: [], updates: [], events: [] });
    });

    it('emits Enabled once, not again on a second identical call', () => {
      const hints = new TopologyHints();
      const make = (): HintsInput =>
        input({
          mode: 'auto',
          cpuRatios: EQUAL_AB,
          creates: [slice('c', inZones('a', 'a', 'a', 'a'))],
          updates: [slice('u', inZones('b', 'b'))],
        });

      const first = hints.reconcile(make());
      const second = hints.reconcile(make());

      expect(first.events).to.deep.equal([ENABLED]);
      expect(second.events).to.deep.equal([]);
      expect(hintsOf(second.creates)).to.deep.equal(hintsOf(first.creates));
      expect(hintsOf(second.updates)).to.deep.equal(hintsOf(first.updates));
    });

    it('keeps the state per address type and forgets it with the Service', () => {
      const hints = new TopologyHints();
      const make = (o: Partial<HintsInput> = {}): HintsInput =>
        input({ mode: 'auto', cpuRatios: EQUAL_AB, creates: [slice('c', inZones('a', 'b'))], ...o });

      expect(hints.reconcile(make()).events).to.deep.equal([ENABLED]);
      expect(hints.reconcile(make({ addressType: 'IPv6' })).events).to.deep.equal([
        { ...ENABLED, message: 'Topology Aware Hints has been enabled, addressType: IPv6' },
      ]);
      expect(hints.reconcile(make({ serviceKey: 'n/other' })).events).to.deep.equal([ENABLED]);
      expect(hints.reconcile(make()).events).to.deep.equal([]);

      hints.forget('n/s');

      expect(hints.reconcile(make({ mode: 'none' })).events).to.deep.equal([]);
      expect(hints.reconcile(make()).events).to.deep.equal([ENABLED]);
      expect(hints.reconcile(make({ serviceKey: 'n/other' })).events).to.deep.equal([]);
    });

    it('emits Disabled once when leaving Auto after hints were populated', () => {
      const hints = new TopologyHints();
      const populated = hints.reconcile(
        input({ mode: 'auto', cpuRatios: EQUAL_AB, creates: [slice('c', inZones('a', 'a'))] }),
      );
      expect(hintsOf(populated.creates)).to.deep.equal(expected(['b', 'a']));
      const cached = frozen(structuredClone(populated.creates[0]));

      const off = hints.reconcile(input({ mode: 'none', unchanged: [cached] }));
      const again = hints.reconcile(input({ mode: 'none', unchanged: [cached] }));

      expect(off.events).to.deep.equal([
        {
          type: 'Warning',
          reason: 'TopologyAwareHintsDisabled',
          message:
            'Topology Aware Hints has been disabled: the Service no longer asks for Auto topology mode, addressType: IPv4',
        },
      ]);
      expect(hintsOf(off.updates)).to.deep.equal(expected(['-', '-']));
      expect(again.events).to.deep.equal([]);
    });

    it('emits Disabled when leaving Auto for trafficDistribution, which then sets the hints', () => {
      const hints = new TopologyHints();
      const populated = hints.reconcile(
        input({ mode: 'auto', cpuRatios: EQUAL_AB, creates: [slice('c', inZones('a', 'a'))] }),
      );
      const cached = frozen(structuredClone(populated.creates[0]));

      const zone = hints.reconcile(input({ mode: 'zone', unchanged: [cached] }));

      expect(zone.events.map((e) => [e.type, e.reason])).to.deep.equal([
        ['Warning', 'TopologyAwareHintsDisabled'],
      ]);
      expect(zone.events[0].message).to.equal(
        'Topology Aware Hints has been disabled: the Service no longer asks for Auto topology mode, ' +
          'its trafficDistribution applies, addressType: IPv4',
      );
      expect(hintsOf(zone.updates)).to.deep.equal(expected(['a', 'a']));
    });

    it('emits Enabled again after Auto hints were disabled for lack of endpoints', () => {
      const hints = new TopologyHints();
      const run = (...zones: string[]): HintsResult =>
        hints.reconcile(
          input({ mode: 'auto', cpuRatios: EQUAL_AB, creates: [slice('c', inZones(...zones))] }),
        );

      expect(run('a', 'b').events).to.deep.equal([ENABLED]);
      expect(run('a').events.map((e) => e.reason)).to.deep.equal(['TopologyAwareHintsDisabled']);
      expect(run('a', 'b').events).to.deep.equal([ENABLED]);
    });

    it('is deterministic: the same input gives the same output, whatever the order of the CPU map', () => {
      const make = (cpuRatios: Map<string, number>): HintsInput => {
        nextIP = 100;
        return input({
          mode: 'auto',
          cpuRatios,
          creates: [slice('c0', inZones('c', 'c', 'c', 'c', 'c', 'b')), slice('c1', inZones('a', 'c', 'c'))],
          updates: [slice('u0', [...inZones('c', 'b'), ep({ zone: 'a', ready: false }), ...inZones('c')])],
          unchanged: [frozen(slice('k', hintedAs(['c', 'a'], ['c', 'b'], ['b', 'c'])))],
        });
      };
      const forward = ratios({ a: 1 / 3, b: 1 / 3, c: 1 / 3 });
      const backward = ratios({ c: 1 / 3, b: 1 / 3, a: 1 / 3 });

      const first = new TopologyHints().reconcile(make(forward));
      const second = new TopologyHints().reconcile(make(forward));
      const third = new TopologyHints().reconcile(make(backward));

      expect(second).to.deep.equal(first);
      expect(third).to.deep.equal(first);
      // 15 ready endpoints: desired 5 each, minimum 5, maximum 5. Kept: a 1, b 1, c 1. Own zones
      // bring a to 2, b to 3, c to 10: c gives 3 to a and 2 to b (largest deficit first, ties by
      // name), from its first endpoints in slice order, to receiving zones by name.
      expect(hintsOf(first.creates)).to.deep.equal(expected(['a', 'a', 'a', 'b', 'b', 'b'], ['a', 'c', 'c']));
      expect(hintsOf(first.updates)).to.deep.equal(expected(['c', 'b', '-', 'c']));
    });
  });
});
