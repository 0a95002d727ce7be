// Plays the kubelet's part for tests: with no kubelet in the local control plane, a pod's status
// (IPs, phase, readiness) is written through the pods/status subresource, and its node through
// pods/binding (spec.nodeName cannot be changed by an update).
import { ApiException, CoreV1Api } from '@kubernetes/client-node';
import type { KubeConfig, V1Pod, V1PodCondition } from '@kubernetes/client-node';

export type PodPhase = 'Pending' | 'Running' | 'Succeeded' | 'Failed' | 'Unknown';

export interface PodStatusUpdate {
  /** The pod's IP, or its IPs (one per family, primary first); omitted or [] clears them. */
  ip?: string | string[];
  /** Sets the Ready and ContainersReady conditions. */
  ready: boolean;
  /** Default 'Running'. */
  phase?: PodPhase;
  /** Binds the pod to this node first (once; the node need not exist). */
  nodeName?: string;
}

function condition(type: string, value: boolean, previous: V1PodCondition | undefined): V1PodCondition {
  const status = value ? 'True' : 'False';
  if (previous && previous.status === status) return previous;
  return { type, status, lastTransitionTime: new Date() };
}

/** Writes the pod's status (retrying on conflicts) and returns the pod as stored. */
export async function setPodStatus(
  kc: KubeConfig,
  namespace: string,
  name: string,
  update: PodStatusUpdate,
): Promise<V1Pod> {
  const core = kc.makeApiClient(CoreV1Api);
  if (update.nodeName) {
    const pod = await core.readNamespacedPod({ name, namespace });
    const current = pod.spec?.nodeName;
    if (!current) {
      await core.createNamespacedPodBinding({
        name,
        namespace,
        body: {
          metadata: { name, namespace },
          target: { apiVersion: 'v1', kind: 'Node', name: update.nodeName },
        },
      });
    } else if (current !== update.nodeName) {
      throw new Error(`pod ${namespace}/${name} is already bound to node ${current}, not ${update.nodeName}`);
    }
  }
  const ips = update.ip === undefined ? [] : Array.isArray(update.ip) ? update.ip : [update.ip];
  for (let attempt = 1; ; attempt++) {
    const pod = await core.readNamespacedPod({ name, namespace });
    const old = pod.status?.conditions ?? [];
    const find = (type: string): V1PodCondition | undefined => old.find((c) => c.type === type);
    pod.status = {
      ...pod.status,
      phase: update.phase ?? 'Running',
      podIP: ips[0],
      podIPs: ips.length > 0 ? ips.map((ip) => ({ ip })) : undefined,
      conditions: [
        ...old.filter((c) => c.type !== 'Ready' && c.type !== 'ContainersReady'),
        condition('ContainersReady', update.ready, find('ContainersReady')),
        condition('Ready', update.ready, find('Ready')),
      ],
    };
    try {
      return await core.replaceNamespacedPodStatus({ name, namespace, body: pod });
    } catch (err) {
      if (err instanceof ApiException && err.code === 409 && attempt < 5) continue;
      throw err;
    }
  }
}
