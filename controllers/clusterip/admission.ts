/**
 * The ClusterIP part of the Service webhook: fills `clusterIP`, `clusterIPs`, `ipFamilies` and
 * `ipFamilyPolicy` from our maps (one per family), checks requested IPs, and enforces the
 * externalIPs allow-list. Every IP it hands out is committed to its RangeAllocation before the
 * answer goes back; a dry-run request allocates nothing.
 */
import type { V1Service } from '@kubernetes/client-node';
import { MapUnavailableError, type StoredRangeAllocator } from '../../shared/allocator/committer.ts';
import type { RangeMetrics } from '../../shared/allocator/metrics.ts';
import type { ReservedPool } from '../../shared/allocator/pool.ts';
import type { IPRange } from '../../shared/allocator/ranges.ts';
import type { JsonPatchOperation } from '../../shared/admission/review.ts';
import type { IPFamily } from '../../shared/net/ip.ts';
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
import { disallowedExternalIPs, isFieldError, planClusterIPs } from './desired.ts';

export interface ClusterIPAdmissionOptions {
  ranges: readonly IPRange[];
  /** The webhook's (unfenced) allocator of each family. */
  allocators: ReadonlyMap<IPFamily, StoredRangeAllocator<string>>;
  /** This replica's reserved IPs per family (picked IPs come from there first, with no write). */
  pools?: ReadonlyMap<IPFamily, ReservedPool<string>>;
  /** True when the API server holds `ip` already (an IPAddress object exists for it). */
  heldByApiServer: (ip: string) => boolean;
  externalIPsAllowedCidrs: readonly string[] | undefined;
  metrics: RangeMetrics;
}

type Picked = { ok: true; ip: string; pooled: boolean } | { ok: false; denial: PartDenial };
type Allocated = { family: IPFamily; ip: string; pooled: boolean };

export class ClusterIPAdmission implements ServiceAdmissionPart {
  readonly name = 'clusterip';
  private readonly opts: ClusterIPAdmissionOptions;

  constructor(opts: ClusterIPAdmissionOptions) {
    this.opts = opts;
  }

  async admit(input: ServiceAdmissionInput): Promise<PartAdmission | PartDenial> {
    const { service, old } = input;
    const refused = disallowedExternalIPs(service, old, this.opts.externalIPsAllowedCidrs);
    if (refused.length > 0) {
      const { field, ip } = refused[0];
      const allowed = this.opts.externalIPsAllowedCidrs?.join(', ') || 'none';
      return {
        allowed: false,
        code: 403,
        reason: 'Forbidden',
        message: `${field}: Forbidden: ${ip} is not in the allowed externalIPs CIDRs (${allowed}; --external-ips-allowed-cidrs, see CVE-2020-8554)`,
      };
    }
    const plan = planClusterIPs(service, old, this.opts.ranges);
    if (plan === undefined) return unchanged(service);
    if (isFieldError(plan)) return invalid(plan.field, plan.message);

    const allocated: Allocated[] = [];
    const ips: string[] = [];
    for (const slot of plan.slots) {
      if (slot.keep !== undefined) {
        ips.push(slot.keep);
        continue;
      }
      const picked = await this.allocate(slot.family, slot.field, slot.request, input);
      if (!picked.ok) {
        await this.release(allocated, input.dryRun);
        return picked.denial;
      }
      allocated.push({ family: slot.family, ip: picked.ip, pooled: picked.pooled });
      ips.push(picked.ip);
    }
    const families = plan.slots.map((s) => s.family);
    const next: V1Service = structuredClone(service);
    next.spec = {
      ...next.spec,
      clusterIP: ips[0],
      clusterIPs: ips,
      ipFamilies: families,
      ipFamilyPolicy: plan.policy,
    };
    const patch: JsonPatchOperation[] = [
      { op: 'add', path: '/spec/clusterIP', value: ips[0] },
      { op: 'add', path: '/spec/clusterIPs', value: ips },
      { op: 'add', path: '/spec/ipFamilies', value: families },
      { op: 'add', path: '/spec/ipFamilyPolicy', value: plan.policy },
    ];
    return { allowed: true, patch, service: next, rollback: () => this.release(allocated, input.dryRun) };
  }

  private async allocate(
    family: IPFamily,
    field: string,
    request: string | undefined,
    input: ServiceAdmissionInput,
  ): Promise<Picked> {
    const allocator = this.opts.allocators.get(family)!;
    const range = allocator.range.text;
    const scope = request === undefined ? 'dynamic' : 'static';
    if (request !== undefined && this.opts.heldByApiServer(request)) {
      this.opts.metrics.allocationFailed(range, scope);
      return {
        ok: false,
        denial: invalid(field, `Invalid value: "${request}": provided IP is already allocated`),
      };
    }
    const pool = this.opts.pools?.get(family);
    if (request === undefined && pool) {
      const ip = input.dryRun ? pool.peek() : pool.take();
      if (ip !== undefined) {
        if (!input.dryRun) this.opts.metrics.allocated(range, scope);
        return { ok: true, ip, pooled: true };
      }
    }
    try {
      const result = await allocator.run(
        (txn) => {
          if (request === undefined) return txn.allocateNext((ip) => this.opts.heldByApiServer(ip)) ?? 'full';
          const r = txn.allocate(request);
          return r === 'allocated' ? request : r;
        },
        { dryRun: input.dryRun, signal: input.signal },
      );
      if (result === 'full' || result === 'taken' || result === 'out-of-range') {
        this.opts.metrics.allocationFailed(range, scope);
        if (result === 'full') return { ok: false, denial: rangeFull(allocator.name, range, 'ClusterIP') };
        return {
          ok: false,
          denial: invalid(
            field,
            result === 'taken'
              ? `Invalid value: "${request}": provided IP is already allocated`
              : `Invalid value: "${request}": provided IP is not in the valid range. The range of valid IPs is ${range}`,
          ),
        };
      }
      if (!input.dryRun) this.opts.metrics.allocated(range, scope);
      return { ok: true, ip: result, pooled: false };
    } catch (err) {
      if (err instanceof MapUnavailableError) return { ok: false, denial: mapUnavailable(err) };
      throw err;
    }
  }

  private async release(allocated: Allocated[], dryRun: boolean): Promise<void> {
    if (dryRun) return;
    for (const { family, ip, pooled } of allocated) {
      if (pooled) this.opts.pools?.get(family)?.giveBack(ip);
      else await this.opts.allocators.get(family)!.run((txn) => txn.release(ip));
    }
  }
}
