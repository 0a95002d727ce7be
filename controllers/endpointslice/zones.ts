/**
 * Each zone's share of the allocatable CPU of the Nodes that can run endpoints: the input of
 * topology-mode Auto (upstream topology cache's CPU ratios).
 *
 * Contract: only Ready (condition Ready=True) Nodes without a control-plane role label count;
 * undefined ("insufficient node info") when one of them lacks the zone label or allocatable CPU,
 * or when none counts. CPU quantities are read in any Kubernetes form ("4", "3500m", "0.5",
 * "1e3", "2Ki"), rounded up to thousandths as resource.Quantity's MilliValue does. Pure.
 */
import type { V1Node } from '@kubernetes/client-node';
import { ZONE_LABEL } from './desired.ts';

const EXCLUDED_NODE_LABELS = ['node-role.kubernetes.io/control-plane', 'node-role.kubernetes.io/master'];

/**
 * CPU share per zone over Ready (condition Ready=True), non-control-plane (no label
 * node-role.kubernetes.io/control-plane nor node-role.kubernetes.io/master) Nodes; undefined when
 * some such node lacks the zone label topology.kubernetes.io/zone or allocatable cpu, or no such
 * node exists (upstream "insufficient node info").
 */
export function zoneCpuRatios(nodes: readonly V1Node[]): Map<string, number> | undefined {
  const milliByZone = new Map<string, number>();
  let total = 0;
  for (const node of nodes) {
    const labels = node.metadata?.labels ?? {};
    if (EXCLUDED_NODE_LABELS.some((label) => label in labels)) continue;
    const ready = (node.status?.conditions ?? []).find((c) => c.type === 'Ready');
    if (ready?.status !== 'True') continue;
    const zone = labels[ZONE_LABEL];
    const milli = cpuMillis(node.status?.allocatable?.cpu);
    if (!zone || milli === undefined || milli <= 0) return undefined;
    milliByZone.set(zone, (milliByZone.get(zone) ?? 0) + milli);
    total += milli;
  }
  if (total === 0) return undefined;
  const ratios = new Map<string, number>();
  for (const [zone, milli] of [...milliByZone].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    ratios.set(zone, milli / total);
  }
  return ratios;
}

const DECIMAL_SUFFIXES: Record<string, number> = {
  n: -9,
  u: -6,
  m: -3,
  '': 0,
  k: 3,
  M: 6,
  G: 9,
  T: 12,
  P: 15,
  E: 18,
};
const BINARY_SUFFIXES: Record<string, number> = { Ki: 10, Mi: 20, Gi: 30, Ti: 40, Pi: 50, Ei: 60 };

/**
 * A Kubernetes quantity ("4", "3500m", "0.5", "1e3", "2Ki") in thousandths, rounded up like
 * resource.Quantity's MilliValue; undefined when `text` is not a quantity.
 */
function cpuMillis(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const match = /^([+-]?)(\d+(?:\.\d*)?|\.\d+)([a-zA-Z]*|[eE][+-]?\d+)$/.exec(text.trim());
  if (!match) return undefined;
  const [, sign, number, suffix] = match;
  const [whole, fraction = ''] = number.split('.');
  const digits = BigInt(`${whole}${fraction}` || '0');
  // value = digits / 10^fraction.length * scale, in thousandths.
  let numerator = digits * 1000n;
  let denominator = 10n ** BigInt(fraction.length);
  if (suffix in BINARY_SUFFIXES) {
    numerator *= 2n ** BigInt(BINARY_SUFFIXES[suffix]);
  } else {
    const exponent = suffix in DECIMAL_SUFFIXES ? DECIMAL_SUFFIXES[suffix] : exponentOf(suffix);
    if (exponent === undefined) return undefined;
    if (exponent >= 0) numerator *= 10n ** BigInt(exponent);
    else denominator *= 10n ** BigInt(-exponent);
  }
  const milli = Number((numerator + denominator - 1n) / denominator);
  return sign === '-' ? -milli : milli;
}

function exponentOf(suffix: string): number | undefined {
  return /^[eE][+-]?\d+$/.test(suffix) ? Number.parseInt(suffix.slice(1), 10) : undefined;
}
