/**
 * ClusterIP / NodePort allocation on the local control plane: installs our CRDs and registers the
 * Service webhook (manifests/webhook.yaml) by URL, pointing at a manager on this machine, so
 * `make run` and the integration tests allocate through our maps the way a cluster does. The
 * manager injects the CA bundle (self-managed certificates for 127.0.0.1).
 */
import fs from 'node:fs';
import path from 'node:path';
import {
  AdmissionregistrationV1Api,
  ApiextensionsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  loadAllYaml,
  type KubernetesObject,
  type KubeConfig,
  type V1CustomResourceDefinition,
  type V1MutatingWebhookConfiguration,
} from '@kubernetes/client-node';

const MANIFESTS = path.resolve(import.meta.dirname, '../../manifests');
export const OUR_NAMESPACE = 'service-controller-manager';
export const WEBHOOK_CONFIGURATION_NAME = 'service-controller-manager';

function manifest<T>(file: string, kind: string): T {
  const docs = loadAllYaml(fs.readFileSync(path.join(MANIFESTS, file), 'utf8')) as { kind?: string }[];
  const doc = docs.find((d) => d.kind === kind);
  if (!doc) throw new Error(`manifests/${file} holds no ${kind}`);
  return doc as T;
}

const isAlreadyExists = (err: unknown): boolean => (err as { code?: number }).code === 409;

/** Creates our CRDs (idempotent) and waits until the API server serves them. */
export async function installCRDs(kc: KubeConfig, timeoutMs = 30_000): Promise<void> {
  const api = kc.makeApiClient(ApiextensionsV1Api);
  const dir = path.join(MANIFESTS, 'crds');
  for (const file of fs.readdirSync(dir).filter((f) => f.endsWith('.yaml'))) {
    const crd = manifest<V1CustomResourceDefinition>(path.join('crds', file), 'CustomResourceDefinition');
    try {
      await api.createCustomResourceDefinition({ body: crd });
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
    }
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const got = await api.readCustomResourceDefinition({ name: crd.metadata!.name! });
      if (got.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True')) break;
      if (Date.now() > deadline)
        throw new Error(`CRD ${crd.metadata!.name} not established after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** Our namespace (the webhook's Secret lives there; the webhook exempts it). */
export async function ensureOurNamespace(kc: KubeConfig): Promise<void> {
  try {
    await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: OUR_NAMESPACE } } });
  } catch (err) {
    if (!isAlreadyExists(err)) throw err;
  }
}

export interface WebhookRegistration {
  /** e.g. https://127.0.0.1:9443 */
  baseUrl: string;
  failurePolicy?: 'Fail' | 'Ignore';
}

/** manifests/webhook.yaml's MutatingWebhookConfiguration, reaching the webhook at a URL. */
export function serviceWebhookConfiguration(reg: WebhookRegistration): V1MutatingWebhookConfiguration {
  const config = manifest<V1MutatingWebhookConfiguration>('webhook.yaml', 'MutatingWebhookConfiguration');
  for (const hook of config.webhooks ?? []) {
    const p = hook.clientConfig.service?.path ?? '/';
    hook.clientConfig = { url: `${reg.baseUrl}${p}` };
    if (reg.failurePolicy) hook.failurePolicy = reg.failurePolicy;
  }
  return config;
}

/** Creates (or replaces) the webhook configuration; the manager injects the CA bundle. */
export async function registerServiceWebhook(kc: KubeConfig, reg: WebhookRegistration): Promise<void> {
  const api = kc.makeApiClient(AdmissionregistrationV1Api);
  const body = serviceWebhookConfiguration(reg);
  try {
    await api.createMutatingWebhookConfiguration({ body });
  } catch (err) {
    if (!isAlreadyExists(err)) throw err;
    const current = await api.readMutatingWebhookConfiguration({ name: WEBHOOK_CONFIGURATION_NAME });
    body.metadata = { ...body.metadata, resourceVersion: current.metadata?.resourceVersion };
    const bundle = current.webhooks?.[0]?.clientConfig.caBundle;
    for (const hook of body.webhooks ?? []) hook.clientConfig.caBundle = bundle;
    await api.replaceMutatingWebhookConfiguration({ name: WEBHOOK_CONFIGURATION_NAME, body });
  }
}

export async function unregisterServiceWebhook(kc: KubeConfig): Promise<void> {
  try {
    await kc
      .makeApiClient(AdmissionregistrationV1Api)
      .deleteMutatingWebhookConfiguration({ name: WEBHOOK_CONFIGURATION_NAME });
  } catch (err) {
    if ((err as { code?: number }).code !== 404) throw err;
  }
}

/** The manager flags that serve the webhook at `host:port` with a self-managed certificate for it. */
export function allocationFlags(webhookAddress: string): string[] {
  return [
    '--controllers=*,clusterip,nodeport',
    `--webhook-bind-address=${webhookAddress}`,
    `--webhook-namespace=${OUR_NAMESPACE}`,
    `--webhook-configuration-name=${WEBHOOK_CONFIGURATION_NAME}`,
    '--webhook-cert-hosts=127.0.0.1,localhost',
  ];
}

/** Creates manifests/samples/loadbalancerippool.yaml's pool (kept when it exists). */
export async function createSamplePool(kc: KubeConfig): Promise<string> {
  const pool = manifest<KubernetesObject>(
    path.join('samples', 'loadbalancerippool.yaml'),
    'LoadBalancerIPPool',
  );
  try {
    await kc.makeApiClient(CustomObjectsApi).createClusterCustomObject({
      group: 'scm.dev',
      version: 'v1alpha1',
      plural: 'loadbalancerippools',
      body: pool,
    });
  } catch (err) {
    if (!isAlreadyExists(err)) throw err;
  }
  return pool.metadata?.name ?? '';
}
