import { expect } from 'chai';
import type { V1Pod, V1Service } from '@kubernetes/client-node';
import {
  podUpdateMatters,
  servicesSelectingPod,
  servicesToSyncOnPodUpdate,
} from '../../../shared/endpoints/predicates.ts';
import { InvalidKeyError, objectKey, parseKey, serviceSelectorMatches } from '../../../shared/kube/labels.ts';

interface PodOptions {
  resourceVersion?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ready?: boolean;
  ips?: string[];
  node?: string;
  hostname?: string;
  subdomain?: string;
  phase?: string;
  deletionTimestamp?: Date;
}

function makePod(o: PodOptions = {}): V1Pod {
  return {
    metadata: {
      name: 'p',
      namespace: 'n',
      uid: 'uid-p',
      resourceVersion: o.resourceVersion ?? '1',
      labels: o.labels ?? { app: 'a' },
      ...(o.annotations ? { annotations: o.annotations } : {}),
      ...(o.deletionTimestamp ? { deletionTimestamp: o.deletionTimestamp } : {}),
    },
    spec: {
      nodeName: o.node ?? 'node-1',
      containers: [{ name: 'main' }],
      ...(o.hostname ? { hostname: o.hostname } : {}),
      ...(o.subdomain ? { subdomain: o.subdomain } : {}),
    },
    status: {
      phase: o.phase ?? 'Running',
      podIP: (o.ips ?? ['10.0.0.1'])[0],
      podIPs: (o.ips ?? ['10.0.0.1']).map((ip) => ({ ip })),
      conditions: [{ type: 'Ready', status: o.ready === false ? 'False' : 'True' }],
    },
  };
}

/** The same pod as `makePod(o)`, one resourceVersion later. */
function next(o: PodOptions = {}): V1Pod {
  return makePod({ resourceVersion: '2', ...o });
}

function makeService(name: string, selector?: Record<string, string>, namespace = 'n'): V1Service {
  return {
    metadata: { name, namespace },
    spec: { ...(selector ? { selector } : {}), ports: [{ port: 80 }] },
  };
}

const services = [
  makeService('svc-a', { app: 'a' }),
  makeService('svc-b', { app: 'b' }),
  makeService('svc-a-web', { app: 'a', tier: 'web' }),
  makeService('svc-all-a-elsewhere', { app: 'a' }, 'other'),
  makeService('selectorless'),
  makeService('empty-selector', {}),
];

describe('podUpdateMatters', () => {
  const t1 = new Date('2026-01-02T03:04:05Z');
  const t2 = new Date('2026-01-02T03:04:35Z');

  const cases: { name: string; old: V1Pod; cur: V1Pod; want: boolean }[] = [
    {
      name: 'a resync with the same resourceVersion does not matter, whatever differs',
      old: makePod(),
      cur: makePod({ labels: { app: 'b' }, ready: false }),
      want: false,
    },
    {
      name: 'an annotation-only change does not matter',
      old: makePod(),
      cur: next({ annotations: { note: 'x' } }),
      want: false,
    },
    {
      name: 'a phase change that is not terminal does not matter',
      old: makePod({ phase: 'Pending' }),
      cur: next({ phase: 'Running' }),
      want: false,
    },
    {
      name: 'a deletion timestamp being set matters',
      old: makePod(),
      cur: next({ deletionTimestamp: t1 }),
      want: true,
    },
    {
      name: 'a deletion timestamp moving matters',
      old: makePod({ deletionTimestamp: t1 }),
      cur: next({ deletionTimestamp: t2 }),
      want: true,
    },
    {
      name: 'the same deletion timestamp in a new Date object does not matter',
      old: makePod({ deletionTimestamp: new Date(t1) }),
      cur: next({ deletionTimestamp: new Date(t1) }),
      want: false,
    },
    { name: 'Ready flipping to false matters', old: makePod(), cur: next({ ready: false }), want: true },
    { name: 'Ready flipping to true matters', old: makePod({ ready: false }), cur: next(), want: true },
    {
      name: 'a pod IP change matters',
      old: makePod({ ips: ['10.0.0.1'] }),
      cur: next({ ips: ['10.0.0.2'] }),
      want: true,
    },
    {
      name: 'a second pod IP appearing matters',
      old: makePod({ ips: ['10.0.0.1'] }),
      cur: next({ ips: ['10.0.0.1', 'fd00::1'] }),
      want: true,
    },
    { name: 'a node name change matters', old: makePod(), cur: next({ node: 'node-2' }), want: true },
    {
      name: 'a label change matters',
      old: makePod(),
      cur: next({ labels: { app: 'a', v: '2' } }),
      want: true,
    },
    { name: 'a hostname change matters', old: makePod(), cur: next({ hostname: 'web-0' }), want: true },
    { name: 'a subdomain change matters', old: makePod(), cur: next({ subdomain: 's' }), want: true },
    {
      name: 'a phase change into Failed matters',
      old: makePod(),
      cur: next({ phase: 'Failed' }),
      want: true,
    },
    {
      name: 'a phase change into Succeeded matters',
      old: makePod(),
      cur: next({ phase: 'Succeeded' }),
      want: true,
    },
  ];

  for (const c of cases) {
    it(c.name, () => {
      expect(podUpdateMatters(c.old, c.cur)).to.equal(c.want);
    });
  }

  it('never takes hand-built pods without resourceVersion for a resync', () => {
    const old = makePod();
    const cur = makePod({ ready: false });
    delete old.metadata?.resourceVersion;
    delete cur.metadata?.resourceVersion;
    expect(podUpdateMatters(old, cur)).to.equal(true);
  });
});

describe('servicesToSyncOnPodUpdate', () => {
  const sorted = (keys: Set<string>) => [...keys].sort();

  it('returns nothing for an update that does not matter', () => {
    expect(
      sorted(servicesToSyncOnPodUpdate(makePod(), next({ annotations: { a: 'b' } }), services)),
    ).to.deep.equal([]);
  });

  it('returns nothing for a resync, even when labels differ', () => {
    expect(
      sorted(servicesToSyncOnPodUpdate(makePod(), makePod({ labels: { app: 'b' } }), services)),
    ).to.deep.equal([]);
  });

  it('returns the Services selecting the pod when only its endpoint fields change', () => {
    const cur = next({ ready: false, labels: { app: 'a', tier: 'web' } });
    const old = makePod({ labels: { app: 'a', tier: 'web' } });
    expect(sorted(servicesToSyncOnPodUpdate(old, cur, services))).to.deep.equal(['n/svc-a', 'n/svc-a-web']);
  });

  it('returns the Services that gained or lost the pod when only its labels change', () => {
    expect(
      sorted(servicesToSyncOnPodUpdate(makePod(), next({ labels: { app: 'b' } }), services)),
    ).to.deep.equal(['n/svc-a', 'n/svc-b']);
    expect(
      sorted(servicesToSyncOnPodUpdate(makePod(), next({ labels: { app: 'a', tier: 'web' } }), services)),
    ).to.deep.equal(['n/svc-a-web']);
  });

  it('13: returns nothing for a label change that keeps membership', () => {
    expect(
      sorted(servicesToSyncOnPodUpdate(makePod(), next({ labels: { app: 'a', extra: 'x' } }), services)),
    ).to.deep.equal([]);
  });

  it('returns the union of old and new Services when labels and endpoint fields both change', () => {
    const cur = next({ labels: { app: 'a', tier: 'web' }, ready: false });
    expect(sorted(servicesToSyncOnPodUpdate(makePod(), cur, services))).to.deep.equal([
      'n/svc-a',
      'n/svc-a-web',
    ]);
  });

  it('returns the Services of a pod whose hostname changes (an endpoint field, not membership)', () => {
    expect(sorted(servicesToSyncOnPodUpdate(makePod(), next({ hostname: 'web-0' }), services))).to.deep.equal(
      ['n/svc-a'],
    );
  });
});

describe('servicesSelectingPod', () => {
  it('matches Services of the pod namespace only, and never selector-less or empty-selector ones', () => {
    expect(
      [...servicesSelectingPod(makePod({ labels: { app: 'a', tier: 'web' } }), services)].sort(),
    ).to.deep.equal(['n/svc-a', 'n/svc-a-web']);
  });

  it('matches nothing for a pod without labels', () => {
    const pod = makePod();
    delete pod.metadata?.labels;
    expect(servicesSelectingPod(pod, services).size).to.equal(0);
  });
});

describe('serviceSelectorMatches and keys', () => {
  it('an absent or empty selector matches nothing, unlike a generic label selector', () => {
    expect(serviceSelectorMatches(undefined, { app: 'a' })).to.equal(false);
    expect(serviceSelectorMatches({}, { app: 'a' })).to.equal(false);
  });

  it('every selector entry must be present with the same value', () => {
    expect(serviceSelectorMatches({ app: 'a' }, { app: 'a', x: 'y' })).to.equal(true);
    expect(serviceSelectorMatches({ app: 'a', tier: 'web' }, { app: 'a' })).to.equal(false);
    expect(serviceSelectorMatches({ app: 'a' }, { app: 'b' })).to.equal(false);
    expect(serviceSelectorMatches({ app: '' }, {})).to.equal(false);
    expect(serviceSelectorMatches({ app: '' }, { app: '' })).to.equal(true);
    expect(serviceSelectorMatches({ app: 'a' }, undefined)).to.equal(false);
  });

  it('objectKey and parseKey round-trip namespaced and cluster-scoped keys and reject others', () => {
    expect(objectKey('n', 's')).to.equal('n/s');
    expect(objectKey('', 'node-1')).to.equal('node-1');
    expect(parseKey('n/s')).to.deep.equal({ namespace: 'n', name: 's' });
    expect(parseKey('node-1')).to.deep.equal({ namespace: '', name: 'node-1' });
    for (const bad of ['', 'a/b/c', '/s', 'n/']) expect(() => parseKey(bad)).to.throw(InvalidKeyError);
  });
});
