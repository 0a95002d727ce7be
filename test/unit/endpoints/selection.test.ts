import type { V1Pod, V1Service } from '@kubernetes/client-node';
import { expect } from 'chai';
import { prng } from '../../../bench/workload.ts';
import {
  POD_LABEL_INDEX,
  podLabelIndex,
  podsSelectedBy,
  SERVICE_SELECTOR_INDEX,
  serviceSelectorIndex,
  servicesSelecting,
} from '../../../shared/endpoints/selection.ts';
import { Store } from '../../../shared/informer/store.ts';
import { keyOf, serviceSelectorMatches } from '../../../shared/kube/labels.ts';

const NAMESPACES = ['a', 'b'];
const KEYS = ['app', 'tier', 'track', 'example.com/team'];
const VALUES = ['x', 'y', 'z', ''];

function pick<T>(random: () => number, list: readonly T[]): T {
  return list[Math.floor(random() * list.length)];
}

/** 0-3 pairs of random keys and values. */
function randomLabels(random: () => number): Record<string, string> {
  const labels: Record<string, string> = {};
  const n = Math.floor(random() * 4);
  for (let i = 0; i < n; i++) labels[pick(random, KEYS)] = pick(random, VALUES);
  return labels;
}

function pod(name: string, namespace: string, labels: Record<string, string> | undefined): V1Pod {
  return { metadata: { name, namespace, ...(labels ? { labels } : {}) } };
}

function service(name: string, namespace: string, selector: Record<string, string> | undefined): V1Service {
  return { metadata: { name, namespace }, spec: selector ? { selector } : {} };
}

/** The answer of a scan of the namespace, as upstream computes it. */
function scanPods(svc: V1Service, pods: Store<V1Pod>): string[] {
  return pods
    .list()
    .filter((p) => p.metadata?.namespace === svc.metadata?.namespace)
    .filter((p) => serviceSelectorMatches(svc.spec?.selector, p.metadata?.labels))
    .map(keyOf)
    .sort();
}

function scanServices(p: V1Pod, services: Store<V1Service>): string[] {
  return services
    .list()
    .filter((s) => s.metadata?.namespace === p.metadata?.namespace)
    .filter((s) => serviceSelectorMatches(s.spec?.selector, p.metadata?.labels))
    .map(keyOf)
    .sort();
}

describe('Pod and Service selection through indexes', () => {
  it('a two-key selector returns only the pods carrying both pairs, in its own namespace', () => {
    const pods = new Store<V1Pod>({ [POD_LABEL_INDEX]: podLabelIndex });
    pods.upsert(pod('both', 'a', { app: 'x', tier: 'web' }));
    pods.upsert(pod('app-only', 'a', { app: 'x' }));
    pods.upsert(pod('other-ns', 'b', { app: 'x', tier: 'web' }));
    pods.upsert(pod('no-labels', 'a', undefined));
    const selected = podsSelectedBy(service('s', 'a', { app: 'x', tier: 'web' }), pods);
    expect(selected.map(keyOf)).to.deep.equal(['a/both']);
  });

  it('an absent or empty selector selects no pod, and no pod selects it', () => {
    const pods = new Store<V1Pod>({ [POD_LABEL_INDEX]: podLabelIndex });
    const services = new Store<V1Service>({ [SERVICE_SELECTOR_INDEX]: serviceSelectorIndex });
    const p = pod('p', 'a', { app: 'x' });
    pods.upsert(p);
    services.upsert(service('none', 'a', undefined));
    services.upsert(service('empty', 'a', {}));
    expect(podsSelectedBy(service('none', 'a', undefined), pods)).to.deep.equal([]);
    expect(podsSelectedBy(service('empty', 'a', {}), pods)).to.deep.equal([]);
    expect([...servicesSelecting(p, services)]).to.deep.equal([]);
  });

  it('a selector value "" needs the label present with an empty value', () => {
    const pods = new Store<V1Pod>({ [POD_LABEL_INDEX]: podLabelIndex });
    pods.upsert(pod('empty-value', 'a', { app: '' }));
    pods.upsert(pod('missing', 'a', { tier: 'x' }));
    expect(podsSelectedBy(service('s', 'a', { app: '' }), pods).map(keyOf)).to.deep.equal(['a/empty-value']);
  });

  it('answers as a namespace scan does through 2,000 seeded adds, label changes and deletes', () => {
    const random = prng(20261124);
    const pods = new Store<V1Pod>({ [POD_LABEL_INDEX]: podLabelIndex });
    const services = new Store<V1Service>({ [SERVICE_SELECTOR_INDEX]: serviceSelectorIndex });
    for (let step = 0; step < 2000; step++) {
      const namespace = pick(random, NAMESPACES);
      const roll = random();
      if (roll < 0.55) {
        pods.upsert(pod(`p${Math.floor(random() * 60)}`, namespace, randomLabels(random)));
      } else if (roll < 0.75) {
        const selector = random() < 0.1 ? undefined : randomLabels(random);
        services.upsert(service(`s${Math.floor(random() * 15)}`, namespace, selector));
      } else if (roll < 0.9) {
        pods.delete(`${namespace}/p${Math.floor(random() * 60)}`);
      } else {
        services.delete(`${namespace}/s${Math.floor(random() * 15)}`);
      }
      for (const svc of services.list()) {
        expect(
          podsSelectedBy(svc, pods).map(keyOf).sort(),
          `pods of ${keyOf(svc)} at step ${step}`,
        ).to.deep.equal(scanPods(svc, pods));
      }
      for (const p of pods.list()) {
        expect(
          [...servicesSelecting(p, services)].sort(),
          `services of ${keyOf(p)} at step ${step}`,
        ).to.deep.equal(scanServices(p, services));
      }
    }
  });
});
