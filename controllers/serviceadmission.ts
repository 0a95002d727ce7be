/**
 * The one mutating webhook for Services (`/mutate-v1-service`, CREATE and UPDATE): the ClusterIP and
 * NodePort controllers each add a part, and the parts run in order on every request. A part fills
 * what the Service needs from its maps and returns the JSON patch; when a later part refuses the
 * request, the values the earlier ones allocated for it are released again, so a denied create
 * leaves nothing allocated. (A create the API server fails after we allowed it leaves its values
 * to the repair loop, which frees them on its third pass.)
 *
 * It serves on every replica: the maps are compare-and-swap objects, so no leader is needed.
 */
import type { V1Service } from '@kubernetes/client-node';
import type {
  AdmissionHandler,
  AdmissionRequest,
  AdmissionResult,
  JsonPatchOperation,
} from '../shared/admission/review.ts';
import type { MapUnavailableError } from '../shared/allocator/committer.ts';
import { describeError } from '../shared/kube/errors.ts';
import type { Logger } from '../shared/log.ts';

export const SERVICE_WEBHOOK_PATH = '/mutate-v1-service';

export interface ServiceAdmissionInput {
  operation: 'CREATE' | 'UPDATE';
  /** The Service as the earlier parts left it (their patches applied). */
  service: V1Service;
  old: V1Service | undefined;
  dryRun: boolean;
  signal: AbortSignal;
}

export interface PartDenial {
  allowed: false;
  code: number;
  reason: string;
  message: string;
}

export interface PartAdmission {
  allowed: true;
  patch: JsonPatchOperation[];
  /** The Service with this part's changes, for the parts after it. */
  service: V1Service;
  /** Frees what this part allocated for the request (it is being denied). */
  rollback: () => Promise<void>;
}

export interface ServiceAdmissionPart {
  name: string;
  admit(input: ServiceAdmissionInput): Promise<PartAdmission | PartDenial>;
}

/** Field errors are 422 Invalid, as the API server answers them. */
export function invalid(field: string, message: string): PartDenial {
  return { allowed: false, code: 422, reason: 'Invalid', message: `${field}: ${message}` };
}

/** The map cannot serve yet (missing, being rebuilt): 503, the client may retry. */
export function mapUnavailable(err: MapUnavailableError): PartDenial {
  return { allowed: false, code: 503, reason: 'ServiceUnavailable', message: err.message };
}

/**
 * No free value: a 403 naming the range and how to see its use (the API server answers this with a
 * 500, which clients retry as if it were transient).
 */
export function rangeFull(mapName: string, range: string, what: string): PartDenial {
  return {
    allowed: false,
    code: 403,
    reason: 'Forbidden',
    message:
      `no free ${what} in ${range}: the range is full. See its use with ` +
      `\`kubectl get rangeallocations ${mapName}\`; delete unused Services or widen the range`,
  };
}

/** Admitted with nothing to change (and nothing to roll back). */
export function unchanged(service: V1Service): PartAdmission {
  return { allowed: true, patch: [], service, rollback: () => Promise.resolve() };
}

export class ServiceAdmission {
  private readonly parts: ServiceAdmissionPart[] = [];

  add(part: ServiceAdmissionPart): void {
    this.parts.push(part);
  }

  handler(log: Logger): AdmissionHandler {
    return (request, signal) => this.admit(request, signal, log);
  }

  private async admit(request: AdmissionRequest, signal: AbortSignal, log: Logger): Promise<AdmissionResult> {
    if (request.operation !== 'CREATE' && request.operation !== 'UPDATE') return { allowed: true };
    if (request.kind.kind !== 'Service' || request.object === undefined) return { allowed: true };
    let service = structuredClone(request.object) as V1Service;
    const old = request.oldObject as V1Service | undefined;
    const patch: JsonPatchOperation[] = [];
    const admitted: PartAdmission[] = [];
    for (const part of this.parts) {
      let outcome: PartAdmission | PartDenial;
      try {
        outcome = await part.admit({
          operation: request.operation,
          service,
          old,
          dryRun: request.dryRun === true,
          signal,
        });
      } catch (err) {
        await rollback(admitted, log);
        throw err;
      }
      if (!outcome.allowed) {
        await rollback(admitted, log);
        return outcome;
      }
      admitted.push(outcome);
      patch.push(...outcome.patch);
      service = outcome.service;
    }
    return { allowed: true, patch };
  }
}

async function rollback(parts: PartAdmission[], log: Logger): Promise<void> {
  for (const part of parts.reverse()) {
    try {
      await part.rollback();
    } catch (err) {
      // The repair loop frees it on its third pass.
      log.error('could not release values of a denied request; the repair loop will', err, {
        err: describeError(err),
      });
    }
  }
}
