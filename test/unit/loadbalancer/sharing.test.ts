import { expect } from 'chai';
import type { V1Service, V1ServicePort } from '@kubernetes/client-node';
import {
  type SharingProfile,
  sharingConflict,
  sharingConflictWithAll,
  sharingProfile,
} from '../../../controllers/loadbalancer/sharing.ts';

interface Shape {
  key?: string;
  ports?: V1ServicePort[];
  local?: boolean;
  selector?: Record<string, string>;
}

function service({ key, ports = [{ port: 80, protocol: 'TCP' }], local, selector }: Shape): V1Service {
  return {
    metadata: {
      name: 's',
      namespace: 'n',
      ...(key !== undefined ? { annotations: { 'scm.dev/allow-shared-ip': key } } : {}),
    },
    spec: {
      type: 'LoadBalancer',
      ports,
      ...(local ? { externalTrafficPolicy: 'Local' } : {}),
      ...(selector ? { selector } : {}),
    },
  };
}

const profile = (name: string, shape: Shape): SharingProfile => sharingProfile(`n/${name}`, service(shape));

describe('LoadBalancer sharing: sharingProfile', () => {
  it('reads the key, the (protocol, port) pairs, the traffic policy and the selector in canonical form', () => {
    const p = sharingProfile(
      'n/a',
      service({
        key: ' k1 ',
        ports: [{ port: 80 }, { port: 53, protocol: 'UDP' }],
        local: true,
        selector: { z: '1', a: '2' },
      }),
    );
    expect(p).to.deep.equal({
      key: 'n/a',
      sharingKey: 'k1',
      ports: ['TCP/80', 'UDP/53'],
      externalTrafficLocal: true,
      selector: '{"a":"2","z":"1"}',
    });
  });

  it('an empty or blank key is no key; no selector is {}', () => {
    expect(sharingProfile('n/a', service({ key: '  ', ports: [] }))).to.deep.equal({
      key: 'n/a',
      sharingKey: undefined,
      ports: [],
      externalTrafficLocal: false,
      selector: '{}',
    });
  });
});

describe('LoadBalancer sharing: sharingConflict', () => {
  const cases: { name: string; a: Shape; b: Shape; conflict: string | undefined }[] = [
    {
      name: 'same key, 80/TCP and 443/TCP: may share',
      a: { key: 'k', ports: [{ port: 80, protocol: 'TCP' }] },
      b: { key: 'k', ports: [{ port: 443, protocol: 'TCP' }] },
      conflict: undefined,
    },
    {
      name: 'same key, 53/TCP and 53/UDP: may share (the pairs differ)',
      a: { key: 'k', ports: [{ port: 53, protocol: 'TCP' }] },
      b: { key: 'k', ports: [{ port: 53, protocol: 'UDP' }] },
      conflict: undefined,
    },
    {
      name: 'same key, both 80/TCP: the port collides',
      a: { key: 'k', ports: [{ port: 80, protocol: 'TCP' }] },
      b: { key: 'k', ports: [{ port: 8080 }, { port: 80 }] },
      conflict: 'n/b shares the key but also uses port TCP/80',
    },
    {
      name: 'different keys: no sharing',
      a: { key: 'k1', ports: [{ port: 80 }] },
      b: { key: 'k2', ports: [{ port: 443 }] },
      conflict: 'n/b holds it with sharing key "k2", not "k1"',
    },
    {
      name: 'this Service has no key',
      a: { ports: [{ port: 80 }] },
      b: { key: 'k', ports: [{ port: 443 }] },
      conflict: 'n/b holds it and this Service has no scm.dev/allow-shared-ip key',
    },
    {
      name: 'the holder has no key',
      a: { key: 'k', ports: [{ port: 80 }] },
      b: { ports: [{ port: 443 }] },
      conflict: 'n/b holds it and it has no scm.dev/allow-shared-ip key',
    },
    {
      name: 'externalTrafficPolicy Local with different selectors: conflict',
      a: { key: 'k', ports: [{ port: 80 }], local: true, selector: { app: 'a' } },
      b: { key: 'k', ports: [{ port: 443 }], selector: { app: 'b' } },
      conflict: 'n/b shares the key but with externalTrafficPolicy Local both must select the same pods',
    },
    {
      name: 'externalTrafficPolicy Local on the holder only, different selectors: conflict',
      a: { key: 'k', ports: [{ port: 80 }], selector: { app: 'a' } },
      b: { key: 'k', ports: [{ port: 443 }], local: true, selector: { app: 'b' } },
      conflict: 'n/b shares the key but with externalTrafficPolicy Local both must select the same pods',
    },
    {
      name: 'externalTrafficPolicy Local with equal selectors (keys in any order): may share',
      a: { key: 'k', ports: [{ port: 80 }], local: true, selector: { app: 'a', tier: 'web' } },
      b: { key: 'k', ports: [{ port: 443 }], local: true, selector: { tier: 'web', app: 'a' } },
      conflict: undefined,
    },
    {
      name: 'externalTrafficPolicy Cluster with different selectors: may share',
      a: { key: 'k', ports: [{ port: 80 }], selector: { app: 'a' } },
      b: { key: 'k', ports: [{ port: 443 }], selector: { app: 'b' } },
      conflict: undefined,
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(sharingConflict(profile('a', c.a), profile('b', c.b))).to.equal(c.conflict);
    });
  }
});

describe('LoadBalancer sharing: sharingConflictWithAll', () => {
  const a = profile('a', { key: 'k', ports: [{ port: 80 }] });
  const b = profile('b', { key: 'k', ports: [{ port: 443 }] });
  const c = profile('c', { key: 'k', ports: [{ port: 80 }] });

  it('no holders: may share', () => {
    expect(sharingConflictWithAll(c, [])).to.equal(undefined);
  });

  it('compatible with every holder: may share', () => {
    expect(sharingConflictWithAll(profile('d', { key: 'k', ports: [{ port: 22 }] }), [a, b])).to.equal(
      undefined,
    );
  });

  it('a clash with any one holder is reported', () => {
    expect(sharingConflictWithAll(c, [b, a])).to.equal('n/a shares the key but also uses port TCP/80');
  });

  it('the Service itself among the holders is skipped', () => {
    const aAgain = profile('a', { key: 'k', ports: [{ port: 80 }] });
    expect(sharingConflictWithAll(aAgain, [a, b])).to.equal(undefined);
    expect(sharingConflictWithAll(profile('a', { ports: [{ port: 80 }] }), [a])).to.equal(undefined);
  });
});
