import { expect } from 'chai';
import type { V1Service } from '@kubernetes/client-node';
import type { AdmissionRequest } from '../../../shared/admission/review.ts';
import { nopLogger } from '../../../shared/log.ts';
import {
  invalid,
  type PartAdmission,
  type PartDenial,
  ServiceAdmission,
  type ServiceAdmissionInput,
  type ServiceAdmissionPart,
} from '../../../controllers/serviceadmission.ts';

function request(
  operation: AdmissionRequest['operation'],
  object: V1Service,
  dryRun = false,
): AdmissionRequest {
  return {
    uid: 'u1',
    kind: { group: '', version: 'v1', kind: 'Service' },
    resource: { group: '', version: 'v1', resource: 'services' },
    operation,
    object,
    dryRun,
  };
}

/** A part that sets spec.clusterIP (or denies) and records what it saw and whether it was rolled back. */
class FakePart implements ServiceAdmissionPart {
  readonly name: string;
  seen: ServiceAdmissionInput[] = [];
  rolledBack = 0;
  private readonly outcome: 'allow' | 'deny' | 'throw';
  private readonly field: string;

  constructor(name: string, outcome: 'allow' | 'deny' | 'throw', field = 'clusterIP') {
    this.name = name;
    this.outcome = outcome;
    this.field = field;
  }

  admit(input: ServiceAdmissionInput): Promise<PartAdmission | PartDenial> {
    this.seen.push(input);
    if (this.outcome === 'throw') return Promise.reject(new Error(`${this.name} broke`));
    if (this.outcome === 'deny') return Promise.resolve(invalid(`spec.${this.field}`, 'no'));
    const service = structuredClone(input.service);
    service.spec = { ...service.spec, [this.field]: this.name };
    return Promise.resolve({
      allowed: true,
      patch: [{ op: 'add', path: `/spec/${this.field}`, value: this.name }],
      service,
      rollback: () => {
        this.rolledBack++;
        return Promise.resolve();
      },
    });
  }
}

describe('ServiceAdmission (the one Service webhook)', () => {
  const svc: V1Service = { metadata: { name: 's', namespace: 'n' }, spec: { ports: [{ port: 80 }] } };

  it('runs the parts in order, each seeing the Service as the ones before left it, and joins their patches', async () => {
    const a = new FakePart('a', 'allow', 'clusterIP');
    const b = new FakePart('b', 'allow', 'loadBalancerIP');
    const admission = new ServiceAdmission();
    admission.add(a);
    admission.add(b);
    const result = await admission.handler(nopLogger)(
      request('CREATE', svc, true),
      new AbortController().signal,
    );
    expect(result).to.deep.equal({
      allowed: true,
      patch: [
        { op: 'add', path: '/spec/clusterIP', value: 'a' },
        { op: 'add', path: '/spec/loadBalancerIP', value: 'b' },
      ],
    });
    expect(b.seen[0].service.spec?.clusterIP).to.equal('a');
    expect(b.seen[0].dryRun).to.equal(true);
  });

  it('a denial by a later part rolls back what the earlier parts allocated, and is the answer', async () => {
    const a = new FakePart('a', 'allow');
    const b = new FakePart('b', 'deny', 'ports');
    const admission = new ServiceAdmission();
    admission.add(a);
    admission.add(b);
    const result = await admission.handler(nopLogger)(request('CREATE', svc), new AbortController().signal);
    expect(result).to.deep.equal({ allowed: false, code: 422, reason: 'Invalid', message: 'spec.ports: no' });
    expect(a.rolledBack).to.equal(1);
  });

  it('a part that throws rolls back the earlier parts and the error goes to the server (a 500 answer)', async () => {
    const a = new FakePart('a', 'allow');
    const admission = new ServiceAdmission();
    admission.add(a);
    admission.add(new FakePart('b', 'throw'));
    let err: unknown;
    try {
      await admission.handler(nopLogger)(request('CREATE', svc), new AbortController().signal);
    } catch (e) {
      err = e;
    }
    expect((err as Error).message).to.equal('b broke');
    expect(a.rolledBack).to.equal(1);
  });

  it('DELETE and non-Service requests are allowed untouched', async () => {
    const a = new FakePart('a', 'allow');
    const admission = new ServiceAdmission();
    admission.add(a);
    const handler = admission.handler(nopLogger);
    expect(await handler(request('DELETE', svc), new AbortController().signal)).to.deep.equal({
      allowed: true,
    });
    const other = { ...request('CREATE', svc), kind: { group: '', version: 'v1', kind: 'ConfigMap' } };
    expect(await handler(other, new AbortController().signal)).to.deep.equal({ allowed: true });
    expect(a.seen).to.have.length(0);
  });
});
