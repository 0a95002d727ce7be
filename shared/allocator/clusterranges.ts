/**
 * The ranges our maps allocate from, checked against the cluster's at start.
 *
 * kube-apiserver checks every ClusterIP against its ServiceCIDRs and every nodePort against its
 * `--service-node-port-range`, and refuses values outside them. So `--service-cluster-ip-range`
 * must lie inside the cluster's ServiceCIDRs (read from `networking.k8s.io/v1`; unset, it is
 * them), and `--service-node-port-range` inside the API server's range, which the API does not
 * publish: it is read from the command line of kube-apiserver Pods in kube-system (kubeadm-style
 * static Pods) where those can be read, and otherwise only logged as unchecked.
 */
import { CoreV1Api, NetworkingV1Api, type V1ServiceCIDR } from '@kubernetes/client-node';
import ipaddr from 'ipaddr.js';
import { FlagError } from '../config.ts';
import type { KubeClient } from '../kube/client.ts';
import { describeError, statusCode } from '../kube/errors.ts';
import type { Logger } from '../log.ts';
import { IPRange, PortRange } from './ranges.ts';

export interface AllocationRanges {
  /** Primary first; one, or an IPv4 and an IPv6 range. */
  clusterIPs: IPRange[];
  nodePorts: PortRange;
}

/** True when CIDR `inner` lies inside CIDR `outer` (pure). */
export function cidrWithin(inner: string, outer: string): boolean {
  const [innerNet, innerBits] = ipaddr.parseCIDR(inner);
  const [outerNet, outerBits] = ipaddr.parseCIDR(outer);
  return innerNet.kind() === outerNet.kind() && innerBits >= outerBits && innerNet.match(outerNet, outerBits);
}

/** The node port range the API server's command line sets (its default when not set), or undefined. */
export function apiServerNodePortRange(command: readonly string[]): string | undefined {
  if (!command.some((c) => c.endsWith('kube-apiserver'))) return undefined;
  for (let i = 0; i < command.length; i++) {
    const m = /^--service-node-port-range(?:=(.*))?$/.exec(command[i]);
    if (m) return m[1] ?? command[i + 1];
  }
  return '30000-32767';
}

export async function resolveAllocationRanges(
  client: KubeClient,
  flags: { serviceClusterIPRanges: string[]; serviceNodePortRange: string },
  log: Logger,
): Promise<AllocationRanges> {
  const clusterIPs = await resolveClusterIPRanges(client, flags.serviceClusterIPRanges, log);
  const nodePorts = new PortRange(flags.serviceNodePortRange);
  await checkNodePortRange(client, nodePorts, log);
  return { clusterIPs, nodePorts };
}

async function resolveClusterIPRanges(client: KubeClient, flag: string[], log: Logger): Promise<IPRange[]> {
  let serviceCIDRs: V1ServiceCIDR[] | undefined;
  try {
    serviceCIDRs = (await client.api(NetworkingV1Api).listServiceCIDR()).items;
  } catch (err) {
    if (flag.length === 0) {
      throw new FlagError(
        `--service-cluster-ip-range is not set and the cluster's ServiceCIDRs cannot be read (${describeError(err)}); set the flag`,
      );
    }
    log.info('cannot read the cluster ServiceCIDRs; --service-cluster-ip-range is not checked against them', {
      err: describeError(err),
      code: statusCode(err),
    });
  }
  // The API server's own ServiceCIDR (named "kubernetes") first: its first CIDR is the primary family.
  const ordered = (serviceCIDRs ?? []).sort((a, b) =>
    a.metadata?.name === 'kubernetes' ? -1 : b.metadata?.name === 'kubernetes' ? 1 : 0,
  );
  const clusterCidrs = ordered.flatMap((s) => s.spec?.cidrs ?? []);
  const wanted = flag.length > 0 ? flag : (ordered[0]?.spec?.cidrs ?? []);
  if (wanted.length === 0) {
    throw new FlagError(
      '--service-cluster-ip-range is not set and the cluster has no ServiceCIDR; set the flag',
    );
  }
  const ranges = wanted.map((c) => new IPRange(c));
  if (serviceCIDRs !== undefined) {
    for (const r of ranges) {
      if (!clusterCidrs.some((c) => cidrWithin(r.text, c))) {
        throw new FlagError(
          `--service-cluster-ip-range: ${r.text} is not inside the cluster's ServiceCIDRs (${clusterCidrs.join(', ') || 'none'}); ` +
            'the API server refuses ClusterIPs outside them',
        );
      }
    }
  }
  return ranges;
}

async function checkNodePortRange(client: KubeClient, range: PortRange, log: Logger): Promise<void> {
  let command: string[] | undefined;
  try {
    const pods = await client.api(CoreV1Api).listNamespacedPod({
      namespace: 'kube-system',
      labelSelector: 'component=kube-apiserver',
    });
    command = pods.items.map((p) => [
      ...(p.spec?.containers?.[0]?.command ?? []),
      ...(p.spec?.containers?.[0]?.args ?? []),
    ])[0];
  } catch (err) {
    log.v(1).info('cannot read the kube-apiserver Pods; --service-node-port-range is not checked', {
      err: describeError(err),
    });
    return;
  }
  const theirs = command && apiServerNodePortRange(command);
  if (theirs === undefined) {
    log.info(
      "the API server's node port range cannot be read here (no kube-apiserver Pod in kube-system); --service-node-port-range is not checked",
      {
        range: range.text,
      },
    );
    return;
  }
  const apiRange = new PortRange(theirs);
  if (range.first < apiRange.first || range.last > apiRange.last) {
    throw new FlagError(
      `--service-node-port-range: ${range.text} is not inside the API server's --service-node-port-range ${apiRange.text}; the API server refuses node ports outside it`,
    );
  }
}
