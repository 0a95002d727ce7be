import { expect } from 'chai';
import type { V1Service } from '@kubernetes/client-node';
import {
  addressesOf,
  allAssigned,
  duplicateAddresses,
  expectedAssigned,
  lbServiceBody,
  METALLB_FLAVOR,
  metallbDir,
  OURS_FLAVOR,
  s7Specs,
  s8Specs,
  wrongAddresses,
  type LbKind,
  type LbServiceSpec,
} from '../../../bench/loadbalancer.ts';

interface SvcOptions {
  key?: string;
  keyAnnotation?: string;
  ports?: [number, string?][];
}

/** A Service as the API shows it: its name, maybe a sharing key, its ports and ingress addresses. */
function lbSvc(name: string, ips: string[], opts: SvcOptions = {}): V1Service {
  const annotations =
    opts.key === undefined ? undefined : { [opts.keyAnnotation ?? OURS_FLAVOR.sharingKey]: opts.key };
  return {
    metadata: { name, ...(annotations ? { annotations } : {}) },
    spec: {
      type: 'LoadBalancer',
      ports: (opts.ports ?? [[80]]).map(([port, protocol]) => ({
        port,
        ...(protocol === undefined ? {} : { protocol }),
      })),
    },
    status: { loadBalancer: { ingress: ips.map((ip) => ({ ip })) } },
  };
}

function countKinds(specs: readonly LbServiceSpec[]): Record<LbKind, number> {
  const counts: Record<LbKind, number> = { plain: 0, dual: 0, shared: 0, requested: 0, tiny: 0 };
  for (const s of specs) counts[s.kind]++;
  return counts;
}

function spec(kind: LbKind, extra: Partial<LbServiceSpec> = {}): LbServiceSpec {
  return { name: `svc-${kind}`, kind, port: 80, ...extra };
}

/** Right addresses for each of `specs`, as a correct allocator would pick them (tiny: the first 8). */
function rightAssignment(specs: readonly LbServiceSpec[]): Map<string, V1Service> {
  const out = new Map<string, V1Service>();
  let nextV4 = 0;
  let nextV6 = 0;
  let tiny = 0;
  const sharedIp = new Map<string, string>();
  const v4 = (): string => {
    const n = nextV4++;
    return `10.200.${Math.floor(n / 256)}.${n % 256}`;
  };
  for (const s of specs) {
    let ips: string[];
    if (s.kind === 'dual') ips = [v4(), `fd00:200::${(nextV6++).toString(16)}`];
    else if (s.kind === 'requested') ips = [s.requested ?? ''];
    else if (s.kind === 'tiny') ips = tiny < 8 ? [`10.202.0.${10 + tiny++}`] : [];
    else if (s.kind === 'shared') {
      const key = s.sharingKey ?? '';
      const ip = sharedIp.get(key) ?? v4();
      sharedIp.set(key, ip);
      ips = [ip];
    } else ips = [v4()];
    out.set(s.name, lbSvc(s.name, ips, { key: s.sharingKey, ports: [[s.port]] }));
  }
  return out;
}

describe('bench LoadBalancer workload', () => {
  it('S7 of 1,000: 100 dual-stack, 100 sharing, 100 requested, 20 pinned to tiny, 680 plain', () => {
    const specs = s7Specs(1000);
    expect(specs).to.have.length(1000);
    expect(countKinds(specs)).to.deep.equal({ dual: 100, shared: 100, requested: 100, tiny: 20, plain: 680 });
    expect(new Set(specs.map((s) => s.name)).size).to.equal(1000);
    expect(specs.slice(0, 5)).to.deep.equal([
      { name: 'lb-0', kind: 'dual', port: 80 },
      { name: 'lb-1', kind: 'shared', port: 8000, sharingKey: 'share-0' },
      { name: 'lb-2', kind: 'requested', port: 80, requested: '10.201.0.1' },
      { name: 'lb-3', kind: 'tiny', port: 80 },
      { name: 'lb-4', kind: 'plain', port: 80 },
    ]);
    expect(specs[13]).to.deep.equal({ name: 'lb-13', kind: 'plain', port: 80 });
    expect(specs[53]).to.deep.equal({ name: 'lb-53', kind: 'tiny', port: 80 });
    expect(specs[992]).to.deep.equal({
      name: 'lb-992',
      kind: 'requested',
      port: 80,
      requested: '10.201.0.100',
    });
  });

  it('S7 sharing: 25 keys, 4 Services each, on the 4 distinct ports 8000-8003', () => {
    const byKey = new Map<string, number[]>();
    for (const s of s7Specs(1000)) {
      if (s.kind !== 'shared') {
        expect(s.sharingKey).to.equal(undefined);
        continue;
      }
      const key = s.sharingKey ?? '';
      byKey.set(key, [...(byKey.get(key) ?? []), s.port]);
    }
    expect([...byKey.keys()]).to.deep.equal(Array.from({ length: 25 }, (_, k) => `share-${k}`));
    for (const ports of byKey.values()) expect(ports).to.deep.equal([8000, 8001, 8002, 8003]);
  });

  it('S7 requested addresses are distinct, in reserved, and only those who ask have one', () => {
    const specs = s7Specs(1000);
    const requested = specs.filter((s) => s.kind === 'requested').map((s) => s.requested);
    expect(requested).to.deep.equal(Array.from({ length: 100 }, (_, j) => `10.201.0.${j + 1}`));
    expect(specs.filter((s) => s.kind !== 'requested' && s.requested !== undefined)).to.deep.equal([]);
  });

  it('S7 asks for at most the 254 addresses .1-.254 of reserved; the 10th Services past them are plain', () => {
    const specs = s7Specs(2600);
    const requested = specs.filter((s) => s.kind === 'requested');
    expect(requested).to.have.length(254);
    expect(requested[253]).to.deep.equal({
      name: 'lb-2532',
      kind: 'requested',
      port: 80,
      requested: '10.201.0.254',
    });
    expect(specs[2542]).to.deep.equal({ name: 'lb-2542', kind: 'plain', port: 80 });
  });

  it('S7 and S8 are deterministic, and a smaller S7 is a prefix of a larger one', () => {
    expect(s7Specs(1000)).to.deep.equal(s7Specs(1000));
    expect(s8Specs(100)).to.deep.equal(s8Specs(100));
    expect(s7Specs(1000).slice(0, 137)).to.deep.equal(s7Specs(137));
    expect(s7Specs(0)).to.deep.equal([]);
  });

  it('S8 of 100: 10 dual-stack, 90 plain, named apart from S7', () => {
    const specs = s8Specs(100);
    expect(countKinds(specs)).to.deep.equal({ dual: 10, shared: 0, requested: 0, tiny: 0, plain: 90 });
    expect(specs.slice(0, 2)).to.deep.equal([
      { name: 'lb-new-0', kind: 'dual', port: 80 },
      { name: 'lb-new-1', kind: 'plain', port: 80 },
    ]);
    expect(specs[90]).to.deep.equal({ name: 'lb-new-90', kind: 'dual', port: 80 });
    const s7Names = new Set(s7Specs(1000).map((s) => s.name));
    expect(specs.filter((s) => s7Names.has(s.name))).to.deep.equal([]);
  });

  it('expects every Service but those tiny has no room for: 988 of S7, 100 of S8', () => {
    expect(expectedAssigned(s7Specs(1000))).to.equal(988);
    expect(expectedAssigned(s8Specs(100))).to.equal(100);
    // Fewer pinned than tiny holds: all of them.
    expect(expectedAssigned(s7Specs(100))).to.equal(100);
    expect(expectedAssigned([])).to.equal(0);
  });
});

describe('bench LoadBalancer Service bodies', () => {
  it("the flavors' annotation names", () => {
    expect(OURS_FLAVOR).to.deep.equal({
      requestedIps: 'scm.dev/load-balancer-ips',
      pool: 'scm.dev/address-pool',
      sharingKey: 'scm.dev/allow-shared-ip',
    });
    expect(METALLB_FLAVOR).to.deep.equal({
      requestedIps: 'metallb.io/loadBalancerIPs',
      pool: 'metallb.io/address-pool',
      sharingKey: 'metallb.io/allow-shared-ip',
    });
  });

  it('a plain Service: single-stack IPv4, one TCP port, no annotations, no selector', () => {
    const body = lbServiceBody({ name: 'lb-4', kind: 'plain', port: 80 }, OURS_FLAVOR);
    expect(body).to.deep.equal({
      metadata: { name: 'lb-4' },
      spec: {
        type: 'LoadBalancer',
        ipFamilyPolicy: 'SingleStack',
        ipFamilies: ['IPv4'],
        ports: [{ name: 'p', port: 80, targetPort: 8080, protocol: 'TCP' }],
      },
    });
    expect(lbServiceBody({ name: 'lb-4', kind: 'plain', port: 80 }, METALLB_FLAVOR)).to.deep.equal(body);
  });

  it('a dual-stack Service requires both families, without annotations', () => {
    for (const flavor of [OURS_FLAVOR, METALLB_FLAVOR]) {
      expect(lbServiceBody({ name: 'lb-0', kind: 'dual', port: 80 }, flavor)).to.deep.equal({
        metadata: { name: 'lb-0' },
        spec: {
          type: 'LoadBalancer',
          ipFamilyPolicy: 'RequireDualStack',
          ipFamilies: ['IPv4', 'IPv6'],
          ports: [{ name: 'p', port: 80, targetPort: 8080, protocol: 'TCP' }],
        },
      });
    }
  });

  it("a sharing Service carries its key under each flavor's name, on its own port", () => {
    const s: LbServiceSpec = { name: 'lb-11', kind: 'shared', port: 8001, sharingKey: 'share-0' };
    const ours = lbServiceBody(s, OURS_FLAVOR);
    expect(ours.metadata).to.deep.equal({
      name: 'lb-11',
      annotations: { 'scm.dev/allow-shared-ip': 'share-0' },
    });
    expect(ours.spec?.ports).to.deep.equal([{ name: 'p', port: 8001, targetPort: 8080, protocol: 'TCP' }]);
    expect(ours.spec?.ipFamilyPolicy).to.equal('SingleStack');
    expect(lbServiceBody(s, METALLB_FLAVOR).metadata).to.deep.equal({
      name: 'lb-11',
      annotations: { 'metallb.io/allow-shared-ip': 'share-0' },
    });
  });

  it("a requested Service asks for its address under each flavor's name", () => {
    const s: LbServiceSpec = { name: 'lb-2', kind: 'requested', port: 80, requested: '10.201.0.1' };
    expect(lbServiceBody(s, OURS_FLAVOR).metadata).to.deep.equal({
      name: 'lb-2',
      annotations: { 'scm.dev/load-balancer-ips': '10.201.0.1' },
    });
    expect(lbServiceBody(s, METALLB_FLAVOR).metadata).to.deep.equal({
      name: 'lb-2',
      annotations: { 'metallb.io/loadBalancerIPs': '10.201.0.1' },
    });
    expect(lbServiceBody(s, OURS_FLAVOR).spec?.ipFamilies).to.deep.equal(['IPv4']);
  });

  it("a Service pinned to tiny names the pool under each flavor's name", () => {
    const s: LbServiceSpec = { name: 'lb-3', kind: 'tiny', port: 80 };
    expect(lbServiceBody(s, OURS_FLAVOR).metadata).to.deep.equal({
      name: 'lb-3',
      annotations: { 'scm.dev/address-pool': 'tiny' },
    });
    expect(lbServiceBody(s, METALLB_FLAVOR).metadata).to.deep.equal({
      name: 'lb-3',
      annotations: { 'metallb.io/address-pool': 'tiny' },
    });
  });

  it('annotates only what the kind uses: a key or an address on another kind is ignored', () => {
    const body = lbServiceBody(
      { name: 'x', kind: 'plain', port: 80, sharingKey: 'k', requested: '10.201.0.7' },
      OURS_FLAVOR,
    );
    expect(body.metadata).to.deep.equal({ name: 'x' });
  });
});

describe('bench LoadBalancer address checks', () => {
  it('addressesOf: the ingress IPs, canonical, skipping hostnames and unparsable ones', () => {
    const svc: V1Service = {
      metadata: { name: 's' },
      status: {
        loadBalancer: {
          ingress: [
            { ip: '10.200.0.1' },
            { ip: 'fd00:200:0:0:0:0:0:a' },
            { hostname: 'lb.example.com' },
            { ip: 'not-an-ip' },
            { ip: 'FD00:200::B' },
          ],
        },
      },
    };
    expect(addressesOf(svc)).to.deep.equal(['10.200.0.1', 'fd00:200::a', 'fd00:200::b']);
    expect(addressesOf(undefined)).to.deep.equal([]);
    expect(addressesOf({ metadata: { name: 's' } })).to.deep.equal([]);
    expect(addressesOf({ metadata: { name: 's' }, status: { loadBalancer: {} } })).to.deep.equal([]);
  });

  it('plain and shared: one address in main IPv4 is right', () => {
    for (const kind of ['plain', 'shared'] as const) {
      expect(wrongAddresses(spec(kind), ['10.200.0.0'])).to.equal(undefined);
      expect(wrongAddresses(spec(kind), ['10.200.3.255'])).to.equal(undefined);
    }
  });

  it('plain and shared: outside main IPv4, an IPv6 one, none or two are wrong', () => {
    expect(wrongAddresses(spec('plain'), ['10.200.4.0'])).to.equal(
      'svc-plain (plain) has 10.200.4.0, not in 10.200.0.0/22',
    );
    expect(wrongAddresses(spec('shared'), ['10.201.0.5'])).to.equal(
      'svc-shared (shared) has 10.201.0.5, not in 10.200.0.0/22',
    );
    expect(wrongAddresses(spec('plain'), ['fd00:200::1'])).to.equal(
      'svc-plain (plain) has fd00:200::1, not in 10.200.0.0/22',
    );
    expect(wrongAddresses(spec('plain'), [])).to.equal('svc-plain (plain) has 0 addresses, want 1');
    expect(wrongAddresses(spec('shared'), ['10.200.0.1', '10.200.0.2'])).to.equal(
      'svc-shared (shared) has 2 addresses, want 1',
    );
  });

  it('dual: one address of each family from main is right, in either order', () => {
    expect(wrongAddresses(spec('dual'), ['10.200.0.1', 'fd00:200::1'])).to.equal(undefined);
    expect(wrongAddresses(spec('dual'), ['fd00:200::ff', '10.200.3.255'])).to.equal(undefined);
  });

  it('dual: two of one family, one outside main, or only one address are wrong', () => {
    const want = 'want one of 10.200.0.0/22 and one of fd00:200::/120';
    expect(wrongAddresses(spec('dual'), ['10.200.0.1', '10.200.0.2'])).to.equal(
      `svc-dual (dual) has 10.200.0.1, 10.200.0.2, ${want}`,
    );
    expect(wrongAddresses(spec('dual'), ['fd00:200::1', 'fd00:200::2'])).to.equal(
      `svc-dual (dual) has fd00:200::1, fd00:200::2, ${want}`,
    );
    expect(wrongAddresses(spec('dual'), ['10.200.0.1', 'fd00:200::100'])).to.equal(
      `svc-dual (dual) has 10.200.0.1, fd00:200::100, ${want}`,
    );
    expect(wrongAddresses(spec('dual'), ['10.201.0.1', 'fd00:200::1'])).to.equal(
      `svc-dual (dual) has 10.201.0.1, fd00:200::1, ${want}`,
    );
    expect(wrongAddresses(spec('dual'), ['10.200.0.1'])).to.equal('svc-dual (dual) has 1 addresses, want 2');
  });

  it('requested: exactly the address asked for is right; any other is wrong', () => {
    const s = spec('requested', { requested: '10.201.0.7' });
    expect(wrongAddresses(s, ['10.201.0.7'])).to.equal(undefined);
    expect(wrongAddresses(s, ['10.201.0.8'])).to.equal('svc-requested has 10.201.0.8, asked for 10.201.0.7');
    expect(wrongAddresses(s, ['10.200.0.7'])).to.equal('svc-requested has 10.200.0.7, asked for 10.201.0.7');
    expect(wrongAddresses(s, [])).to.equal('svc-requested (requested) has 0 addresses, want 1');
  });

  it('tiny: 10.202.0.10-10.202.0.17 are right; just outside, or main, are wrong', () => {
    const s = spec('tiny');
    expect(wrongAddresses(s, ['10.202.0.10'])).to.equal(undefined);
    expect(wrongAddresses(s, ['10.202.0.17'])).to.equal(undefined);
    expect(wrongAddresses(s, ['10.202.0.9'])).to.equal('svc-tiny (pinned to tiny) has 10.202.0.9');
    expect(wrongAddresses(s, ['10.202.0.18'])).to.equal('svc-tiny (pinned to tiny) has 10.202.0.18');
    expect(wrongAddresses(s, ['10.200.0.1'])).to.equal('svc-tiny (pinned to tiny) has 10.200.0.1');
    expect(wrongAddresses(s, ['10.202.0.10', '10.202.0.11'])).to.equal(
      'svc-tiny (tiny) has 2 addresses, want 1',
    );
  });

  it('a correct allocation of S7 has no wrong addresses and no duplicates, 25 shared ones', () => {
    const specs = s7Specs(1000);
    const svcs = rightAssignment(specs);
    const wrong = specs.flatMap((s) => {
      const ips = addressesOf(svcs.get(s.name));
      const why = ips.length === 0 ? undefined : wrongAddresses(s, ips);
      return why === undefined ? [] : [why];
    });
    expect(wrong).to.deep.equal([]);
    expect(allAssigned(specs, (n) => svcs.get(n))).to.equal(true);
    expect(duplicateAddresses([...svcs.values()])).to.deep.equal({
      sharedAddresses: 25,
      duplicates: 0,
      samples: [],
    });
  });
});

describe('bench LoadBalancer allAssigned', () => {
  const specs: LbServiceSpec[] = [
    { name: 'd', kind: 'dual', port: 80 },
    { name: 'p', kind: 'plain', port: 80 },
    ...Array.from({ length: 10 }, (_, i): LbServiceSpec => ({ name: `t${i}`, kind: 'tiny', port: 80 })),
  ];
  const base = (): Map<string, V1Service> =>
    new Map([
      ['d', lbSvc('d', ['10.200.0.1', 'fd00:200::1'])],
      ['p', lbSvc('p', ['10.200.0.2'])],
      ...Array.from({ length: 8 }, (_, i): [string, V1Service] => [
        `t${i}`,
        lbSvc(`t${i}`, [`10.202.0.${10 + i}`]),
      ]),
    ]);

  it('holds once every Service has its addresses and 8 of the 10 pinned to tiny have one', () => {
    const m = base();
    expect(allAssigned(specs, (n) => m.get(n))).to.equal(true);
    m.set('t8', lbSvc('t8', ['10.202.0.10']));
    expect(allAssigned(specs, (n) => m.get(n))).to.equal(true);
  });

  it('does not hold while a dual-stack Service has one address, or one is missing', () => {
    const m = base();
    m.set('d', lbSvc('d', ['10.200.0.1']));
    expect(allAssigned(specs, (n) => m.get(n))).to.equal(false);
    const m2 = base();
    m2.delete('p');
    expect(allAssigned(specs, (n) => m2.get(n))).to.equal(false);
    const m3 = base();
    m3.set('p', lbSvc('p', []));
    expect(allAssigned(specs, (n) => m3.get(n))).to.equal(false);
  });

  it('does not hold while fewer than min(pinned, 8) pinned to tiny have an address', () => {
    const m = base();
    m.delete('t7');
    expect(allAssigned(specs, (n) => m.get(n))).to.equal(false);
    const three = specs.slice(0, 5);
    const m2 = base();
    expect(allAssigned(three, (n) => m2.get(n))).to.equal(true);
    m2.delete('t2');
    expect(allAssigned(three, (n) => m2.get(n))).to.equal(false);
  });

  it('holds for S7 with the 12 pinned to tiny beyond its room left without', () => {
    const s7 = s7Specs(1000);
    const m = rightAssignment(s7);
    const pinnedWithout = s7.filter((s) => s.kind === 'tiny' && addressesOf(m.get(s.name)).length === 0);
    expect(pinnedWithout).to.have.length(12);
    expect(allAssigned(s7, (n) => m.get(n))).to.equal(true);
    m.delete('lb-3');
    expect(allAssigned(s7, (n) => m.get(n))).to.equal(false);
  });
});

describe('bench LoadBalancer duplicateAddresses', () => {
  it('sharing partners with one key on distinct ports are shared, not duplicates', () => {
    const got = duplicateAddresses([
      lbSvc('a', ['10.200.0.1'], { key: 'k', ports: [[8000]] }),
      lbSvc('b', ['10.200.0.1'], { key: 'k', ports: [[8001]] }),
      lbSvc('c', ['10.200.0.1'], { key: 'k', ports: [[8002]] }),
      lbSvc('d', ['10.200.0.1'], { key: 'k', ports: [[8003]] }),
      lbSvc('e', ['10.200.0.2']),
    ]);
    expect(got).to.deep.equal({ sharedAddresses: 1, duplicates: 0, samples: [] });
  });

  it("MetalLB's key annotation counts as a key", () => {
    const got = duplicateAddresses([
      lbSvc('a', ['10.200.0.1'], { key: 'k', keyAnnotation: METALLB_FLAVOR.sharingKey, ports: [[8000]] }),
      lbSvc('b', ['10.200.0.1'], { key: 'k', keyAnnotation: METALLB_FLAVOR.sharingKey, ports: [[8001]] }),
    ]);
    expect(got).to.deep.equal({ sharedAddresses: 1, duplicates: 0, samples: [] });
  });

  it('the same port number on different protocols is not a port in common', () => {
    const got = duplicateAddresses([
      lbSvc('a', ['10.200.0.1'], { key: 'k', ports: [[53, 'TCP']] }),
      lbSvc('b', ['10.200.0.1'], { key: 'k', ports: [[53, 'UDP']] }),
    ]);
    expect(got).to.deep.equal({ sharedAddresses: 1, duplicates: 0, samples: [] });
  });

  it('the same key with a port in common is a duplicate (TCP by default)', () => {
    expect(
      duplicateAddresses([
        lbSvc('a', ['10.200.0.1'], { key: 'k', ports: [[8000]] }),
        lbSvc('b', ['10.200.0.1'], { key: 'k', ports: [[8001], [8000, 'TCP']] }),
      ]),
    ).to.deep.equal({ sharedAddresses: 1, duplicates: 1, samples: ['10.200.0.1: a, b'] });
  });

  it('different keys, or a key on only one, or no keys are duplicates', () => {
    expect(
      duplicateAddresses([
        lbSvc('a', ['10.200.0.1'], { key: 'k1', ports: [[8000]] }),
        lbSvc('b', ['10.200.0.1'], { key: 'k2', ports: [[8001]] }),
      ]),
    ).to.deep.equal({ sharedAddresses: 1, duplicates: 1, samples: ['10.200.0.1: a, b'] });
    expect(
      duplicateAddresses([
        lbSvc('a', ['10.200.0.2'], { key: 'k', ports: [[8000]] }),
        lbSvc('b', ['10.200.0.2'], { ports: [[8001]] }),
      ]),
    ).to.deep.equal({ sharedAddresses: 1, duplicates: 1, samples: ['10.200.0.2: a, b'] });
    expect(
      duplicateAddresses([
        lbSvc('a', ['10.200.0.3'], { ports: [[8001]] }),
        lbSvc('b', ['10.200.0.3'], { key: 'k', ports: [[8000]] }),
      ]),
    ).to.deep.equal({ sharedAddresses: 1, duplicates: 1, samples: ['10.200.0.3: a, b'] });
    expect(
      duplicateAddresses([
        lbSvc('a', ['10.200.0.4'], { ports: [[8000]] }),
        lbSvc('b', ['10.200.0.4'], { ports: [[8001]] }),
      ]),
    ).to.deep.equal({ sharedAddresses: 1, duplicates: 1, samples: ['10.200.0.4: a, b'] });
  });

  it('an IPv6 address held twice is a duplicate; each address is counted once per Service', () => {
    const got = duplicateAddresses([
      lbSvc('a', ['10.200.0.1', 'fd00:200::1']),
      lbSvc('b', ['10.200.0.2', 'fd00:200:0:0:0:0:0:1']),
      lbSvc('c', ['10.200.0.3', '10.200.0.3']),
    ]);
    expect(got).to.deep.equal({ sharedAddresses: 1, duplicates: 1, samples: ['fd00:200::1: a, b'] });
  });

  it('counts every duplicate, keeps 5 samples', () => {
    const services = Array.from({ length: 7 }, (_, i) => [
      lbSvc(`a${i}`, [`10.200.0.${i}`]),
      lbSvc(`b${i}`, [`10.200.0.${i}`]),
    ]).flat();
    const got = duplicateAddresses(services);
    expect(got.sharedAddresses).to.equal(7);
    expect(got.duplicates).to.equal(7);
    expect(got.samples).to.deep.equal([
      '10.200.0.0: a0, b0',
      '10.200.0.1: a1, b1',
      '10.200.0.2: a2, b2',
      '10.200.0.3: a3, b3',
      '10.200.0.4: a4, b4',
    ]);
  });

  it('nothing held twice: nothing shared', () => {
    expect(
      duplicateAddresses([lbSvc('a', ['10.200.0.1']), lbSvc('b', []), lbSvc('c', ['10.200.0.2'])]),
    ).to.deep.equal({ sharedAddresses: 0, duplicates: 0, samples: [] });
    expect(duplicateAddresses([])).to.deep.equal({ sharedAddresses: 0, duplicates: 0, samples: [] });
  });
});

describe('bench MetalLB location', () => {
  it('SCM_METALLB_DIR overrides everything else', () => {
    expect(
      metallbDir({ SCM_METALLB_DIR: '/opt/metallb', SCM_METALLB_CACHE: '/c', XDG_CACHE_HOME: '/x' }),
    ).to.equal('/opt/metallb');
  });
});
