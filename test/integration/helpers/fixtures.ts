/** Small builders for the objects integration tests create through the real API server. */
import { CoreV1Api } from '@kubernetes/client-node';
import type { KubeConfig, V1ContainerPort, V1Pod, V1Service, V1ServiceSpec } from '@kubernetes/client-node';
import { setPodStatus, type PodStatusUpdate } from './pods.ts';

export function core(kc: KubeConfig): CoreV1Api {
  return kc.makeApiClient(CoreV1Api);
}

export async function createService(
  kc: KubeConfig,
  namespace: string,
  name: string,
  spec: Partial<V1ServiceSpec> = {},
  labels?: Record<string, string>,
): Promise<V1Service> {
  return core(kc).createNamespacedService({
    namespace,
    body: {
      metadata: { name, labels },
      spec: {
        selector: { app: 'a' },
        ports: [{ port: 80, targetPort: 8080, protocol: 'TCP' }],
        ...spec,
      },
    },
  });
}

export interface PodOptions {
  labels?: Record<string, string>;
  ports?: V1ContainerPort[];
  hostname?: string;
  subdomain?: string;
}

export async function createPod(
  kc: KubeConfig,
  namespace: string,
  name: string,
  opts: PodOptions = {},
): Promise<V1Pod> {
  return core(kc).createNamespacedPod({
    namespace,
    body: {
      metadata: { name, labels: opts.labels ?? { app: 'a' } },
      spec: {
        hostname: opts.hostname,
        subdomain: opts.subdomain,
        containers: [{ name: 'c', image: 'registry.invalid/none:1', ports: opts.ports }],
      },
    },
  });
}

/** Creates a pod and writes its status (IP, readiness, phase, node) like a kubelet would. */
export async function createRunningPod(
  kc: KubeConfig,
  namespace: string,
  name: string,
  status: PodStatusUpdate,
  opts: PodOptions = {},
): Promise<V1Pod> {
  await createPod(kc, namespace, name, opts);
  return setPodStatus(kc, namespace, name, status);
}

/** Runs `fn` over `items` with at most `width` calls in flight. */
export async function inParallel<T>(
  items: readonly T[],
  width: number,
  fn: (item: T) => Promise<unknown>,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, worker));
}

/** Pod IP number i (i < 65536) in 10.200.0.0/16, which no Service range here overlaps. */
export function podIp(i: number): string {
  return `10.200.${(i >> 8) & 255}.${i & 255}`;
}
