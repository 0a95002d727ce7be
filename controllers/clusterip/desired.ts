/**
 * What ClusterIPs a Service must hold: the pure half of the ClusterIP webhook and repair loop.
 *
 * `planClusterIPs` reads a Service being created or updated and says, per IP family, whether it
 * keeps an IP it already holds, asks for a specific one, or needs one picked, following the API
 * server's rules for `ipFamilies` / `ipFamilyPolicy` / `clusterIPs` (Kubernetes 1.36
 * pkg/registry/core/service/storage: initIPFamilyFields, allocClusterIPs). A request the API
 * server would refuse is refused here first, with a message naming the field.
 *
 * `clusterIPClaims` lists the ClusterIPs a stored Service holds, for the repair loop.
 */
import type { V1Service } from '@kubernetes/client-node';
import type { IPRange } from '../../shared/allocator/ranges.ts';
import type { Claim } from '../../shared/allocator/repair.ts';
import ipaddr from 'ipaddr.js';
import { canonicalIP, type IPFamily } from '../../shared/net/ip.ts';

export type IPFamilyPolicy = 'SingleStack' | 'PreferDualStack' | 'RequireDualStack';

/** The configured service ranges, primary first (one, or two for dual-stack). */
export type ServiceRanges = readonly IPRange[];

export interface FieldError {
  field: string;
  message: string;
}

export interface ClusterIPSlot {
  family: IPFamily;
  /** The field an error about this IP names. */
  field: string;
  /** An IP the Service already held (an update): nothing to allocate. */
  keep?: string;
  /** An IP the user asked for: allocate exactly it. */
  request?: string;
}

export interface ClusterIPPlan {
  policy: IPFamilyPolicy;
  slots: ClusterIPSlot[];
}

const POLICIES: readonly IPFamilyPolicy[] = ['SingleStack', 'PreferDualStack', 'RequireDualStack'];

/** True when the Service holds no ClusterIP by design: ExternalName or headless. */
export function wantsNoClusterIP(svc: V1Service | undefined): boolean {
  const spec = svc?.spec;
  if (!spec) return true;
  if (spec.type === 'ExternalName') return true;
  return spec.clusterIP === 'None' || spec.clusterIPs?.[0] === 'None';
}

/** The ClusterIPs a Service holds, as stored (none for ExternalName and headless). */
export function heldClusterIPs(svc: V1Service | undefined): string[] {
  if (!svc?.spec || wantsNoClusterIP(svc)) return [];
  const ips = svc.spec.clusterIPs?.length
    ? svc.spec.clusterIPs
    : svc.spec.clusterIP
      ? [svc.spec.clusterIP]
      : [];
  return ips.filter((ip) => ip !== '' && ip !== 'None');
}

/**
 * The plan for `svc` (`old` on an update), or a FieldError the API server would also refuse, or
 * undefined when the Service needs no ClusterIP.
 */
export function planClusterIPs(
  svc: V1Service,
  old: V1Service | undefined,
  ranges: ServiceRanges,
): ClusterIPPlan | FieldError | undefined {
  if (wantsNoClusterIP(svc)) return undefined;
  const spec = svc.spec ?? {};
  const configured = ranges.map((r) => r.family);
  const oldIPs = heldClusterIPs(old);

  let requested = spec.clusterIPs?.length ? [...spec.clusterIPs] : spec.clusterIP ? [spec.clusterIP] : [];
  if (spec.clusterIP && spec.clusterIPs?.length && spec.clusterIPs[0] !== spec.clusterIP) {
    return { field: 'spec.clusterIPs[0]', message: `must match spec.clusterIP (${spec.clusterIP})` };
  }
  // An update that leaves the IPs out keeps the ones held (the API server copies them over too).
  if (requested.length === 0 && oldIPs.length > 0) requested = oldIPs;
  if (requested.length > 2) return { field: 'spec.clusterIPs', message: 'at most two IPs, one per family' };

  const requestedFamilies: IPFamily[] = [];
  for (const [i, ip] of requested.entries()) {
    const parsed = canonicalIP(ip);
    if (!parsed)
      return {
        field: `spec.clusterIPs[${i}]`,
        message: `Invalid value: "${ip}": must be a valid IP address`,
      };
    requestedFamilies.push(parsed.type);
  }

  let families: IPFamily[] = [];
  if (spec.ipFamilies?.length) {
    for (const [i, f] of spec.ipFamilies.entries()) {
      if (f !== 'IPv4' && f !== 'IPv6') {
        return {
          field: `spec.ipFamilies[${i}]`,
          message: `Unsupported value: "${f}": supported values: "IPv4", "IPv6"`,
        };
      }
      if (families.includes(f)) return { field: `spec.ipFamilies[${i}]`, message: `Duplicate value: "${f}"` };
      families.push(f);
    }
  } else families = [...requestedFamilies];

  const policyText = spec.ipFamilyPolicy ?? old?.spec?.ipFamilyPolicy;
  if (policyText !== undefined && !POLICIES.includes(policyText as IPFamilyPolicy)) {
    return {
      field: 'spec.ipFamilyPolicy',
      message: `Unsupported value: "${policyText}": supported values: ${POLICIES.map((p) => `"${p}"`).join(', ')}`,
    };
  }
  if (policyText === undefined && families.length > 1) {
    return {
      field: 'spec.ipFamilyPolicy',
      message: 'must be RequireDualStack or PreferDualStack when multiple ipFamilies or clusterIPs are given',
    };
  }
  const policy = (policyText ?? 'SingleStack') as IPFamilyPolicy;
  const dualStack = configured.length === 2;
  const sameList = (a: readonly string[] | undefined, b: readonly string[] | undefined): boolean =>
    (a ?? []).length === (b ?? []).length && (a ?? []).every((x, i) => x === b?.[i]);
  // An update of a PreferDualStack Service that leaves its IPs and families as they were keeps
  // them, even if the cluster gained or lost a family since (the API server's
  // isMatchingPreferDualStackClusterIPFields): a label change must not add or drop an IP.
  if (
    old !== undefined &&
    policy === 'PreferDualStack' &&
    old.spec?.ipFamilyPolicy === 'PreferDualStack' &&
    sameList(requested, oldIPs) &&
    (spec.ipFamilies === undefined || sameList(spec.ipFamilies, old.spec?.ipFamilies))
  ) {
    const kept = oldIPs.map((ip) => canonicalIP(ip)!);
    return {
      policy,
      slots: kept.map((ip, i) => ({ family: ip.type, field: `spec.clusterIPs[${i}]`, keep: ip.address })),
    };
  }
  // A downgrade to SingleStack that leaves the lists as they were keeps the primary IP only (the
  // API server trims both lists the same way; the secondary is released once the update is stored).
  if (
    old !== undefined &&
    policy === 'SingleStack' &&
    oldIPs.length === 2 &&
    families.length === 2 &&
    sameList(requested, oldIPs)
  ) {
    requested = requested.slice(0, 1);
    families = families.slice(0, 1);
  }
  const other = (f: IPFamily): IPFamily => (f === 'IPv4' ? 'IPv6' : 'IPv4');

  switch (policy) {
    case 'SingleStack':
      if (families.length > 1) {
        return {
          field: 'spec.ipFamilyPolicy',
          message: 'SingleStack allows one IP family; use PreferDualStack or RequireDualStack',
        };
      }
      if (families.length === 0) families = [configured[0]];
      break;
    case 'PreferDualStack':
      if (families.length === 0) families = [configured[0]];
      if (dualStack && families.length === 1 && requested.length < 2) families.push(other(families[0]));
      if (!dualStack) families = families.slice(0, 1);
      break;
    case 'RequireDualStack':
      if (!dualStack) {
        return {
          field: 'spec.ipFamilyPolicy',
          message: `RequireDualStack, but this cluster has one service range (${ranges.map((r) => r.text).join(', ')}); dual-stack needs an IPv4 and an IPv6 range`,
        };
      }
      if (families.length === 0) families = [...configured];
      if (families.length === 1) families.push(other(families[0]));
      break;
  }

  for (const [i, f] of families.entries()) {
    if (!configured.includes(f)) {
      return {
        field: `spec.ipFamilies[${i}]`,
        message: `Invalid value: "${f}": this cluster has no ${f} service range (ranges: ${ranges.map((r) => r.text).join(', ')})`,
      };
    }
  }
  if (requested.length > families.length) {
    return {
      field: 'spec.clusterIPs',
      message: `${requested.length} IPs given for ${families.length} IP family`,
    };
  }
  const slots: ClusterIPSlot[] = families.map((family, i) => {
    const field = `spec.clusterIPs[${i}]`;
    const ip = requested[i];
    if (ip === undefined) return { family, field };
    const text = canonicalIP(ip)!.address;
    return oldIPs.some((o) => canonicalIP(o)?.address === text)
      ? { family, field, keep: text }
      : { family, field, request: text };
  });
  for (const [i, slot] of slots.entries()) {
    const ip = slot.keep ?? slot.request;
    if (ip !== undefined && canonicalIP(ip)!.type !== slot.family) {
      return {
        field: `spec.clusterIPs[${i}]`,
        message: `Invalid value: "${ip}": expected an ${slot.family} address (spec.ipFamilies[${i}] is ${slot.family})`,
      };
    }
  }
  return { policy, slots };
}

export function isFieldError<T extends object>(x: T | FieldError | undefined): x is FieldError {
  return x !== undefined && 'field' in x && 'message' in x;
}

/**
 * The claims of `svc` on the map of `range`: its ClusterIPs of that family, and, for the primary
 * range only (so each is reported once), those that are no IP or of a family not configured.
 */
export function clusterIPClaims(svc: V1Service, range: IPRange, ranges: ServiceRanges): Claim<string>[] {
  const owner = { namespace: svc.metadata?.namespace ?? '', name: svc.metadata?.name ?? '' };
  const primary = ranges[0] === range;
  const claims: Claim<string>[] = [];
  for (const [i, text] of heldClusterIPs(svc).entries()) {
    const field = `spec.clusterIPs[${i}]`;
    const parsed = canonicalIP(text);
    if (!parsed) {
      if (primary) claims.push({ owner, field, text, value: undefined });
      continue;
    }
    if (parsed.type === range.family) claims.push({ owner, field, text, value: parsed.address });
    else if (primary && !ranges.some((r) => r.family === parsed.type)) {
      claims.push({ owner, field, text, value: parsed.address, foreign: true });
    }
  }
  return claims;
}

/** ClusterIPs `old` held that `svc` (undefined: deleted) no longer holds: to release. */
export function releasedClusterIPs(old: V1Service | undefined, svc: V1Service | undefined): string[] {
  const kept = new Set(heldClusterIPs(svc).map((ip) => canonicalIP(ip)?.address));
  return heldClusterIPs(old)
    .map((ip) => canonicalIP(ip)?.address)
    .filter((ip): ip is string => ip !== undefined && !kept.has(ip));
}

/**
 * The new externalIPs of `svc` (not held by `old`) outside every allowed CIDR (`allowed` undefined:
 * no policy). An externalIP is traffic the cluster intercepts for any address (CVE-2020-8554).
 */
export function disallowedExternalIPs(
  svc: V1Service,
  old: V1Service | undefined,
  allowed: readonly string[] | undefined,
): { field: string; ip: string }[] {
  if (allowed === undefined) return [];
  const cidrs = allowed.map((c) => ipaddr.parseCIDR(c));
  const before = new Set(old?.spec?.externalIPs ?? []);
  const permitted = (text: string): boolean => {
    const parsed = canonicalIP(text);
    if (!parsed) return false;
    const ip = ipaddr.parse(parsed.address);
    return cidrs.some(([net, bits]) => net.kind() === ip.kind() && ip.match(net, bits));
  };
  return (svc.spec?.externalIPs ?? [])
    .map((ip, i) => ({ field: `spec.externalIPs[${i}]`, ip }))
    .filter(({ ip }) => !before.has(ip) && !permitted(ip));
}
