/**
 * The LoadBalancer part of the Service webhook: a Service of ours (type LoadBalancer, our class)
 * gets the cleanup finalizer in the request that creates it (or turns it into a LoadBalancer), so
 * the controller's first write is the status and there is only one.
 */
import type { V1Service } from '@kubernetes/client-node';
import type { JsonPatchOperation } from '../../shared/admission/review.ts';
import type { PartAdmission, ServiceAdmissionInput, ServiceAdmissionPart } from '../serviceadmission.ts';
import { unchanged } from '../serviceadmission.ts';
import { inScope, type Scope } from './desired.ts';
import { CLEANUP_FINALIZER } from './types.ts';

export class LoadBalancerAdmission implements ServiceAdmissionPart {
  readonly name = 'loadbalancer';
  private readonly scope: Scope;

  constructor(scope: Scope) {
    this.scope = scope;
  }

  admit(input: ServiceAdmissionInput): Promise<PartAdmission> {
    const svc = input.service;
    const finalizers = svc.metadata?.finalizers;
    if (
      !inScope(svc, this.scope) ||
      svc.metadata?.deletionTimestamp ||
      finalizers?.includes(CLEANUP_FINALIZER)
    ) {
      return Promise.resolve(unchanged(svc));
    }
    const patch: JsonPatchOperation[] = finalizers
      ? [{ op: 'add', path: '/metadata/finalizers/-', value: CLEANUP_FINALIZER }]
      : [{ op: 'add', path: '/metadata/finalizers', value: [CLEANUP_FINALIZER] }];
    const service: V1Service = {
      ...svc,
      metadata: { ...svc.metadata, finalizers: [...(finalizers ?? []), CLEANUP_FINALIZER] },
    };
    return Promise.resolve({ allowed: true, patch, service, rollback: () => Promise.resolve() });
  }
}
