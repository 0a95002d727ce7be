/**
 * The NodePort repair pass (shared/allocator/repairloop.ts does the reading, rebuilding and
 * compare-and-swap write): which node ports a Service holds, health-check ports included, and
 * what each Event says. Reasons follow kube-apiserver's NodePort repair controller.
 */
import type { V1Service } from '@kubernetes/client-node';
import type { Finding, RepairProblem } from '../../shared/allocator/repair.ts';
import type { PortRange, ValueRange } from '../../shared/allocator/ranges.ts';
import type { RepairLoopOptions } from '../../shared/allocator/repairloop.ts';
import { nodePortClaims } from './desired.ts';

export const NODEPORT_MAP_NAME = 'servicenodeports';

export const NODEPORT_REASONS: Record<RepairProblem, string> = {
  invalid: 'PortOutOfRange',
  outOfRange: 'PortOutOfRange',
  duplicate: 'PortAlreadyAllocated',
  notAllocated: 'PortNotAllocated',
  full: 'PortRangeFull',
};

export function describeNodePortFinding(finding: Finding<number>, range: ValueRange<number>): string {
  const { claim, heldBy } = finding;
  const port = claim.text;
  switch (finding.problem) {
    case 'invalid':
    case 'outOfRange':
      return `Port ${port} (${claim.field}) is not within the port range ${range.text}; please recreate the Service`;
    case 'duplicate':
      return `Port ${port} (${claim.field}) was assigned to multiple Services${heldBy ? ` (also ${heldBy.namespace}/${heldBy.name})` : ''}; please recreate one of them`;
    case 'notAllocated':
      return `Port ${port} (${claim.field}) is not allocated in the map; repairing`;
    case 'full':
      return `Port range ${range.text} is full; cannot mark ${port} in the map`;
  }
}

export function nodePortRepairOptions(
  range: PortRange,
): Pick<RepairLoopOptions<number>, 'mapName' | 'range' | 'claimsOf' | 'parseValue' | 'reasons' | 'describe'> {
  return {
    mapName: NODEPORT_MAP_NAME,
    range,
    claimsOf: (svc: V1Service) => nodePortClaims(svc),
    parseValue: (text: string) => (/^\d+$/.test(text) ? Number(text) : undefined),
    reasons: NODEPORT_REASONS,
    describe: describeNodePortFinding,
  };
}
