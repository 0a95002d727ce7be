/**
 * Which Services are ours, which addresses each should hold, and the status that says so.
 *
 * Address choice (`chooseAddresses`), in the spec's order:
 * 1. An address the Service already holds is kept while it still fits the request (family,
 *    requested address, pinned pool, sharing). One whose pool was deleted, shrunk or no longer
 *    selects the Service is kept too, with a `PoolChanged` note, unless --reassign-on-pool-change.
 * 2. A requested address (`scm.dev/load-balancer-ips`, else `spec.loadBalancerIP`) must lie in a
 *    usable pool that selects the Service and be free or shareable.
 * 3. Otherwise: the pinned pool (`scm.dev/address-pool`), else every auto-assign pool selecting
 *    the Service by priority then name; a Service with a sharing key first joins an address its
 *    key already holds in one of them, if it can share it; else the lowest free address.
 * 4. Families by `ipFamilyPolicy`: SingleStack the first family, PreferDualStack both if pools
 *    allow (at least the first found), RequireDualStack both or nothing.
 * Deterministic: the same Services and pools give the same addresses on any replica.
 *
 * Pure.
 */
import type { V1Condition, V1LoadBalancerIngress, V1Service, V1ServiceStatus } from '@kubernetes/client-node';
import { labelSelectorMatches } from '../../shared/kube/labels.ts';
import { canonicalIP, familyOfText as familyOf, type IPFamily } from '../../shared/net/ip.ts';
import type { BookView } from './book.ts';
import { isBuggyIP, type ParsedPool, usable } from './pools.ts';
import { type SharingProfile, sharingConflictWithAll } from './sharing.ts';
import { ADDRESS_ASSIGNED_CONDITION, POOL_ANNOTATION, REQUESTED_IPS_ANNOTATION } from './types.ts';

export interface Scope {
  /** --load-balancer-class: the class that names us; '' for none. */
  loadBalancerClass: string;
  /** --default-load-balancer: with a class set, also serve Services without a class. */
  defaultLoadBalancer: boolean;
}

/** Ours: type LoadBalancer, and a class that names us (or none, when we are the default). */
export function inScope(svc: V1Service, scope: Scope): boolean {
  if (svc.spec?.type !== 'LoadBalancer') return false;
  const cls = svc.spec.loadBalancerClass;
  if (cls === undefined || cls === '') return scope.loadBalancerClass === '' || scope.defaultLoadBalancer;
  return scope.loadBalancerClass !== '' && cls === scope.loadBalancerClass;
}

export type FailureReason =
  | 'InvalidRequest'
  | 'NoPool'
  | 'PoolUnavailable'
  | 'PoolExhausted'
  | 'RequestedIPNotInPool'
  | 'RequestedIPInUse'
  | 'SharingIncompatible'
  | 'DualStackUnavailable';

export interface Failure {
  ok: false;
  reason: FailureReason;
  /** Starts with what a user searches for: "pool exhausted", "no pool", ... */
  message: string;
}

export interface Assignment {
  ok: true;
  /** One per family, in the Service's family order. */
  addresses: string[];
  /** Addresses not held before this choice. */
  added: string[];
  /** Set when a held address is kept although its pool no longer offers it. */
  poolChanged?: string;
}

export type Choice = Assignment | Failure;

export interface ChoiceInput {
  key: string;
  service: V1Service;
  profile: SharingProfile;
  namespaceLabels: Readonly<Record<string, string>> | undefined;
  /** Every pool, in choice order (resolvePools). */
  pools: readonly ParsedPool[];
  book: BookView;
  reassignOnPoolChange: boolean;
}

interface FamilyPlan {
  family: IPFamily;
  required: boolean;
  requested?: string;
}

/** The families to fill, in order, or why the request cannot be read. */
export function familyPlan(svc: V1Service): FamilyPlan[] | Failure {
  const requested = requestedAddresses(svc);
  if (!Array.isArray(requested)) return requested;
  const policy = svc.spec?.ipFamilyPolicy ?? 'SingleStack';
  const declared = (svc.spec?.ipFamilies ?? []).filter((f): f is IPFamily => f === 'IPv4' || f === 'IPv6');
  // The Service's own family order wins, so the ingress lists its primary family first.
  const primary: IPFamily = declared[0] ?? requested[0]?.type ?? 'IPv4';
  const other: IPFamily = primary === 'IPv4' ? 'IPv6' : 'IPv4';
  const requestedOf = (f: IPFamily): string | undefined => requested.find((r) => r.type === f)?.address;
  if (policy === 'SingleStack') {
    if (requested.length > 1) {
      return fail(
        'InvalidRequest',
        'invalid request: a SingleStack Service asks for one address per family, got two',
      );
    }
    if (requested.length === 1 && requested[0].type !== primary) {
      return fail(
        'InvalidRequest',
        `invalid request: a SingleStack ${primary} Service asks for an ${requested[0].type} address`,
      );
    }
    return [{ family: primary, required: true, requested: requestedOf(primary) }];
  }
  return [
    {
      family: primary,
      required: policy === 'RequireDualStack' || requestedOf(primary) !== undefined,
      requested: requestedOf(primary),
    },
    {
      family: other,
      required: policy === 'RequireDualStack' || requestedOf(other) !== undefined,
      requested: requestedOf(other),
    },
  ];
}

/** The requested addresses: the annotation's comma list, else spec.loadBalancerIP. */
export function requestedAddresses(svc: V1Service): { address: string; type: IPFamily }[] | Failure {
  const annotation = svc.metadata?.annotations?.[REQUESTED_IPS_ANNOTATION];
  const field = svc.spec?.loadBalancerIP;
  const source = annotation !== undefined ? REQUESTED_IPS_ANNOTATION : 'spec.loadBalancerIP';
  const text = annotation ?? field ?? '';
  const items = text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  const out: { address: string; type: IPFamily }[] = [];
  for (const item of items) {
    const ip = canonicalIP(item);
    if (!ip)
      return fail(
        'InvalidRequest',
        `invalid request: ${source} ${JSON.stringify(item)} is not an IP address`,
      );
    if (out.some((o) => o.type === ip.type)) {
      return fail(
        'InvalidRequest',
        `invalid request: ${source} holds two ${ip.type} addresses; give at most one per family`,
      );
    }
    out.push(ip);
  }
  return out;
}

/** The pool selects the Service (its service and namespace selectors match). */
export function selects(
  pool: ParsedPool,
  svc: V1Service,
  namespaceLabels: Readonly<Record<string, string>> | undefined,
): boolean {
  return (
    labelSelectorMatches(pool.serviceSelector, svc.metadata?.labels) &&
    labelSelectorMatches(pool.namespaceSelector, namespaceLabels)
  );
}

export function chooseAddresses(input: ChoiceInput): Choice {
  const { service, pools, book } = input;
  const plan = familyPlan(service);
  if (!Array.isArray(plan)) return plan;
  const pinned = service.metadata?.annotations?.[POOL_ANNOTATION]?.trim() || undefined;
  if (pinned !== undefined) {
    const pool = pools.find((p) => p.name === pinned);
    if (!pool)
      return fail('NoPool', `no pool: the pool ${pinned} named in ${POOL_ANNOTATION} does not exist`);
    if (!usable(pool)) return fail('PoolUnavailable', `pool unavailable: ${pinned} ${unusableWhy(pool)}`);
    if (!selects(pool, service, input.namespaceLabels)) {
      return fail(
        'NoPool',
        `no pool: the pool ${pinned} named in ${POOL_ANNOTATION} does not select this Service`,
      );
    }
  }
  const held = book.addressesOf(input.key) ?? [];
  const out: string[] = [];
  const added: string[] = [];
  let poolChanged: string | undefined;
  let firstFailure: Failure | undefined;
  for (const step of plan) {
    const kept = held.find((ip) => familyOf(ip) === step.family);
    if (kept !== undefined) {
      const verdict = keepVerdict(kept, step, pinned, input);
      if (verdict === 'keep' || verdict === 'keep-pool-changed') {
        out.push(kept);
        if (verdict === 'keep-pool-changed') {
          poolChanged = `${kept} is no longer in a pool that selects this Service; it keeps the address until the Service changes (or --reassign-on-pool-change is set)`;
        }
        continue;
      }
    }
    const picked = step.requested
      ? grantRequested(step.requested, step.family, pinned, input)
      : pick(step.family, pinned, input);
    if (typeof picked === 'string') {
      out.push(picked);
      if (!held.includes(picked)) added.push(picked);
      continue;
    }
    if (step.required) {
      if (service.spec?.ipFamilyPolicy === 'RequireDualStack' && picked.reason === 'NoPool') {
        return fail(
          'DualStackUnavailable',
          `dual-stack unavailable: RequireDualStack needs an ${step.family} address and ${picked.message.replace(/^no pool: /, '')}`,
        );
      }
      return picked;
    }
    firstFailure ??= picked;
  }
  if (out.length === 0) return firstFailure ?? fail('NoPool', 'no pool selects this Service');
  return { ok: true, addresses: out, added, ...(poolChanged ? { poolChanged } : {}) };
}

type KeepVerdict = 'keep' | 'keep-pool-changed' | 'move';

function keepVerdict(
  ip: string,
  step: FamilyPlan,
  pinned: string | undefined,
  input: ChoiceInput,
): KeepVerdict {
  if (step.requested !== undefined && step.requested !== ip) return 'move';
  if (sharingConflictWithAll(input.profile, input.book.holdersOf(ip).values()) !== undefined) return 'move';
  const poolName = input.book.poolOf(ip);
  const pool = input.pools.find((p) => p.name === poolName);
  if (pool && pinned !== undefined && pool.name !== pinned) return 'move';
  const offered = pool !== undefined && selects(pool, input.service, input.namespaceLabels);
  if (offered) return 'keep';
  return input.reassignOnPoolChange ? 'move' : 'keep-pool-changed';
}

function grantRequested(
  ip: string,
  family: IPFamily,
  pinned: string | undefined,
  input: ChoiceInput,
): string | Failure {
  const pool = input.pools.find(
    (p) =>
      usable(p) && p.ranges.get(family)?.contains(ip) === true && (pinned === undefined || p.name === pinned),
  );
  if (!pool || !selects(pool, input.service, input.namespaceLabels)) {
    return fail(
      'RequestedIPNotInPool',
      `requested IP not in pool: ${ip} is not in any ${pinned ? `pool named ${pinned}` : 'pool'} that selects this Service`,
    );
  }
  const why = sharingConflictWithAll(input.profile, input.book.holdersOf(ip).values());
  if (why !== undefined) {
    return input.profile.sharingKey !== undefined
      ? fail('SharingIncompatible', `sharing incompatible: requested IP ${ip}: ${why}`)
      : fail('RequestedIPInUse', `requested IP already used: ${ip}: ${why}`);
  }
  return ip;
}

function pick(family: IPFamily, pinned: string | undefined, input: ChoiceInput): string | Failure {
  const candidates = input.pools.filter(
    (p) =>
      usable(p) &&
      p.ranges.has(family) &&
      (pinned !== undefined ? p.name === pinned : p.autoAssign) &&
      selects(p, input.service, input.namespaceLabels),
  );
  if (candidates.length === 0) {
    return fail(
      'NoPool',
      `no pool: no usable LoadBalancerIPPool with ${family} addresses selects this Service`,
    );
  }
  const sharingKey = input.profile.sharingKey;
  if (sharingKey !== undefined) {
    const names = new Set(candidates.map((p) => p.name));
    for (const ip of input.book.sharedAddresses(sharingKey)) {
      if (familyOf(ip) !== family) continue;
      const pool = input.book.poolOf(ip);
      if (pool === undefined || !names.has(pool)) continue;
      if (sharingConflictWithAll(input.profile, input.book.holdersOf(ip).values()) === undefined) return ip;
    }
  }
  for (const pool of candidates) {
    const skip = pool.avoidBuggyIPs ? isBuggyIP : undefined;
    const ip = input.book.lowestFree(pool.name, family, skip);
    if (ip !== undefined) return ip;
  }
  const use = candidates
    .map((p) => {
      const c = input.book.counts(p.name, family);
      return `${p.name} (${c?.used ?? 0} of ${c?.total ?? 0} in use)`;
    })
    .join(', ');
  return fail('PoolExhausted', `pool exhausted: no free ${family} address in ${use}`);
}

function unusableWhy(pool: ParsedPool): string {
  if (pool.problems.length > 0) return `cannot be used: ${pool.problems.join('; ')}`;
  if (pool.conflictsWith !== undefined) return `overlaps pool ${pool.conflictsWith} and is skipped`;
  return 'is disabled';
}

function fail(reason: FailureReason, message: string): Failure {
  return { ok: false, reason, message };
}

/** Ingress entries for the addresses: `ipMode: VIP` and every port of the Service. */
export function desiredIngress(svc: V1Service, addresses: readonly string[]): V1LoadBalancerIngress[] {
  const ports = (svc.spec?.ports ?? []).map((p) => ({ port: p.port, protocol: p.protocol ?? 'TCP' }));
  return addresses.map((ip) => ({ ip, ipMode: 'VIP', ports: ports.map((p) => ({ ...p })) }));
}

/** The condition our status carries, before its transition time is settled. */
export interface AssignedCondition {
  status: 'True' | 'False';
  reason: string;
  message: string;
}

export function conditionFor(choice: Choice): AssignedCondition {
  if (!choice.ok) return { status: 'False', reason: choice.reason, message: choice.message };
  if (choice.poolChanged) return { status: 'True', reason: 'PoolChanged', message: choice.poolChanged };
  return { status: 'True', reason: 'Assigned', message: `assigned ${choice.addresses.join(', ')}` };
}

/**
 * The status to write: the ingress (emptied on failure, unless `keepIngress`) and our condition;
 * other conditions are left as they are. The transition time moves only when the status flips.
 */
export function desiredStatus(
  svc: V1Service,
  ingress: V1LoadBalancerIngress[],
  condition: AssignedCondition | undefined,
  now: Date,
): V1ServiceStatus {
  const others = (svc.status?.conditions ?? []).filter((c) => c.type !== ADDRESS_ASSIGNED_CONDITION);
  const prior = svc.status?.conditions?.find((c) => c.type === ADDRESS_ASSIGNED_CONDITION);
  const conditions: V1Condition[] = [...others];
  if (condition) {
    conditions.push({
      type: ADDRESS_ASSIGNED_CONDITION,
      status: condition.status,
      reason: condition.reason,
      message: condition.message,
      observedGeneration: svc.metadata?.generation,
      lastTransitionTime: prior && prior.status === condition.status ? prior.lastTransitionTime : now,
    });
  }
  return {
    ...svc.status,
    loadBalancer: ingress.length > 0 ? { ingress } : {},
    ...(conditions.length > 0 ? { conditions } : { conditions: undefined }),
  };
}

/** The addresses the Service's status shows (canonical), in order. */
export function statusAddresses(svc: V1Service): string[] {
  return (svc.status?.loadBalancer?.ingress ?? [])
    .map((i) => canonicalIP(i.ip)?.address)
    .filter((ip): ip is string => ip !== undefined);
}

/** True when `want` says what the Service's status already says (no write needed). */
export function statusMatches(svc: V1Service, want: V1ServiceStatus): boolean {
  const have = svc.status;
  if (!ingressEqual(have?.loadBalancer?.ingress ?? [], want.loadBalancer?.ingress ?? [])) return false;
  const a = have?.conditions?.find((c) => c.type === ADDRESS_ASSIGNED_CONDITION);
  const b = want.conditions?.find((c) => c.type === ADDRESS_ASSIGNED_CONDITION);
  if (!a || !b) return a === b;
  return (
    a.status === b.status &&
    a.reason === b.reason &&
    a.message === b.message &&
    (a.observedGeneration ?? 0) === (b.observedGeneration ?? 0)
  );
}

function ingressEqual(a: readonly V1LoadBalancerIngress[], b: readonly V1LoadBalancerIngress[]): boolean {
  if (a.length !== b.length) return false;
  return a.every((x, i) => {
    const y = b[i];
    if (x.ip !== y.ip || (x.hostname ?? '') !== (y.hostname ?? '') || (x.ipMode ?? '') !== (y.ipMode ?? ''))
      return false;
    const px = x.ports ?? [];
    const py = y.ports ?? [];
    return (
      px.length === py.length &&
      px.every(
        (p, j) =>
          p.port === py[j].port && p.protocol === py[j].protocol && (p.error ?? '') === (py[j].error ?? ''),
      )
    );
  });
}
