/**
 * Allocation through our webhook on a local control plane: our CRDs, our namespace, the webhook
 * registered by URL at a port chosen up front, and a manager serving it there.
 */
import {
  AdmissionregistrationV1Api,
  CustomObjectsApi,
  type KubeConfig,
  type V1MutatingWebhookConfiguration,
} from '@kubernetes/client-node';
import {
  allocationFlags,
  ensureOurNamespace,
  freePorts,
  installCRDs,
  registerServiceWebhook,
  type ControlPlane,
  WEBHOOK_CONFIGURATION_NAME,
} from '../../../shared/localcontrolplane/index.ts';
import { RangeAllocator } from '../../../shared/allocator/allocator.ts';
import type { ValueRange } from '../../../shared/allocator/ranges.ts';
import type { RangeAllocation } from '../../../shared/allocator/storage.ts';
import { startManager, type RunningManager } from './manager.ts';
import { waitFor } from './wait.ts';

export async function prepareAllocation(cp: ControlPlane): Promise<void> {
  await installCRDs(cp.kubeConfig);
  await ensureOurNamespace(cp.kubeConfig);
}

export interface AllocatingManagerOptions {
  /** Reuse this webhook port (a second replica behind a proxy picks its own). */
  port?: number;
  /** Register the webhook configuration (default true). */
  register?: boolean;
  failurePolicy?: 'Fail' | 'Ignore';
  extraArgs?: string[];
  /** Maps that must exist before the manager counts as started (default serviceips-ipv4, servicenodeports). */
  maps?: string[];
}

export async function startAllocatingManager(
  cp: ControlPlane,
  opts: AllocatingManagerOptions = {},
): Promise<RunningManager & { webhookPort: number }> {
  const port = opts.port ?? (await freePorts(1))[0];
  if (opts.register !== false) {
    await registerServiceWebhook(cp.kubeConfig, {
      baseUrl: `https://127.0.0.1:${port}`,
      failurePolicy: opts.failurePolicy,
    });
  }
  const mgr = await startManager(cp, [...allocationFlags(`127.0.0.1:${port}`), ...(opts.extraArgs ?? [])]);
  await waitForCaBundle(cp.kubeConfig);
  for (const name of opts.maps ?? ['serviceips-ipv4', 'servicenodeports']) {
    await waitFor(`RangeAllocation ${name}`, () => readMap(cp.kubeConfig, name));
  }
  return { ...mgr, webhookPort: port };
}

/** Waits until every webhook of our configuration has a CA bundle (the manager injected it); returns it. */
export async function waitForCaBundle(kc: KubeConfig): Promise<V1MutatingWebhookConfiguration> {
  return waitFor('the CA bundle in the webhook configuration', async () => {
    const c = await kc
      .makeApiClient(AdmissionregistrationV1Api)
      .readMutatingWebhookConfiguration({ name: WEBHOOK_CONFIGURATION_NAME });
    return (c.webhooks ?? []).every((w) => (w.clientConfig.caBundle ?? '') !== '') ? c : undefined;
  });
}

export async function readMap(kc: KubeConfig, name: string): Promise<RangeAllocation | undefined> {
  try {
    return (await kc.makeApiClient(CustomObjectsApi).getClusterCustomObject({
      group: 'scm.dev',
      version: 'v1alpha1',
      plural: 'rangeallocations',
      name,
    })) as RangeAllocation;
  } catch (err) {
    if ((err as { code?: number }).code === 404) return undefined;
    throw err;
  }
}

/** The values a stored map marks. */
export function mapValues<V>(map: RangeAllocation, range: ValueRange<V>): V[] {
  const a = new RangeAllocator(range);
  a.restore(map);
  return [...a.values()];
}
