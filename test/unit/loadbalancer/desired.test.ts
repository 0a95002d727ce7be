import { expect } from 'chai';
import type { V1Condition, V1Service } from '@kubernetes/client-node';
import { AddressBook } from '../../../controllers/loadbalancer/book.ts';
import {
  type Choice,
  chooseAddresses,
  conditionFor,
  desiredIngress,
  desiredStatus,
  familyPlan,
  inScope,
  requestedAddresses,
  selects,
  statusAddresses,
  statusMatches,
} from '../../../controllers/loadbalancer/desired.ts';
import { type ParsedPool, resolvePools } from '../../../controllers/loadbalancer/pools.ts';
import { sharingProfile } from '../../../controllers/loadbalancer/sharing.ts';
import type { LoadBalancerIPPool } from '../../../controllers/loadbalancer/types.ts';
import { pool } from './fixtures.ts';

const CONDITION = 'scm.dev/AddressAssigned';
const NOW = new Date('2026-03-01T12:00:00Z');
const EARLIER = new Date('2026-02-01T00:00:00Z');

interface SvcShape {
  annotations?: Record<string, string>;
  labels?: Record<string, string>;
  spec?: Partial<NonNullable<V1Service['spec']>>;
}

function svc(name: string, shape: SvcShape = {}): V1Service {
  return {
    metadata: {
      name,
      namespace: 'n',
      generation: 1,
      ...(shape.annotations ? { annotations: shape.annotations } : {}),
      ...(shape.labels ? { labels: shape.labels } : {}),
    },
    spec: {
      type: 'LoadBalancer',
      ipFamilies: ['IPv4'],
      ipFamilyPolicy: 'SingleStack',
      ports: [{ port: 80, protocol: 'TCP' }],
      ...shape.spec,
    },
  };
}

/** Pools resolved and a book holding nothing yet. */
function world(pools: LoadBalancerIPPool[]): { pools: ParsedPool[]; book: AddressBook } {
  const parsed = resolvePools(pools);
  const book = new AddressBook();
  book.setPools(parsed);
  return { pools: parsed, book };
}

interface ChooseOptions {
  namespaceLabels?: Record<string, string>;
  reassignOnPoolChange?: boolean;
}

function choose(
  w: { pools: readonly ParsedPool[]; book: AddressBook },
  service: V1Service,
  opts: ChooseOptions = {},
): Choice {
  const key = `n/${service.metadata?.name ?? ''}`;
  return chooseAddresses({
    key,
    service,
    profile: sharingProfile(key, service),
    namespaceLabels: opts.namespaceLabels,
    pools: w.pools,
    book: w.book,
    reassignOnPoolChange: opts.reassignOnPoolChange ?? false,
  });
}

/** Chooses and, as the reconciler does, claims what was chosen (releases on failure). */
function claim(
  w: { pools: readonly ParsedPool[]; book: AddressBook },
  service: V1Service,
  opts: ChooseOptions = {},
): Choice {
  const choice = choose(w, service, opts);
  const key = `n/${service.metadata?.name ?? ''}`;
  if (choice.ok) w.book.assign(choice.addresses, sharingProfile(key, service));
  else w.book.release(key);
  return choice;
}

const ok = (addresses: string[], added = addresses): Choice => ({ ok: true, addresses, added });

describe('LoadBalancer desired: inScope', () => {
  const cases: {
    name: string;
    type: string;
    cls?: string;
    scope: { loadBalancerClass: string; defaultLoadBalancer: boolean };
    want: boolean;
  }[] = [
    {
      name: 'a LoadBalancer without a class, no class configured: ours',
      type: 'LoadBalancer',
      scope: { loadBalancerClass: '', defaultLoadBalancer: false },
      want: true,
    },
    {
      name: 'a LoadBalancer with an empty class, no class configured: ours',
      type: 'LoadBalancer',
      cls: '',
      scope: { loadBalancerClass: '', defaultLoadBalancer: false },
      want: true,
    },
    {
      name: 'a ClusterIP Service: not ours',
      type: 'ClusterIP',
      scope: { loadBalancerClass: '', defaultLoadBalancer: false },
      want: false,
    },
    {
      name: 'a NodePort Service: not ours',
      type: 'NodePort',
      scope: { loadBalancerClass: '', defaultLoadBalancer: true },
      want: false,
    },
    {
      name: "another implementation's class, no class configured: not ours",
      type: 'LoadBalancer',
      cls: 'other.io/lb',
      scope: { loadBalancerClass: '', defaultLoadBalancer: false },
      want: false,
    },
    {
      name: 'our class configured and named: ours',
      type: 'LoadBalancer',
      cls: 'scm.dev/lb',
      scope: { loadBalancerClass: 'scm.dev/lb', defaultLoadBalancer: false },
      want: true,
    },
    {
      name: 'our class configured, another class named: not ours',
      type: 'LoadBalancer',
      cls: 'other.io/lb',
      scope: { loadBalancerClass: 'scm.dev/lb', defaultLoadBalancer: true },
      want: false,
    },
    {
      name: 'our class configured, no class on the Service, not the default: not ours',
      type: 'LoadBalancer',
      scope: { loadBalancerClass: 'scm.dev/lb', defaultLoadBalancer: false },
      want: false,
    },
    {
      name: 'our class configured, no class on the Service, the default: ours',
      type: 'LoadBalancer',
      scope: { loadBalancerClass: 'scm.dev/lb', defaultLoadBalancer: true },
      want: true,
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const s = svc('s', {
        spec: { type: c.type, ...(c.cls !== undefined ? { loadBalancerClass: c.cls } : {}) },
      });
      expect(inScope(s, c.scope)).to.equal(c.want);
    });
  }
});

describe('LoadBalancer desired: requestedAddresses', () => {
  it('nothing requested: an empty list', () => {
    expect(requestedAddresses(svc('s'))).to.deep.equal([]);
  });

  it('spec.loadBalancerIP is read when there is no annotation', () => {
    expect(requestedAddresses(svc('s', { spec: { loadBalancerIP: '192.0.2.5' } }))).to.deep.equal([
      { address: '192.0.2.5', type: 'IPv4' },
    ]);
  });

  it('the annotation wins over spec.loadBalancerIP', () => {
    const s = svc('s', {
      annotations: { 'scm.dev/load-balancer-ips': '192.0.2.6' },
      spec: { loadBalancerIP: '192.0.2.5' },
    });
    expect(requestedAddresses(s)).to.deep.equal([{ address: '192.0.2.6', type: 'IPv4' }]);
  });

  it('the annotation is a comma list, one per family, read canonically', () => {
    const s = svc('s', { annotations: { 'scm.dev/load-balancer-ips': ' 2001:DB8:0::1 , 192.0.2.006 ,' } });
    expect(requestedAddresses(s)).to.deep.equal([
      { address: '2001:db8::1', type: 'IPv6' },
      { address: '192.0.2.6', type: 'IPv4' },
    ]);
  });

  const invalid: { name: string; shape: SvcShape; message: string }[] = [
    {
      name: 'an annotation entry that is no IP is an invalid request',
      shape: { annotations: { 'scm.dev/load-balancer-ips': 'not-an-ip' } },
      message: 'invalid request: scm.dev/load-balancer-ips "not-an-ip" is not an IP address',
    },
    {
      name: 'two addresses of one family are an invalid request',
      shape: { annotations: { 'scm.dev/load-balancer-ips': '192.0.2.1,192.0.2.2' } },
      message:
        'invalid request: scm.dev/load-balancer-ips holds two IPv4 addresses; give at most one per family',
    },
    {
      name: 'a spec.loadBalancerIP that is no IP is an invalid request naming the field',
      shape: { spec: { loadBalancerIP: '192.0.2' } },
      message: 'invalid request: spec.loadBalancerIP "192.0.2" is not an IP address',
    },
  ];
  for (const c of invalid) {
    it(c.name, () => {
      expect(requestedAddresses(svc('s', c.shape))).to.deep.equal({
        ok: false,
        reason: 'InvalidRequest',
        message: c.message,
      });
    });
  }
});

describe('LoadBalancer desired: familyPlan', () => {
  const cases: { name: string; shape: SvcShape; plan: unknown }[] = [
    {
      name: 'SingleStack IPv4: one required IPv4',
      shape: {},
      plan: [{ family: 'IPv4', required: true, requested: undefined }],
    },
    {
      name: 'SingleStack IPv6: one required IPv6',
      shape: { spec: { ipFamilies: ['IPv6'] } },
      plan: [{ family: 'IPv6', required: true, requested: undefined }],
    },
    {
      name: 'no policy and no families: SingleStack IPv4',
      shape: { spec: { ipFamilies: undefined, ipFamilyPolicy: undefined } },
      plan: [{ family: 'IPv4', required: true, requested: undefined }],
    },
    {
      name: 'SingleStack with a requested address: that address',
      shape: { spec: { loadBalancerIP: '192.0.2.3' } },
      plan: [{ family: 'IPv4', required: true, requested: '192.0.2.3' }],
    },
    {
      name: "PreferDualStack: both families, neither required, in the Service's order",
      shape: { spec: { ipFamilyPolicy: 'PreferDualStack', ipFamilies: ['IPv6', 'IPv4'] } },
      plan: [
        { family: 'IPv6', required: false, requested: undefined },
        { family: 'IPv4', required: false, requested: undefined },
      ],
    },
    {
      name: 'PreferDualStack with a requested IPv4: that family required',
      shape: {
        annotations: { 'scm.dev/load-balancer-ips': '192.0.2.3' },
        spec: { ipFamilyPolicy: 'PreferDualStack', ipFamilies: ['IPv4', 'IPv6'] },
      },
      plan: [
        { family: 'IPv4', required: true, requested: '192.0.2.3' },
        { family: 'IPv6', required: false, requested: undefined },
      ],
    },
    {
      name: 'RequireDualStack: both families required',
      shape: { spec: { ipFamilyPolicy: 'RequireDualStack', ipFamilies: ['IPv4', 'IPv6'] } },
      plan: [
        { family: 'IPv4', required: true, requested: undefined },
        { family: 'IPv6', required: true, requested: undefined },
      ],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(familyPlan(svc('s', c.shape))).to.deep.equal(c.plan);
    });
  }

  it('SingleStack asking for two addresses is an invalid request', () => {
    const s = svc('s', { annotations: { 'scm.dev/load-balancer-ips': '192.0.2.1,2001:db8::1' } });
    expect(familyPlan(s)).to.deep.equal({
      ok: false,
      reason: 'InvalidRequest',
      message: 'invalid request: a SingleStack Service asks for one address per family, got two',
    });
  });
});

describe('LoadBalancer desired: selects', () => {
  const [byService] = resolvePools([
    pool('p', ['192.0.2.0/30'], { serviceSelector: { matchLabels: { tier: 'web' } } }),
  ]);
  const [byNamespace] = resolvePools([
    pool('p', ['192.0.2.0/30'], {
      namespaceSelector: { matchExpressions: [{ key: 'env', operator: 'In', values: ['prod', 'stage'] }] },
    }),
  ]);
  const [everyone] = resolvePools([pool('p', ['192.0.2.0/30'])]);

  it('a pool without selectors selects every Service in every namespace', () => {
    expect(selects(everyone, svc('s'), undefined)).to.equal(true);
  });

  it("a service selector matches the Service's labels", () => {
    expect(selects(byService, svc('s', { labels: { tier: 'web' } }), undefined)).to.equal(true);
    expect(selects(byService, svc('s', { labels: { tier: 'db' } }), undefined)).to.equal(false);
    expect(selects(byService, svc('s'), undefined)).to.equal(false);
  });

  it("a namespace selector matches the namespace's labels", () => {
    expect(selects(byNamespace, svc('s'), { env: 'stage' })).to.equal(true);
    expect(selects(byNamespace, svc('s'), { env: 'dev' })).to.equal(false);
    expect(selects(byNamespace, svc('s'), undefined)).to.equal(false);
  });
});

describe('LoadBalancer desired: chooseAddresses, one family', () => {
  it('pool 192.0.2.0/30: the first Service gets 192.0.2.0 (lowest free)', () => {
    const w = world([pool('a', ['192.0.2.0/30'])]);
    expect(choose(w, svc('s'))).to.deep.equal(ok(['192.0.2.0']));
  });

  it('pool 192.0.2.0/30 with avoidBuggyIPs: 192.0.2.1', () => {
    const w = world([pool('a', ['192.0.2.0/30'], { avoidBuggyIPs: true })]);
    expect(choose(w, svc('s'))).to.deep.equal(ok(['192.0.2.1']));
  });

  it('avoidBuggyIPs skips .255 as well: 192.0.2.254/31 holds one usable address', () => {
    const w = world([pool('a', ['192.0.2.254/31'], { avoidBuggyIPs: true })]);
    expect(claim(w, svc('s1'))).to.deep.equal(ok(['192.0.2.254']));
    expect(choose(w, svc('s2'))).to.include({ ok: false, reason: 'PoolExhausted' });
  });

  it('Services get the lowest free address in turn, and the lowest free again after a release', () => {
    const w = world([pool('a', ['192.0.2.0/29'])]);
    expect(['s0', 's1', 's2'].map((n) => claim(w, svc(n)))).to.deep.equal([
      ok(['192.0.2.0']),
      ok(['192.0.2.1']),
      ok(['192.0.2.2']),
    ]);
    w.book.release('n/s1');
    expect(choose(w, svc('s3'))).to.deep.equal(ok(['192.0.2.1']));
  });

  it('pool of 2 with 3 Services: the third fails with PoolExhausted, "pool exhausted"', () => {
    const w = world([pool('two', ['192.0.2.0/31'])]);
    expect(claim(w, svc('s1'))).to.deep.equal(ok(['192.0.2.0']));
    expect(claim(w, svc('s2'))).to.deep.equal(ok(['192.0.2.1']));
    const third = claim(w, svc('s3'));
    expect(third).to.deep.equal({
      ok: false,
      reason: 'PoolExhausted',
      message: 'pool exhausted: no free IPv4 address in two (2 of 2 in use)',
    });
    expect(!third.ok && third.message.startsWith('pool exhausted')).to.equal(true);
    // Deleting one Service lets the third get the freed address.
    w.book.release('n/s1');
    expect(claim(w, svc('s3'))).to.deep.equal(ok(['192.0.2.0']));
  });

  it('the choice is deterministic: the same Services and pools give the same addresses in a fresh book', () => {
    const run = (): Choice[] => {
      const w = world([pool('b', ['198.51.100.0/30']), pool('a', ['192.0.2.0/31'])]);
      return ['s0', 's1', 's2', 's3'].map((n) => claim(w, svc(n)));
    };
    const first = run();
    expect(first).to.deep.equal([
      ok(['192.0.2.0']),
      ok(['192.0.2.1']),
      ok(['198.51.100.0']),
      ok(['198.51.100.1']),
    ]);
    expect(run()).to.deep.equal(first);
  });

  it('no pool at all: NoPool', () => {
    expect(choose(world([]), svc('s'))).to.deep.equal({
      ok: false,
      reason: 'NoPool',
      message: 'no pool: no usable LoadBalancerIPPool with IPv4 addresses selects this Service',
    });
  });

  it('only an IPv6 pool for a SingleStack IPv4 Service: NoPool', () => {
    expect(choose(world([pool('v6', ['2001:db8::/120'])]), svc('s'))).to.include({
      ok: false,
      reason: 'NoPool',
    });
  });

  it('disabled pools and pools in conflict hand out nothing', () => {
    const w = world([
      pool('off', ['192.0.2.0/30'], { disabled: true }, '2026-01-01T00:00:00Z'),
      pool('young', ['192.0.2.0/31'], {}, '2026-02-01T00:00:00Z'),
    ]);
    expect(choose(w, svc('s'))).to.include({ ok: false, reason: 'NoPool' });
  });

  it('pools are tried by priority, then name: the lowest priority first', () => {
    const w = world([
      pool('a', ['192.0.2.0/32']),
      pool('b', ['198.51.100.0/32'], { priority: 2 }),
      pool('c', ['203.0.113.0/32'], { priority: 1 }),
    ]);
    expect(['s0', 's1', 's2', 's3'].map((n) => claim(w, svc(n)))).to.deep.equal([
      ok(['203.0.113.0']),
      ok(['198.51.100.0']),
      ok(['192.0.2.0']),
      {
        ok: false,
        reason: 'PoolExhausted',
        message:
          'pool exhausted: no free IPv4 address in c (1 of 1 in use), b (1 of 1 in use), a (1 of 1 in use)',
      },
    ]);
  });

  it('pools of equal priority are tried by name', () => {
    const w = world([pool('zeta', ['198.51.100.0/32']), pool('alpha', ['192.0.2.0/32'])]);
    expect(claim(w, svc('s0'))).to.deep.equal(ok(['192.0.2.0']));
    expect(claim(w, svc('s1'))).to.deep.equal(ok(['198.51.100.0']));
  });

  it('a service selector: only Services with the labels get the pool', () => {
    const w = world([
      pool('web', ['192.0.2.0/30'], { serviceSelector: { matchLabels: { tier: 'web' } }, priority: 1 }),
      pool('rest', ['198.51.100.0/30']),
    ]);
    expect(choose(w, svc('web', { labels: { tier: 'web' } }))).to.deep.equal(ok(['192.0.2.0']));
    expect(choose(w, svc('db', { labels: { tier: 'db' } }))).to.deep.equal(ok(['198.51.100.0']));
  });

  it('a namespace selector: only Services in matching namespaces get the pool', () => {
    const w = world([
      pool('prod', ['192.0.2.0/30'], { namespaceSelector: { matchLabels: { env: 'prod' } } }),
    ]);
    expect(choose(w, svc('s'), { namespaceLabels: { env: 'prod' } })).to.deep.equal(ok(['192.0.2.0']));
    expect(choose(w, svc('s'), { namespaceLabels: { env: 'dev' } })).to.include({
      ok: false,
      reason: 'NoPool',
    });
    expect(choose(w, svc('s'))).to.include({ ok: false, reason: 'NoPool' });
  });
});

describe('LoadBalancer desired: chooseAddresses, pinned pools', () => {
  const pools = (): LoadBalancerIPPool[] => [
    pool('auto', ['192.0.2.0/30']),
    pool('manual', ['198.51.100.0/30'], { autoAssign: false }),
  ];

  it('an autoAssign false pool is not used for a Service that does not pin it', () => {
    const w = world([pool('manual', ['198.51.100.0/30'], { autoAssign: false })]);
    expect(choose(w, svc('s'))).to.include({ ok: false, reason: 'NoPool' });
    expect(choose(world(pools()), svc('s'))).to.deep.equal(ok(['192.0.2.0']));
  });

  it('an autoAssign false pool is used when pinned', () => {
    const s = svc('s', { annotations: { 'scm.dev/address-pool': 'manual' } });
    expect(choose(world(pools()), s)).to.deep.equal(ok(['198.51.100.0']));
  });

  it('a pinned pool is the only one tried', () => {
    const w = world([pool('a', ['192.0.2.0/32']), pool('b', ['198.51.100.0/32'])]);
    const pinned = (n: string): V1Service => svc(n, { annotations: { 'scm.dev/address-pool': 'b' } });
    expect(claim(w, pinned('s1'))).to.deep.equal(ok(['198.51.100.0']));
    expect(claim(w, pinned('s2'))).to.deep.equal({
      ok: false,
      reason: 'PoolExhausted',
      message: 'pool exhausted: no free IPv4 address in b (1 of 1 in use)',
    });
  });

  it('a pinned pool that does not exist: NoPool naming it', () => {
    const s = svc('s', { annotations: { 'scm.dev/address-pool': 'gone' } });
    expect(choose(world(pools()), s)).to.deep.equal({
      ok: false,
      reason: 'NoPool',
      message: 'no pool: the pool gone named in scm.dev/address-pool does not exist',
    });
  });

  it('a pinned pool that does not select the Service: NoPool', () => {
    const w = world([pool('web', ['192.0.2.0/30'], { serviceSelector: { matchLabels: { tier: 'web' } } })]);
    const s = svc('s', { annotations: { 'scm.dev/address-pool': 'web' } });
    expect(choose(w, s)).to.deep.equal({
      ok: false,
      reason: 'NoPool',
      message: 'no pool: the pool web named in scm.dev/address-pool does not select this Service',
    });
  });

  it('a pinned pool that is disabled: PoolUnavailable', () => {
    const w = world([pool('off', ['192.0.2.0/30'], { disabled: true })]);
    const s = svc('s', { annotations: { 'scm.dev/address-pool': 'off' } });
    expect(choose(w, s)).to.deep.equal({
      ok: false,
      reason: 'PoolUnavailable',
      message: 'pool unavailable: off is disabled',
    });
  });

  it('a pinned pool in conflict: PoolUnavailable naming the older pool', () => {
    const w = world([
      pool('old', ['192.0.2.0/30'], {}, '2026-01-01T00:00:00Z'),
      pool('young', ['192.0.2.0/31'], {}, '2026-02-01T00:00:00Z'),
    ]);
    const s = svc('s', { annotations: { 'scm.dev/address-pool': 'young' } });
    expect(choose(w, s)).to.deep.equal({
      ok: false,
      reason: 'PoolUnavailable',
      message: 'pool unavailable: young overlaps pool old and is skipped',
    });
  });
});

describe('LoadBalancer desired: chooseAddresses, requested addresses', () => {
  const ask = (name: string, ips: string, extra: SvcShape = {}): V1Service =>
    svc(name, { ...extra, annotations: { 'scm.dev/load-balancer-ips': ips, ...extra.annotations } });

  it('a requested IP free in a pool is granted', () => {
    expect(choose(world([pool('a', ['192.0.2.0/30'])]), ask('s', '192.0.2.2'))).to.deep.equal(
      ok(['192.0.2.2']),
    );
  });

  it('a requested IP in an autoAssign false pool is granted', () => {
    const w = world([pool('manual', ['192.0.2.0/30'], { autoAssign: false })]);
    expect(choose(w, ask('s', '192.0.2.3'))).to.deep.equal(ok(['192.0.2.3']));
  });

  it('a requested .0 in an avoidBuggyIPs pool is granted: the skip is for automatic choice only', () => {
    const w = world([pool('a', ['192.0.2.0/30'], { avoidBuggyIPs: true })]);
    expect(choose(w, ask('s', '192.0.2.0'))).to.deep.equal(ok(['192.0.2.0']));
  });

  it('spec.loadBalancerIP is honoured like the annotation', () => {
    const w = world([pool('a', ['192.0.2.0/30'])]);
    expect(choose(w, svc('s', { spec: { loadBalancerIP: '192.0.2.3' } }))).to.deep.equal(ok(['192.0.2.3']));
  });

  it('the annotation wins over spec.loadBalancerIP', () => {
    const w = world([pool('a', ['192.0.2.0/30'])]);
    const s = ask('s', '192.0.2.2', { spec: { loadBalancerIP: '192.0.2.3' } });
    expect(choose(w, s)).to.deep.equal(ok(['192.0.2.2']));
  });

  it('a requested IP outside every pool: RequestedIPNotInPool', () => {
    expect(choose(world([pool('a', ['192.0.2.0/30'])]), ask('s', '198.51.100.1'))).to.deep.equal({
      ok: false,
      reason: 'RequestedIPNotInPool',
      message: 'requested IP not in pool: 198.51.100.1 is not in any pool that selects this Service',
    });
  });

  it('a requested IP in a pool that does not select the Service: RequestedIPNotInPool', () => {
    const w = world([pool('web', ['192.0.2.0/30'], { serviceSelector: { matchLabels: { tier: 'web' } } })]);
    expect(choose(w, ask('s', '192.0.2.1'))).to.include({ ok: false, reason: 'RequestedIPNotInPool' });
  });

  it('a requested IP outside the pinned pool: RequestedIPNotInPool naming it', () => {
    const w = world([pool('a', ['192.0.2.0/30']), pool('b', ['198.51.100.0/30'])]);
    const s = ask('s', '192.0.2.1', { annotations: { 'scm.dev/address-pool': 'b' } });
    expect(choose(w, s)).to.deep.equal({
      ok: false,
      reason: 'RequestedIPNotInPool',
      message: 'requested IP not in pool: 192.0.2.1 is not in any pool named b that selects this Service',
    });
  });

  it('a requested IP held by another Service: RequestedIPInUse', () => {
    const w = world([pool('a', ['192.0.2.0/30'])]);
    expect(claim(w, svc('first'))).to.deep.equal(ok(['192.0.2.0']));
    expect(choose(w, ask('second', '192.0.2.0'))).to.deep.equal({
      ok: false,
      reason: 'RequestedIPInUse',
      message:
        'requested IP already used: 192.0.2.0: n/first holds it and this Service has no scm.dev/allow-shared-ip key',
    });
  });

  it('a requested IP held under the same sharing key with other ports is granted (shared)', () => {
    const w = world([pool('a', ['192.0.2.0/30'])]);
    const key = { 'scm.dev/allow-shared-ip': 'k' };
    expect(claim(w, svc('first', { annotations: key }))).to.deep.equal(ok(['192.0.2.0']));
    const second = ask('second', '192.0.2.0', {
      annotations: key,
      spec: { ports: [{ port: 443, protocol: 'TCP' }] },
    });
    expect(choose(w, second)).to.deep.equal(ok(['192.0.2.0']));
  });

  it('a requested IP held under the same sharing key with a colliding port: SharingIncompatible', () => {
    const w = world([pool('a', ['192.0.2.0/30'])]);
    const key = { 'scm.dev/allow-shared-ip': 'k' };
    claim(w, svc('first', { annotations: key }));
    expect(choose(w, ask('second', '192.0.2.0', { annotations: key }))).to.deep.equal({
      ok: false,
      reason: 'SharingIncompatible',
      message:
        'sharing incompatible: requested IP 192.0.2.0: n/first shares the key but also uses port TCP/80',
    });
  });

  it('an invalid annotation: InvalidRequest, nothing chosen', () => {
    expect(choose(world([pool('a', ['192.0.2.0/30'])]), ask('s', 'bogus'))).to.deep.equal({
      ok: false,
      reason: 'InvalidRequest',
      message: 'invalid request: scm.dev/load-balancer-ips "bogus" is not an IP address',
    });
  });

  it('changing the requested IP moves the Service to it', () => {
    const w = world([pool('a', ['192.0.2.0/30'])]);
    expect(claim(w, svc('s'))).to.deep.equal(ok(['192.0.2.0']));
    expect(claim(w, ask('s', '192.0.2.3'))).to.deep.equal(ok(['192.0.2.3']));
    expect(w.book.holdersOf('192.0.2.0').size).to.equal(0);
  });
});

describe('LoadBalancer desired: chooseAddresses, held addresses', () => {
  it('a held address is kept on re-choice: no move, nothing added', () => {
    const w = world([pool('a', ['192.0.2.0/30'])]);
    w.book.assign(['192.0.2.2'], sharingProfile('n/s', svc('s')));
    expect(choose(w, svc('s'))).to.deep.equal(ok(['192.0.2.2'], []));
  });

  it('a held address stays even when a lower one is free or a higher-priority pool appears', () => {
    const w = world([pool('a', ['192.0.2.0/30'])]);
    expect(claim(w, svc('s0'))).to.deep.equal(ok(['192.0.2.0']));
    expect(claim(w, svc('s1'))).to.deep.equal(ok(['192.0.2.1']));
    w.book.release('n/s0');
    expect(choose(w, svc('s1'))).to.deep.equal(ok(['192.0.2.1'], []));
    const more = resolvePools([
      pool('a', ['192.0.2.0/30']),
      pool('first', ['198.51.100.0/30'], { priority: 0 }),
    ]);
    w.book.setPools(more);
    expect(choose({ pools: more, book: w.book }, svc('s1'))).to.deep.equal(ok(['192.0.2.1'], []));
  });

  it('its pool deleted: the address is kept, with PoolChanged', () => {
    const w = world([pool('a', ['192.0.2.0/30'])]);
    expect(claim(w, svc('s'))).to.deep.equal(ok(['192.0.2.0']));
    const after = resolvePools([pool('b', ['198.51.100.0/30'])]);
    w.book.setPools(after);
    expect(choose({ pools: after, book: w.book }, svc('s'))).to.deep.equal({
      ok: true,
      addresses: ['192.0.2.0'],
      added: [],
      poolChanged:
        '192.0.2.0 is no longer in a pool that selects this Service; it keeps the address until the Service changes (or --reassign-on-pool-change is set)',
    });
  });

  it('its pool deleted with --reassign-on-pool-change: moved to a pool that offers one', () => {
    const w = world([pool('a', ['192.0.2.0/30'])]);
    claim(w, svc('s'));
    const after = resolvePools([pool('b', ['198.51.100.0/30'])]);
    w.book.setPools(after);
    expect(choose({ pools: after, book: w.book }, svc('s'), { reassignOnPoolChange: true })).to.deep.equal(
      ok(['198.51.100.0']),
    );
  });

  it('its pool shrunk past the address: kept with PoolChanged', () => {
    const w = world([pool('a', ['192.0.2.0/30'])]);
    claim(w, svc('s0'));
    claim(w, svc('s1'));
    const after = resolvePools([pool('a', ['192.0.2.0/32'])]);
    w.book.setPools(after);
    const again = { pools: after, book: w.book };
    expect(choose(again, svc('s0'))).to.deep.equal(ok(['192.0.2.0'], []));
    expect(choose(again, svc('s1'))).to.include({
      ok: true,
      poolChanged:
        '192.0.2.1 is no longer in a pool that selects this Service; it keeps the address until the Service changes (or --reassign-on-pool-change is set)',
    });
  });

  it('its pool no longer selecting the Service: kept with PoolChanged', () => {
    const w = world([pool('a', ['192.0.2.0/30'])]);
    claim(w, svc('s'));
    const after = resolvePools([
      pool('a', ['192.0.2.0/30'], { serviceSelector: { matchLabels: { tier: 'web' } } }),
    ]);
    w.book.setPools(after);
    const choice = choose({ pools: after, book: w.book }, svc('s'));
    expect(choice.ok && choice.addresses).to.deep.equal(['192.0.2.0']);
    expect(choice.ok && choice.poolChanged !== undefined).to.equal(true);
  });

  it('its pool disabled: kept without a note (Services keep what they have)', () => {
    const w = world([pool('a', ['192.0.2.0/30'])]);
    claim(w, svc('s'));
    const after = resolvePools([pool('a', ['192.0.2.0/30'], { disabled: true })]);
    w.book.setPools(after);
    expect(choose({ pools: after, book: w.book }, svc('s'))).to.deep.equal(ok(['192.0.2.0'], []));
  });

  it('pinning another pool moves the Service into it', () => {
    const w = world([pool('a', ['192.0.2.0/30']), pool('b', ['198.51.100.0/30'])]);
    expect(claim(w, svc('s'))).to.deep.equal(ok(['192.0.2.0']));
    const pinned = svc('s', { annotations: { 'scm.dev/address-pool': 'b' } });
    expect(choose(w, pinned)).to.deep.equal(ok(['198.51.100.0']));
  });
});

describe('LoadBalancer desired: chooseAddresses, dual-stack', () => {
  const both = (): LoadBalancerIPPool[] => [pool('v4', ['192.0.2.0/30']), pool('v6', ['2001:db8::/126'])];
  const dual = (policy: string, families = ['IPv4', 'IPv6']): V1Service =>
    svc('s', { spec: { ipFamilyPolicy: policy, ipFamilies: families } });

  it('SingleStack: only the first family', () => {
    expect(choose(world(both()), svc('s'))).to.deep.equal(ok(['192.0.2.0']));
    expect(choose(world(both()), svc('s', { spec: { ipFamilies: ['IPv6'] } }))).to.deep.equal(
      ok(['2001:db8::']),
    );
  });

  it("PreferDualStack with pools of both families: one address per family, in the Service's order", () => {
    expect(choose(world(both()), dual('PreferDualStack'))).to.deep.equal(ok(['192.0.2.0', '2001:db8::']));
    expect(choose(world(both()), dual('PreferDualStack', ['IPv6', 'IPv4']))).to.deep.equal(
      ok(['2001:db8::', '192.0.2.0']),
    );
  });

  it('PreferDualStack with one pool holding both families: both from it', () => {
    const w = world([pool('mixed', ['192.0.2.0/30', '2001:db8::/126'])]);
    expect(choose(w, dual('PreferDualStack'))).to.deep.equal(ok(['192.0.2.0', '2001:db8::']));
  });

  it('PreferDualStack with only an IPv4 pool: the IPv4 address alone', () => {
    expect(choose(world([pool('v4', ['192.0.2.0/30'])]), dual('PreferDualStack'))).to.deep.equal(
      ok(['192.0.2.0']),
    );
  });

  it('PreferDualStack with only an IPv6 pool though IPv4 comes first: the IPv6 address alone', () => {
    expect(choose(world([pool('v6', ['2001:db8::/126'])]), dual('PreferDualStack'))).to.deep.equal(
      ok(['2001:db8::']),
    );
  });

  it("PreferDualStack with no pool at all: the first family's failure", () => {
    expect(choose(world([]), dual('PreferDualStack'))).to.deep.equal({
      ok: false,
      reason: 'NoPool',
      message: 'no pool: no usable LoadBalancerIPPool with IPv4 addresses selects this Service',
    });
  });

  it('RequireDualStack with pools of both families: both', () => {
    expect(choose(world(both()), dual('RequireDualStack'))).to.deep.equal(ok(['192.0.2.0', '2001:db8::']));
  });

  it('RequireDualStack with only an IPv4 pool: DualStackUnavailable, nothing assigned', () => {
    const w = world([pool('v4', ['192.0.2.0/30'])]);
    expect(claim(w, dual('RequireDualStack'))).to.deep.equal({
      ok: false,
      reason: 'DualStackUnavailable',
      message:
        'dual-stack unavailable: RequireDualStack needs an IPv6 address and no usable LoadBalancerIPPool with IPv6 addresses selects this Service',
    });
    expect(w.book.addressesOf('n/s')).to.equal(undefined);
    expect(w.book.counts('v4', 'IPv4')).to.deep.equal({ total: 4, used: 0 });
  });

  it('a dual-stack Service keeps both held addresses on re-choice', () => {
    const w = world(both());
    expect(claim(w, dual('RequireDualStack'))).to.deep.equal(ok(['192.0.2.0', '2001:db8::']));
    expect(choose(w, dual('RequireDualStack'))).to.deep.equal(ok(['192.0.2.0', '2001:db8::'], []));
  });

  it('SingleStack turned PreferDualStack keeps its IPv4 and adds an IPv6', () => {
    const w = world(both());
    expect(claim(w, svc('s'))).to.deep.equal(ok(['192.0.2.0']));
    expect(choose(w, dual('PreferDualStack'))).to.deep.equal(ok(['192.0.2.0', '2001:db8::'], ['2001:db8::']));
  });

  it("PreferDualStack IPv4-first requesting only an IPv6 address: addresses still in the Service's family order", () => {
    // Assignment.addresses: "One per family, in the Service's family order."
    const s = svc('s', {
      annotations: { 'scm.dev/load-balancer-ips': '2001:db8::2' },
      spec: { ipFamilyPolicy: 'PreferDualStack', ipFamilies: ['IPv4', 'IPv6'] },
    });
    expect(choose(world(both()), s)).to.deep.equal(ok(['192.0.2.0', '2001:db8::2']));
  });
});

describe('LoadBalancer desired: chooseAddresses, sharing', () => {
  const shared = (name: string, key: string, port: number, spec: SvcShape['spec'] = {}): V1Service =>
    svc(name, {
      annotations: { 'scm.dev/allow-shared-ip': key },
      spec: { ports: [{ port, protocol: 'TCP' }], ...spec },
    });

  it('same key, 80/TCP and 443/TCP: the same address; a third with 80/TCP: its own', () => {
    const w = world([pool('a', ['192.0.2.0/30'])]);
    expect(claim(w, shared('http', 'k', 80))).to.deep.equal(ok(['192.0.2.0']));
    expect(claim(w, shared('https', 'k', 443))).to.deep.equal(ok(['192.0.2.0']));
    expect(claim(w, shared('http2', 'k', 80))).to.deep.equal(ok(['192.0.2.1']));
    expect([...w.book.holdersOf('192.0.2.0').keys()]).to.deep.equal(['n/http', 'n/https']);
  });

  it('the sharers keep the shared address on re-choice', () => {
    const w = world([pool('a', ['192.0.2.0/30'])]);
    claim(w, shared('http', 'k', 80));
    claim(w, shared('https', 'k', 443));
    expect(choose(w, shared('http', 'k', 80))).to.deep.equal(ok(['192.0.2.0'], []));
    expect(choose(w, shared('https', 'k', 443))).to.deep.equal(ok(['192.0.2.0'], []));
  });

  it('different keys: different addresses', () => {
    const w = world([pool('a', ['192.0.2.0/30'])]);
    expect(claim(w, shared('x', 'k1', 80))).to.deep.equal(ok(['192.0.2.0']));
    expect(claim(w, shared('y', 'k2', 443))).to.deep.equal(ok(['192.0.2.1']));
  });

  it('a Service without a key never joins a keyed address', () => {
    const w = world([pool('a', ['192.0.2.0/30'])]);
    claim(w, shared('x', 'k', 80));
    expect(claim(w, svc('plain', { spec: { ports: [{ port: 443, protocol: 'TCP' }] } }))).to.deep.equal(
      ok(['192.0.2.1']),
    );
  });

  it('externalTrafficPolicy Local with different selectors: no sharing', () => {
    const w = world([pool('a', ['192.0.2.0/30'])]);
    const local = { externalTrafficPolicy: 'Local' };
    claim(w, shared('x', 'k', 80, { ...local, selector: { app: 'x' } }));
    expect(claim(w, shared('y', 'k', 443, { ...local, selector: { app: 'y' } }))).to.deep.equal(
      ok(['192.0.2.1']),
    );
  });

  it('externalTrafficPolicy Local with equal selectors: shared', () => {
    const w = world([pool('a', ['192.0.2.0/30'])]);
    const spec = { externalTrafficPolicy: 'Local', selector: { app: 'x' } };
    claim(w, shared('x', 'k', 80, spec));
    expect(claim(w, shared('y', 'k', 443, spec))).to.deep.equal(ok(['192.0.2.0']));
  });

  it('a shared address in a pool the Service cannot use is not joined', () => {
    const w = world([
      pool('a', ['192.0.2.0/30'], { serviceSelector: { matchLabels: { tier: 'web' } }, priority: 1 }),
      pool('b', ['198.51.100.0/30']),
    ]);
    const web = svc('x', {
      labels: { tier: 'web' },
      annotations: { 'scm.dev/allow-shared-ip': 'k' },
    });
    expect(claim(w, web)).to.deep.equal(ok(['192.0.2.0']));
    expect(claim(w, shared('y', 'k', 443))).to.deep.equal(ok(['198.51.100.0']));
  });

  it('a held shared address becoming incompatible (port now collides) moves the Service', () => {
    const w = world([pool('a', ['192.0.2.0/30'])]);
    claim(w, shared('x', 'k', 80));
    claim(w, shared('y', 'k', 443));
    expect(claim(w, shared('y', 'k', 80))).to.deep.equal(ok(['192.0.2.1']));
    expect([...w.book.holdersOf('192.0.2.0').keys()]).to.deep.equal(['n/x']);
  });
});

describe('LoadBalancer desired: ingress, condition and status', () => {
  it('desiredIngress: one entry per address, ipMode VIP and every (port, protocol), TCP by default', () => {
    const s = svc('s', { spec: { ports: [{ port: 80 }, { port: 53, protocol: 'UDP' }] } });
    expect(desiredIngress(s, ['192.0.2.0', '2001:db8::'])).to.deep.equal([
      {
        ip: '192.0.2.0',
        ipMode: 'VIP',
        ports: [
          { port: 80, protocol: 'TCP' },
          { port: 53, protocol: 'UDP' },
        ],
      },
      {
        ip: '2001:db8::',
        ipMode: 'VIP',
        ports: [
          { port: 80, protocol: 'TCP' },
          { port: 53, protocol: 'UDP' },
        ],
      },
    ]);
  });

  const conditions: { name: string; choice: Choice; want: unknown }[] = [
    {
      name: 'an assignment: True, Assigned, naming the addresses',
      choice: ok(['192.0.2.0', '2001:db8::']),
      want: { status: 'True', reason: 'Assigned', message: 'assigned 192.0.2.0, 2001:db8::' },
    },
    {
      name: 'a kept address whose pool changed: True, PoolChanged',
      choice: { ok: true, addresses: ['192.0.2.0'], added: [], poolChanged: 'moved on' },
      want: { status: 'True', reason: 'PoolChanged', message: 'moved on' },
    },
    {
      name: 'a failure: False with its reason and message',
      choice: { ok: false, reason: 'PoolExhausted', message: 'pool exhausted: x' },
      want: { status: 'False', reason: 'PoolExhausted', message: 'pool exhausted: x' },
    },
  ];
  for (const c of conditions) {
    it(`conditionFor ${c.name}`, () => {
      expect(conditionFor(c.choice)).to.deep.equal(c.want);
    });
  }

  it("desiredStatus: the ingress and our condition, stamped now at the Service's generation", () => {
    const s = svc('s');
    s.metadata!.generation = 4;
    const ingress = desiredIngress(s, ['192.0.2.0']);
    expect(
      desiredStatus(s, ingress, { status: 'True', reason: 'Assigned', message: 'assigned 192.0.2.0' }, NOW),
    ).to.deep.equal({
      loadBalancer: { ingress: [{ ip: '192.0.2.0', ipMode: 'VIP', ports: [{ port: 80, protocol: 'TCP' }] }] },
      conditions: [
        {
          type: CONDITION,
          status: 'True',
          reason: 'Assigned',
          message: 'assigned 192.0.2.0',
          observedGeneration: 4,
          lastTransitionTime: NOW,
        },
      ],
    });
  });

  it('desiredStatus keeps other conditions and the transition time while the status holds', () => {
    const other: V1Condition = {
      type: 'Other',
      status: 'True',
      reason: 'R',
      message: 'm',
      lastTransitionTime: EARLIER,
    };
    const s: V1Service = {
      ...svc('s'),
      status: {
        conditions: [
          other,
          {
            type: CONDITION,
            status: 'True',
            reason: 'Assigned',
            message: 'assigned 192.0.2.1',
            lastTransitionTime: EARLIER,
          },
        ],
      },
    };
    const want = desiredStatus(
      s,
      desiredIngress(s, ['192.0.2.0']),
      { status: 'True', reason: 'PoolChanged', message: 'm2' },
      NOW,
    );
    expect(want.conditions).to.deep.equal([
      other,
      {
        type: CONDITION,
        status: 'True',
        reason: 'PoolChanged',
        message: 'm2',
        observedGeneration: 1,
        lastTransitionTime: EARLIER,
      },
    ]);
  });

  it('desiredStatus moves the transition time when the status flips', () => {
    const s: V1Service = {
      ...svc('s'),
      status: {
        conditions: [
          { type: CONDITION, status: 'True', reason: 'Assigned', message: 'x', lastTransitionTime: EARLIER },
        ],
      },
    };
    const want = desiredStatus(
      s,
      [],
      { status: 'False', reason: 'PoolExhausted', message: 'pool exhausted' },
      NOW,
    );
    expect(want).to.deep.equal({
      loadBalancer: {},
      conditions: [
        {
          type: CONDITION,
          status: 'False',
          reason: 'PoolExhausted',
          message: 'pool exhausted',
          observedGeneration: 1,
          lastTransitionTime: NOW,
        },
      ],
    });
  });

  it('desiredStatus without a condition drops ours and an empty ingress clears the load balancer', () => {
    const s: V1Service = {
      ...svc('s'),
      status: {
        loadBalancer: { ingress: [{ ip: '192.0.2.0', ipMode: 'VIP' }] },
        conditions: [
          { type: CONDITION, status: 'True', reason: 'Assigned', message: 'x', lastTransitionTime: EARLIER },
        ],
      },
    };
    expect(desiredStatus(s, [], undefined, NOW)).to.deep.equal({ loadBalancer: {}, conditions: undefined });
  });

  it('statusAddresses: the ingress IPs, canonical, in order; hostnames skipped', () => {
    const s: V1Service = {
      ...svc('s'),
      status: {
        loadBalancer: {
          ingress: [{ ip: '2001:DB8::1' }, { hostname: 'lb.example.com' }, { ip: '192.0.2.7' }],
        },
      },
    };
    expect(statusAddresses(s)).to.deep.equal(['2001:db8::1', '192.0.2.7']);
    expect(statusAddresses(svc('s'))).to.deep.equal([]);
  });

  describe('statusMatches', () => {
    const base = (): V1Service => {
      const s = svc('s');
      const want = desiredStatus(
        s,
        desiredIngress(s, ['192.0.2.0']),
        { status: 'True', reason: 'Assigned', message: 'assigned 192.0.2.0' },
        EARLIER,
      );
      return { ...s, status: want };
    };
    const target = (
      s: V1Service,
      overrides: { ip?: string; reason?: string; port?: number; at?: Date } = {},
    ) =>
      desiredStatus(
        s,
        desiredIngress(
          { ...s, spec: { ...s.spec, ports: [{ port: overrides.port ?? 80, protocol: 'TCP' }] } },
          [overrides.ip ?? '192.0.2.0'],
        ),
        { status: 'True', reason: overrides.reason ?? 'Assigned', message: 'assigned 192.0.2.0' },
        overrides.at ?? NOW,
      );

    it('the same ingress and condition match, whatever the transition time', () => {
      const s = base();
      expect(statusMatches(s, target(s, { at: NOW }))).to.equal(true);
    });

    it('another address does not match', () => {
      const s = base();
      expect(statusMatches(s, target(s, { ip: '192.0.2.1' }))).to.equal(false);
    });

    it('another port does not match', () => {
      const s = base();
      expect(statusMatches(s, target(s, { port: 443 }))).to.equal(false);
    });

    it('another reason does not match', () => {
      const s = base();
      expect(statusMatches(s, target(s, { reason: 'PoolChanged' }))).to.equal(false);
    });

    it('a newer generation does not match', () => {
      const s = base();
      const newer = { ...s, metadata: { ...s.metadata, generation: 2 } };
      expect(statusMatches(s, target(newer))).to.equal(false);
    });

    it('our condition missing on one side does not match; missing on both does', () => {
      const s = base();
      expect(statusMatches(svc('s'), target(s))).to.equal(false);
      expect(statusMatches(s, desiredStatus(s, desiredIngress(s, ['192.0.2.0']), undefined, NOW))).to.equal(
        false,
      );
      expect(statusMatches(svc('s'), desiredStatus(svc('s'), [], undefined, NOW))).to.equal(true);
    });
  });
});
