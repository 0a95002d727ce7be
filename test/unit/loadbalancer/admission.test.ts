import { expect } from 'chai';
import type { V1Service } from '@kubernetes/client-node';
import { LoadBalancerAdmission } from '../../../controllers/loadbalancer/admission.ts';
import type { PartAdmission, PartDenial } from '../../../controllers/serviceadmission.ts';

const FINALIZER = 'service.kubernetes.io/load-balancer-cleanup';
const DEFAULT_SCOPE = { loadBalancerClass: '', defaultLoadBalancer: false };

function service(spec: Partial<NonNullable<V1Service['spec']>> = {}, finalizers?: string[]): V1Service {
  return {
    metadata: { name: 's', namespace: 'n', ...(finalizers ? { finalizers } : {}) },
    spec: { type: 'LoadBalancer', ports: [{ port: 80, protocol: 'TCP' }], ...spec },
  };
}

function admit(
  svc: V1Service,
  scope = DEFAULT_SCOPE,
  operation: 'CREATE' | 'UPDATE' = 'CREATE',
): Promise<PartAdmission | PartDenial> {
  return new LoadBalancerAdmission(scope).admit({
    operation,
    service: svc,
    old: undefined,
    dryRun: false,
    signal: new AbortController().signal,
  });
}

function allowed(result: PartAdmission | PartDenial): PartAdmission {
  if (!result.allowed) throw new Error(`denied: ${result.message}`);
  return result;
}

describe('LoadBalancer admission', () => {
  it('is named loadbalancer', () => {
    expect(new LoadBalancerAdmission(DEFAULT_SCOPE).name).to.equal('loadbalancer');
  });

  it('a LoadBalancer Service without finalizers gets the cleanup finalizer as a new list', async () => {
    const svc = service();
    const result = allowed(await admit(svc));
    expect(result.patch).to.deep.equal([{ op: 'add', path: '/metadata/finalizers', value: [FINALIZER] }]);
    expect(result.service).to.deep.equal({
      metadata: { name: 's', namespace: 'n', finalizers: [FINALIZER] },
      spec: svc.spec,
    });
    expect(svc.metadata?.finalizers).to.equal(undefined);
    await result.rollback();
  });

  it('a LoadBalancer Service with other finalizers gets the cleanup finalizer appended', async () => {
    const svc = service({}, ['example.com/keep']);
    const result = allowed(await admit(svc));
    expect(result.patch).to.deep.equal([{ op: 'add', path: '/metadata/finalizers/-', value: FINALIZER }]);
    expect(result.service.metadata?.finalizers).to.deep.equal(['example.com/keep', FINALIZER]);
    expect(svc.metadata?.finalizers).to.deep.equal(['example.com/keep']);
  });

  it('an empty finalizer list present gets the finalizer appended', async () => {
    const result = allowed(await admit(service({}, [])));
    expect(result.patch).to.deep.equal([{ op: 'add', path: '/metadata/finalizers/-', value: FINALIZER }]);
    expect(result.service.metadata?.finalizers).to.deep.equal([FINALIZER]);
  });

  it('an update turning a Service into a LoadBalancer of ours gets the finalizer', async () => {
    const result = allowed(await admit(service(), DEFAULT_SCOPE, 'UPDATE'));
    expect(result.patch).to.deep.equal([{ op: 'add', path: '/metadata/finalizers', value: [FINALIZER] }]);
  });

  it('with a configured class, a Service naming that class gets the finalizer', async () => {
    const result = allowed(
      await admit(service({ loadBalancerClass: 'scm.dev/lb' }), {
        loadBalancerClass: 'scm.dev/lb',
        defaultLoadBalancer: false,
      }),
    );
    expect(result.patch).to.deep.equal([{ op: 'add', path: '/metadata/finalizers', value: [FINALIZER] }]);
  });

  const untouched: { name: string; svc: V1Service; scope?: typeof DEFAULT_SCOPE }[] = [
    { name: 'a Service of another loadBalancerClass', svc: service({ loadBalancerClass: 'other.io/lb' }) },
    { name: 'a ClusterIP Service', svc: service({ type: 'ClusterIP' }) },
    { name: 'a NodePort Service', svc: service({ type: 'NodePort' }) },
    {
      name: 'a class-less Service when our class is set and we are not the default',
      svc: service(),
      scope: { loadBalancerClass: 'scm.dev/lb', defaultLoadBalancer: false },
    },
    { name: 'a Service that already has the finalizer', svc: service({}, ['a/b', FINALIZER]) },
    {
      name: 'a Service being deleted',
      svc: { ...service(), metadata: { name: 's', namespace: 'n', deletionTimestamp: new Date() } },
    },
  ];
  for (const c of untouched) {
    it(`${c.name} is left unchanged`, async () => {
      const result = allowed(await admit(c.svc, c.scope));
      expect(result.patch).to.deep.equal([]);
      expect(result.service).to.equal(c.svc);
    });
  }
});
