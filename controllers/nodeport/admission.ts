/**
 * The NodePort part of the Service webhook: fills each port's `nodePort` and the
 * `healthCheckNodePort` from the node port map, checks requested values, and commits them all in
 * one operation on the map (so a Service gets every port it needs or none).
 */
import type { V1Service } from '@kubernetes/client-node';
import {
  MapUnavailableError,
  type StoredRangeAllocator,
  type Transaction,
} from '../../shared/allocator/committer.ts';
import type { RangeMetrics } from '../../shared/allocator/metrics.ts';
import type { ReservedPool } from '../../shared/allocator/pool.ts';
import type { JsonPatchOperation } from '../../shared/admission/review.ts';
import {
  invalid,
  mapUnavailable,
  rangeFull,
  unchanged,
  type PartAdmission,
  type PartDenial,
  type ServiceAdmissionInput,
  type ServiceAdmissionPart,
} from '../serviceadmission.ts';
import { isFieldError, type NodePortSlot, planNodePorts } from './desired.ts';

export interface NodePortAdmissionOptions {
  /** The webhook's (unfenced) allocator. */
  allocator: StoredRangeAllocator<number>;
  /** This replica's reserved node ports: a Service that asks for none gets them with no write. */
  pool?: ReservedPool<number>;
  metrics: RangeMetrics;
}

/** Thrown inside the map operation: its changes are undone and the request denied. */
class Refusal extends Error {
  readonly denial: PartDenial;
  readonly scope: 'static' | 'dynamic';

  constructor(denial: PartDenial, scope: 'static' | 'dynamic') {
    super(denial.message);
    this.denial = denial;
    this.scope = scope;
  }
}

/** A slot that only keeps, requests or picks a value (the health check port, or any port's). */
type ValueSlot = Pick<NodePortSlot, 'field' | 'keep' | 'request'>;

interface Assigned {
  /** From this replica's reserved pool: nothing was written. */
  pooled?: boolean;
  ports: number[];
  healthCheck?: number;
  /** What this request allocated (kept values excluded), to release on a rollback. */
  allocated: number[];
  requested: number;
  picked: number;
}

export class NodePortAdmission implements ServiceAdmissionPart {
  readonly name = 'nodeport';
  private readonly opts: NodePortAdmissionOptions;

  constructor(opts: NodePortAdmissionOptions) {
    this.opts = opts;
  }

  async admit(input: ServiceAdmissionInput): Promise<PartAdmission | PartDenial> {
    const { service, old } = input;
    const plan = planNodePorts(service, old);
    if (plan === undefined) return unchanged(service);
    if (isFieldError(plan)) return invalid(plan.field, plan.message);
    const { allocator, metrics } = this.opts;
    const range = allocator.range.text;
    let assigned: Assigned | undefined = this.fromPool(plan.ports, plan.healthCheck, input.dryRun);
    try {
      assigned ??= await allocator.run((txn) => this.assign(txn, plan.ports, plan.healthCheck), {
        dryRun: input.dryRun,
        signal: input.signal,
      });
    } catch (err) {
      if (err instanceof Refusal) {
        metrics.allocationFailed(range, err.scope);
        return err.denial;
      }
      if (err instanceof MapUnavailableError) return mapUnavailable(err);
      throw err;
    }
    if (assigned.allocated.length === 0) {
      // Nothing new: only patch when a kept value was left out of the request.
      const same = (service.spec?.ports ?? []).every(
        (p, i) => (p.nodePort ?? 0) === (assigned.ports[i] ?? 0),
      );
      if (same && (service.spec?.healthCheckNodePort ?? 0) === (assigned.healthCheck ?? 0)) {
        return unchanged(service);
      }
    }
    if (!input.dryRun) {
      for (let i = 0; i < assigned.requested; i++) metrics.allocated(range, 'static');
      for (let i = 0; i < assigned.picked; i++) metrics.allocated(range, 'dynamic');
    }
    const next: V1Service = structuredClone(service);
    const ports = (next.spec?.ports ?? []).map((p, i) =>
      assigned.ports[i] ? { ...p, nodePort: assigned.ports[i] } : p,
    );
    next.spec = { ...next.spec, ports };
    const patch: JsonPatchOperation[] = [{ op: 'add', path: '/spec/ports', value: ports }];
    if (assigned.healthCheck !== undefined) {
      next.spec.healthCheckNodePort = assigned.healthCheck;
      patch.push({ op: 'add', path: '/spec/healthCheckNodePort', value: assigned.healthCheck });
    }
    const done = assigned;
    const rollback = async (): Promise<void> => {
      if (input.dryRun || done.allocated.length === 0) return;
      if (done.pooled) done.allocated.forEach((p) => this.opts.pool?.giveBack(p));
      else await allocator.run((txn) => done.allocated.forEach((p) => txn.release(p)));
    };
    return { allowed: true, patch, service: next, rollback };
  }

  /**
   * Every value from the reserved pool when the Service asks for no specific one, else undefined
   * (and whatever was taken goes back): requested values are checked against the map itself.
   */
  private fromPool(
    slots: readonly NodePortSlot[],
    healthCheck: ValueSlot | undefined,
    dryRun: boolean,
  ): Assigned | undefined {
    const pool = this.opts.pool;
    const all = healthCheck ? [...slots, healthCheck] : slots;
    if (!pool || all.some((s) => 'request' in s && s.request !== undefined)) return undefined;
    const picks = all.filter(
      (s) =>
        s.keep === undefined && !('none' in s && s.none) && !('shareWith' in s && s.shareWith !== undefined),
    ).length;
    if (picks === 0) return undefined;
    if (dryRun) {
      if (picks > 1) return undefined;
      const port = pool.peek();
      return port === undefined ? undefined : this.fill(slots, healthCheck, [port], true);
    }
    const taken: number[] = [];
    for (let i = 0; i < picks; i++) {
      const port = pool.take();
      if (port === undefined) break;
      taken.push(port);
    }
    if (taken.length < picks) {
      for (const p of taken.reverse()) pool.giveBack(p);
      return undefined;
    }
    return this.fill(slots, healthCheck, taken, false);
  }

  private fill(
    slots: readonly NodePortSlot[],
    healthCheck: ValueSlot | undefined,
    picks: number[],
    dryRun: boolean,
  ): Assigned {
    const queue = [...picks];
    return assemble(slots, healthCheck, (slot) => slot.keep ?? queue.shift()!, {
      pooled: true,
      ports: [],
      allocated: dryRun ? [] : [...picks],
      requested: 0,
      picked: picks.length,
    });
  }

  /** The map operation: every port's value, allocated in one go (undone as a whole on a refusal). */
  private assign(
    txn: Transaction<number>,
    slots: readonly NodePortSlot[],
    healthCheck: ValueSlot | undefined,
  ): Assigned {
    const out: Assigned = { ports: [], allocated: [], requested: 0, picked: 0 };
    const take = (slot: ValueSlot): number => {
      if (slot.keep !== undefined) return slot.keep;
      if (slot.request !== undefined) {
        const r = txn.allocate(slot.request);
        if (r === 'taken') {
          throw new Refusal(
            invalid(slot.field, `Invalid value: ${slot.request}: provided port is already allocated`),
            'static',
          );
        }
        if (r === 'out-of-range') {
          throw new Refusal(
            invalid(
              slot.field,
              `Invalid value: ${slot.request}: provided port is not in the valid range. The range of valid ports is ${txn.range.text}`,
            ),
            'static',
          );
        }
        out.allocated.push(slot.request);
        out.requested++;
        return slot.request;
      }
      const port = txn.allocateNext();
      if (port === undefined)
        throw new Refusal(rangeFull(this.opts.allocator.name, txn.range.text, 'node port'), 'dynamic');
      out.allocated.push(port);
      out.picked++;
      return port;
    };
    return assemble(slots, healthCheck, take, out);
  }
}

/**
 * Each port's value in `out`, in order: none (0), shared with an earlier port, or `take(slot)`
 * (kept, requested or picked), then the health check port.
 */
function assemble(
  slots: readonly NodePortSlot[],
  healthCheck: ValueSlot | undefined,
  take: (slot: ValueSlot) => number,
  out: Assigned,
): Assigned {
  for (const slot of slots) {
    if (slot.none) out.ports.push(0);
    else if (slot.shareWith !== undefined) out.ports.push(out.ports[slot.shareWith]);
    else out.ports.push(take(slot));
  }
  if (healthCheck) out.healthCheck = take(healthCheck);
  return out;
}
