/**
 * The ClusterIP repair pass for one family's map (shared/allocator/repairloop.ts does the
 * reading, rebuilding and compare-and-swap write): which values a Service holds, and what each
 * Event says. Reasons and texts follow kube-apiserver's ClusterIP repair controller.
 */
import type { V1Service } from '@kubernetes/client-node';
import type { Finding, RepairProblem } from '../../shared/allocator/repair.ts';
import type { IPRange, ValueRange } from '../../shared/allocator/ranges.ts';
import { type RepairLoopOptions } from '../../shared/allocator/repairloop.ts';
import { canonicalIP } from '../../shared/net/ip.ts';
import { clusterIPClaims, type ServiceRanges } from './desired.ts';

export const CLUSTERIP_REASONS: Record<RepairProblem, string> = {
  invalid: 'ClusterIPNotValid',
  outOfRange: 'ClusterIPOutOfRange',
  duplicate: 'ClusterIPAlreadyAllocated',
  notAllocated: 'ClusterIPNotAllocated',
  full: 'ServiceCIDRFull',
};

export function mapNameFor(range: IPRange): string {
  return range.family === 'IPv4' ? 'serviceips-ipv4' : 'serviceips-ipv6';
}

export function describeClusterIPFinding(finding: Finding<string>, range: ValueRange<string>): string {
  const { claim, heldBy } = finding;
  const ip = claim.text;
  switch (finding.problem) {
    case 'invalid':
      return claim.foreign
        ? `Cluster IP ${ip} (${claim.field}) is of a family this cluster has no service range for; it is not tracked`
        : `Cluster IP ${JSON.stringify(ip)} (${claim.field}) is not a valid IP; the Service needs to be recreated`;
    case 'outOfRange':
      return `Cluster IP ${ip} is not within the configured Service CIDR ${range.text}; please recreate the Service`;
    case 'duplicate':
      return `Cluster IP ${ip} was assigned to multiple Services${heldBy ? ` (also ${heldBy.namespace}/${heldBy.name})` : ''}; please recreate one of them`;
    case 'notAllocated':
      return `Cluster IP ${ip} is not allocated in the map; repairing`;
    case 'full':
      return `Service CIDR ${range.text} is full; cannot mark ${ip} in the map`;
  }
}

export function clusterIPRepairOptions(
  range: IPRange,
  ranges: ServiceRanges,
): Pick<RepairLoopOptions<string>, 'mapName' | 'range' | 'claimsOf' | 'parseValue' | 'reasons' | 'describe'> {
  return {
    mapName: mapNameFor(range),
    range,
    claimsOf: (svc: V1Service) => clusterIPClaims(svc, range, ranges),
    parseValue: (text: string) => canonicalIP(text)?.address,
    reasons: CLUSTERIP_REASONS,
    describe: describeClusterIPFinding,
  };
}
