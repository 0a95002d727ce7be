import { expect } from 'chai';
import type { V1Service, V1ServiceSpec } from '@kubernetes/client-node';
import {
  type ClusterIPPlan,
  clusterIPClaims,
  disallowedExternalIPs,
  type FieldError,
  heldClusterIPs,
  isFieldError,
  planClusterIPs,
  releasedClusterIPs,
} from '../../../controllers/clusterip/desired.ts';
import { IPRange } from '../../../shared/allocator/ranges.ts';

const V4 = new IPRange('10.96.0.0/16');
const V6 = new IPRange('fd00:10:96::/112');
const SINGLE_V4 = [V4];
const DUAL_V4_V6 = [V4, V6];
const DUAL_V6_V4 = [V6, V4];

function svc(spec: V1ServiceSpec, name = 'web'): V1Service {
  return { metadata: { namespace: 'default', name }, spec: { type: 'ClusterIP', ...spec } };
}

/** A plan, failing the test on a FieldError or undefined. */
function plan(...args: Parameters<typeof planClusterIPs>): ClusterIPPlan {
  const result = planClusterIPs(...args);
  if (result === undefined || isFieldError(result))
    throw new Error(`expected a plan, got ${JSON.stringify(result)}`);
  return result;
}

/** A FieldError, failing the test on a plan. */
function fieldError(...args: Parameters<typeof planClusterIPs>): FieldError {
  const result = planClusterIPs(...args);
  if (!isFieldError(result)) throw new Error(`expected a FieldError, got ${JSON.stringify(result)}`);
  return result;
}

describe('planClusterIPs', () => {
  describe('single-stack', () => {
    it("a Service asking for nothing gets one IP to pick, of the first range's family", () => {
      expect(plan(svc({}), undefined, SINGLE_V4)).to.deep.equal({
        policy: 'SingleStack',
        slots: [{ family: 'IPv4', field: 'spec.clusterIPs[0]' }],
      });
    });

    it('on a dual-stack cluster listed IPv6 first, the default family is IPv6', () => {
      expect(plan(svc({}), undefined, DUAL_V6_V4)).to.deep.equal({
        policy: 'SingleStack',
        slots: [{ family: 'IPv6', field: 'spec.clusterIPs[0]' }],
      });
    });

    it('a requested clusterIP becomes a request slot, in canonical text', () => {
      expect(plan(svc({ clusterIP: '10.96.0.10' }), undefined, SINGLE_V4).slots).to.deep.equal([
        { family: 'IPv4', field: 'spec.clusterIPs[0]', request: '10.96.0.10' },
      ]);
      expect(plan(svc({ clusterIPs: ['010.096.000.010'] }), undefined, SINGLE_V4).slots).to.deep.equal([
        { family: 'IPv4', field: 'spec.clusterIPs[0]', request: '10.96.0.10' },
      ]);
    });

    it('ipFamilies [IPv6] on a dual-stack cluster picks one IPv6', () => {
      expect(plan(svc({ ipFamilies: ['IPv6'] }), undefined, DUAL_V4_V6)).to.deep.equal({
        policy: 'SingleStack',
        slots: [{ family: 'IPv6', field: 'spec.clusterIPs[0]' }],
      });
    });
  });

  describe('updates', () => {
    const old = svc({
      clusterIP: '10.96.0.10',
      clusterIPs: ['10.96.0.10'],
      ipFamilies: ['IPv4'],
      ipFamilyPolicy: 'SingleStack',
    });

    it('an update that repeats the held IP keeps it', () => {
      expect(
        plan(svc({ clusterIP: '10.96.0.10', clusterIPs: ['10.96.0.10'] }), old, SINGLE_V4),
      ).to.deep.equal({
        policy: 'SingleStack',
        slots: [{ family: 'IPv4', field: 'spec.clusterIPs[0]', keep: '10.96.0.10' }],
      });
    });

    it('an update that leaves clusterIP out keeps the held IP', () => {
      expect(plan(svc({}), old, SINGLE_V4).slots).to.deep.equal([
        { family: 'IPv4', field: 'spec.clusterIPs[0]', keep: '10.96.0.10' },
      ]);
      expect(plan(svc({ clusterIP: '' }), old, SINGLE_V4).slots).to.deep.equal([
        { family: 'IPv4', field: 'spec.clusterIPs[0]', keep: '10.96.0.10' },
      ]);
    });

    it('an update takes the policy from the old Service when it leaves it out', () => {
      const dual = svc({
        clusterIPs: ['10.96.0.10', 'fd00:10:96::a'],
        ipFamilies: ['IPv4', 'IPv6'],
        ipFamilyPolicy: 'RequireDualStack',
      });
      expect(plan(svc({ clusterIPs: ['10.96.0.10', 'fd00:10:96::a'] }), dual, DUAL_V4_V6)).to.deep.equal({
        policy: 'RequireDualStack',
        slots: [
          { family: 'IPv4', field: 'spec.clusterIPs[0]', keep: '10.96.0.10' },
          { family: 'IPv6', field: 'spec.clusterIPs[1]', keep: 'fd00:10:96::a' },
        ],
      });
    });

    it('an upgrade to RequireDualStack keeps the IPv4 and picks an IPv6', () => {
      const upgrade = svc({
        clusterIP: '10.96.0.10',
        clusterIPs: ['10.96.0.10'],
        ipFamilies: ['IPv4'],
        ipFamilyPolicy: 'RequireDualStack',
      });
      expect(plan(upgrade, old, DUAL_V4_V6).slots).to.deep.equal([
        { family: 'IPv4', field: 'spec.clusterIPs[0]', keep: '10.96.0.10' },
        { family: 'IPv6', field: 'spec.clusterIPs[1]' },
      ]);
    });

    it('a downgrade to SingleStack that leaves clusterIPs and ipFamilies as they were keeps only the primary IP', () => {
      // The API server trims both lists to their first entry when the policy becomes SingleStack
      // and nothing else changed (pkg/registry/core/service/storage: initIPFamilyFields).
      const dual = svc({
        clusterIP: '10.96.0.10',
        clusterIPs: ['10.96.0.10', 'fd00:10:96::a'],
        ipFamilies: ['IPv4', 'IPv6'],
        ipFamilyPolicy: 'RequireDualStack',
      });
      const downgrade = svc({
        clusterIP: '10.96.0.10',
        clusterIPs: ['10.96.0.10', 'fd00:10:96::a'],
        ipFamilies: ['IPv4', 'IPv6'],
        ipFamilyPolicy: 'SingleStack',
      });
      expect(planClusterIPs(downgrade, dual, DUAL_V4_V6)).to.deep.equal({
        policy: 'SingleStack',
        slots: [{ family: 'IPv4', field: 'spec.clusterIPs[0]', keep: '10.96.0.10' }],
      });
    });

    it('an unchanged PreferDualStack Service is not upgraded when the cluster became dual-stack', () => {
      // isMatchingPreferDualStackClusterIPFields: same policy, clusterIPs and ipFamilies -> no change.
      const prefer = svc({
        clusterIP: '10.96.0.10',
        clusterIPs: ['10.96.0.10'],
        ipFamilies: ['IPv4'],
        ipFamilyPolicy: 'PreferDualStack',
      });
      expect(planClusterIPs(prefer, prefer, DUAL_V4_V6)).to.deep.equal({
        policy: 'PreferDualStack',
        slots: [{ family: 'IPv4', field: 'spec.clusterIPs[0]', keep: '10.96.0.10' }],
      });
    });
  });

  describe('dual-stack policies', () => {
    it('PreferDualStack on a single-stack cluster gets one slot', () => {
      expect(plan(svc({ ipFamilyPolicy: 'PreferDualStack' }), undefined, SINGLE_V4)).to.deep.equal({
        policy: 'PreferDualStack',
        slots: [{ family: 'IPv4', field: 'spec.clusterIPs[0]' }],
      });
    });

    it("PreferDualStack on a dual-stack cluster gets both families, the cluster's order", () => {
      expect(plan(svc({ ipFamilyPolicy: 'PreferDualStack' }), undefined, DUAL_V6_V4).slots).to.deep.equal([
        { family: 'IPv6', field: 'spec.clusterIPs[0]' },
        { family: 'IPv4', field: 'spec.clusterIPs[1]' },
      ]);
    });

    it('RequireDualStack on a single-stack cluster is a FieldError naming spec.ipFamilyPolicy', () => {
      expect(fieldError(svc({ ipFamilyPolicy: 'RequireDualStack' }), undefined, SINGLE_V4)).to.deep.equal({
        field: 'spec.ipFamilyPolicy',
        message:
          'RequireDualStack, but this cluster has one service range (10.96.0.0/16); dual-stack needs an IPv4 and an IPv6 range',
      });
    });

    it('RequireDualStack on a dual-stack cluster gets IPv4 and IPv6 slots in the order of ipFamilies', () => {
      const spec: V1ServiceSpec = { ipFamilyPolicy: 'RequireDualStack', ipFamilies: ['IPv6', 'IPv4'] };
      expect(plan(svc(spec), undefined, DUAL_V4_V6)).to.deep.equal({
        policy: 'RequireDualStack',
        slots: [
          { family: 'IPv6', field: 'spec.clusterIPs[0]' },
          { family: 'IPv4', field: 'spec.clusterIPs[1]' },
        ],
      });
    });

    it("RequireDualStack without ipFamilies follows the cluster's order", () => {
      expect(plan(svc({ ipFamilyPolicy: 'RequireDualStack' }), undefined, DUAL_V4_V6).slots).to.deep.equal([
        { family: 'IPv4', field: 'spec.clusterIPs[0]' },
        { family: 'IPv6', field: 'spec.clusterIPs[1]' },
      ]);
    });

    it('RequireDualStack with one requested IPv6 requests it and picks an IPv4 second', () => {
      const spec: V1ServiceSpec = { ipFamilyPolicy: 'RequireDualStack', clusterIP: 'FD00:10:96::A' };
      expect(plan(svc(spec), undefined, DUAL_V4_V6).slots).to.deep.equal([
        { family: 'IPv6', field: 'spec.clusterIPs[0]', request: 'fd00:10:96::a' },
        { family: 'IPv4', field: 'spec.clusterIPs[1]' },
      ]);
    });

    it('two families without a policy are a FieldError naming spec.ipFamilyPolicy', () => {
      expect(fieldError(svc({ ipFamilies: ['IPv4', 'IPv6'] }), undefined, DUAL_V4_V6)).to.deep.equal({
        field: 'spec.ipFamilyPolicy',
        message:
          'must be RequireDualStack or PreferDualStack when multiple ipFamilies or clusterIPs are given',
      });
      expect(
        fieldError(svc({ clusterIPs: ['10.96.0.10', 'fd00:10:96::a'] }), undefined, DUAL_V4_V6).field,
      ).to.equal('spec.ipFamilyPolicy');
    });

    it('SingleStack with two families is a FieldError naming spec.ipFamilyPolicy', () => {
      const spec: V1ServiceSpec = { ipFamilyPolicy: 'SingleStack', ipFamilies: ['IPv4', 'IPv6'] };
      expect(fieldError(svc(spec), undefined, DUAL_V4_V6)).to.deep.equal({
        field: 'spec.ipFamilyPolicy',
        message: 'SingleStack allows one IP family; use PreferDualStack or RequireDualStack',
      });
    });
  });

  describe('refusals', () => {
    it('a family the cluster has no range for is a FieldError naming spec.ipFamilies[0]', () => {
      expect(fieldError(svc({ ipFamilies: ['IPv6'] }), undefined, SINGLE_V4)).to.deep.equal({
        field: 'spec.ipFamilies[0]',
        message: 'Invalid value: "IPv6": this cluster has no IPv6 service range (ranges: 10.96.0.0/16)',
      });
    });

    it('a requested IPv6 on an IPv4-only cluster names spec.ipFamilies[0]', () => {
      expect(fieldError(svc({ clusterIP: 'fd00:10:96::a' }), undefined, SINGLE_V4).field).to.equal(
        'spec.ipFamilies[0]',
      );
    });

    it('an unknown family is a FieldError', () => {
      expect(fieldError(svc({ ipFamilies: ['IPv5'] }), undefined, SINGLE_V4)).to.deep.equal({
        field: 'spec.ipFamilies[0]',
        message: 'Unsupported value: "IPv5": supported values: "IPv4", "IPv6"',
      });
    });

    it('an unknown policy is a FieldError', () => {
      expect(fieldError(svc({ ipFamilyPolicy: 'DualStack' }), undefined, SINGLE_V4)).to.deep.equal({
        field: 'spec.ipFamilyPolicy',
        message:
          'Unsupported value: "DualStack": supported values: "SingleStack", "PreferDualStack", "RequireDualStack"',
      });
    });

    it('a requested clusterIP that is no IP is a FieldError naming it', () => {
      expect(fieldError(svc({ clusterIP: '10.96.0.300' }), undefined, SINGLE_V4)).to.deep.equal({
        field: 'spec.clusterIPs[0]',
        message: 'Invalid value: "10.96.0.300": must be a valid IP address',
      });
    });

    it('clusterIP different from clusterIPs[0] is a FieldError', () => {
      const spec: V1ServiceSpec = { clusterIP: '10.96.0.10', clusterIPs: ['10.96.0.11'] };
      expect(fieldError(svc(spec), undefined, SINGLE_V4)).to.deep.equal({
        field: 'spec.clusterIPs[0]',
        message: 'must match spec.clusterIP (10.96.0.10)',
      });
    });

    it('an IP of another family than ipFamilies[0] is a FieldError naming the IP', () => {
      const spec: V1ServiceSpec = { ipFamilies: ['IPv4'], clusterIP: 'fd00:10:96::a' };
      expect(fieldError(svc(spec), undefined, DUAL_V4_V6)).to.deep.equal({
        field: 'spec.clusterIPs[0]',
        message: 'Invalid value: "fd00:10:96::a": expected an IPv4 address (spec.ipFamilies[0] is IPv4)',
      });
    });
  });

  describe('Services that hold no ClusterIP', () => {
    it('a headless Service (clusterIP None) needs none', () => {
      expect(planClusterIPs(svc({ clusterIP: 'None' }), undefined, SINGLE_V4)).to.equal(undefined);
      expect(planClusterIPs(svc({ clusterIPs: ['None'] }), undefined, SINGLE_V4)).to.equal(undefined);
    });

    it('an ExternalName Service needs none', () => {
      expect(
        planClusterIPs(svc({ type: 'ExternalName', externalName: 'example.com' }), undefined, SINGLE_V4),
      ).to.equal(undefined);
    });
  });
});

describe('heldClusterIPs', () => {
  it('lists clusterIPs, else clusterIP, and nothing for headless or ExternalName', () => {
    expect(heldClusterIPs(svc({ clusterIPs: ['10.96.0.10', 'fd00:10:96::a'] }))).to.deep.equal([
      '10.96.0.10',
      'fd00:10:96::a',
    ]);
    expect(heldClusterIPs(svc({ clusterIP: '10.96.0.10' }))).to.deep.equal(['10.96.0.10']);
    expect(heldClusterIPs(svc({ clusterIP: 'None' }))).to.deep.equal([]);
    expect(heldClusterIPs(svc({ type: 'ExternalName', clusterIP: '10.96.0.10' }))).to.deep.equal([]);
    expect(heldClusterIPs(undefined)).to.deep.equal([]);
  });
});

describe('clusterIPClaims', () => {
  const owner = { namespace: 'default', name: 'web' };

  it('on each map, a dual-stack Service claims its IP of that family, with its field', () => {
    const dual = svc({ clusterIPs: ['10.96.0.10', 'FD00:10:96::A'] });
    expect(clusterIPClaims(dual, V4, DUAL_V4_V6)).to.deep.equal([
      { owner, field: 'spec.clusterIPs[0]', text: '10.96.0.10', value: '10.96.0.10' },
    ]);
    expect(clusterIPClaims(dual, V6, DUAL_V4_V6)).to.deep.equal([
      { owner, field: 'spec.clusterIPs[1]', text: 'FD00:10:96::A', value: 'fd00:10:96::a' },
    ]);
  });

  it('an IP that is no IP is claimed on the primary map only, without a value', () => {
    const bad = svc({ clusterIPs: ['not-an-ip'] });
    expect(clusterIPClaims(bad, V4, DUAL_V4_V6)).to.deep.equal([
      { owner, field: 'spec.clusterIPs[0]', text: 'not-an-ip', value: undefined },
    ]);
    expect(clusterIPClaims(bad, V6, DUAL_V4_V6)).to.deep.equal([]);
  });

  it('an IP of a family not configured is claimed on the primary map as foreign', () => {
    expect(clusterIPClaims(svc({ clusterIP: 'fd00:10:96::a' }), V4, SINGLE_V4)).to.deep.equal([
      { owner, field: 'spec.clusterIPs[0]', text: 'fd00:10:96::a', value: 'fd00:10:96::a', foreign: true },
    ]);
  });

  it('headless and ExternalName Services claim nothing', () => {
    expect(clusterIPClaims(svc({ clusterIP: 'None' }), V4, SINGLE_V4)).to.deep.equal([]);
    expect(
      clusterIPClaims(svc({ type: 'ExternalName', clusterIP: '10.96.0.10' }), V4, SINGLE_V4),
    ).to.deep.equal([]);
  });
});

describe('releasedClusterIPs', () => {
  const held = svc({ clusterIPs: ['10.96.0.10', 'fd00:10:96::a'] });

  it('a deleted Service releases every IP it held, in canonical text', () => {
    expect(releasedClusterIPs(svc({ clusterIPs: ['010.96.0.10'] }), undefined)).to.deep.equal(['10.96.0.10']);
    expect(releasedClusterIPs(held, undefined)).to.deep.equal(['10.96.0.10', 'fd00:10:96::a']);
  });

  it('a change to ExternalName releases the ClusterIPs', () => {
    expect(
      releasedClusterIPs(held, svc({ type: 'ExternalName', externalName: 'example.com' })),
    ).to.deep.equal(['10.96.0.10', 'fd00:10:96::a']);
  });

  it('a downgrade to single-stack releases the secondary IP only', () => {
    expect(releasedClusterIPs(held, svc({ clusterIPs: ['10.96.0.10'] }))).to.deep.equal(['fd00:10:96::a']);
  });

  it('an update that keeps the IPs releases nothing', () => {
    expect(releasedClusterIPs(held, svc({ clusterIPs: ['10.96.0.10', 'fd00:10:96::a'] }))).to.deep.equal([]);
  });
});

describe('disallowedExternalIPs', () => {
  const withExternal = (...ips: string[]): V1Service => svc({ externalIPs: ips });

  it('with no policy (allowed undefined) refuses nothing', () => {
    expect(disallowedExternalIPs(withExternal('1.2.3.4', '8.8.8.8'), undefined, undefined)).to.deep.equal([]);
  });

  it('with an empty allow-list refuses every new externalIP, naming its field', () => {
    expect(disallowedExternalIPs(withExternal('1.2.3.4', '8.8.8.8'), undefined, [])).to.deep.equal([
      { field: 'spec.externalIPs[0]', ip: '1.2.3.4' },
      { field: 'spec.externalIPs[1]', ip: '8.8.8.8' },
    ]);
  });

  it('keeps externalIPs the old Service already had, refusing only the new one', () => {
    expect(
      disallowedExternalIPs(withExternal('1.2.3.4', '8.8.8.8'), withExternal('1.2.3.4'), []),
    ).to.deep.equal([{ field: 'spec.externalIPs[1]', ip: '8.8.8.8' }]);
  });

  it('allows addresses inside an allowed CIDR of the same family', () => {
    const allowed = ['192.168.0.0/16', '2001:db8::/32'];
    const result = disallowedExternalIPs(
      withExternal('192.168.10.1', '10.1.1.1', '2001:db8::5', '2001:db9::5', 'bogus'),
      undefined,
      allowed,
    );
    expect(result).to.deep.equal([
      { field: 'spec.externalIPs[1]', ip: '10.1.1.1' },
      { field: 'spec.externalIPs[3]', ip: '2001:db9::5' },
      { field: 'spec.externalIPs[4]', ip: 'bogus' },
    ]);
  });

  it('a Service without externalIPs is never refused', () => {
    expect(disallowedExternalIPs(svc({}), undefined, [])).to.deep.equal([]);
  });
});
