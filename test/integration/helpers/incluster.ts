/**
 * Running the manager as the Deployment's Pod runs it, on a local control plane: the manifests'
 * RBAC applied, a ServiceAccount token from the TokenRequest API in a folder shaped like the
 * kubelet's service-account mount, `KUBERNETES_SERVICE_HOST/PORT` set, no kubeconfig anywhere,
 * and the Deployment's own container args (only the bind addresses moved to free loopback ports,
 * so that two replicas fit on one host).
 */
import fs from 'node:fs';
import path from 'node:path';
import {
  CoreV1Api,
  KubernetesObjectApi,
  loadAllYaml,
  type KubeConfig,
  type KubernetesObject,
  type V1Deployment,
} from '@kubernetes/client-node';
import { Agent, fetch } from 'undici';
import type { ImageLayout } from '../../../hack/image/layout.ts';
import { startImage, type ImageProcess } from '../../../hack/image/run.ts';
import { freePorts, type ControlPlane } from '../../../shared/localcontrolplane/index.ts';
import { waitFor } from './wait.ts';

const REPO = new URL('../../..', import.meta.url).pathname;
export const OUR_NAMESPACE = 'service-controller-manager';
export const OUR_SERVICE_ACCOUNT = 'service-controller-manager';
export const OUR_USER = `system:serviceaccount:${OUR_NAMESPACE}:${OUR_SERVICE_ACCOUNT}`;

/** The objects of one manifest file, in file order. */
export function manifestObjects(file: string): KubernetesObject[] {
  return loadAllYaml(fs.readFileSync(path.join(REPO, 'manifests', file), 'utf8')) as KubernetesObject[];
}

/** Creates each object, or replaces it (with its current resourceVersion) when it exists. */
export async function applyObjects(kc: KubeConfig, objects: readonly KubernetesObject[]): Promise<void> {
  const api = KubernetesObjectApi.makeApiClient(kc);
  for (const obj of objects) {
    try {
      await api.create(obj);
    } catch (err) {
      if ((err as { code?: number }).code !== 409) throw err;
      const current = await api.read({
        apiVersion: obj.apiVersion,
        kind: obj.kind,
        metadata: { name: obj.metadata!.name!, namespace: obj.metadata?.namespace },
      });
      await api.replace({
        ...obj,
        metadata: { ...obj.metadata, resourceVersion: current.metadata?.resourceVersion },
      });
    }
  }
}

/** The manager container's args in manifests/deployment.yaml. */
export function deploymentArgs(): string[] {
  const deployment = manifestObjects('deployment.yaml').find((o) => o.kind === 'Deployment') as V1Deployment;
  return [...(deployment.spec!.template.spec!.containers[0].args ?? [])];
}

/**
 * A read-only volume of `layout` like /var/run/secrets/kubernetes.io/serviceaccount for
 * `namespace/name`: `token` from the TokenRequest API (one hour), `ca.crt` (the API server's CA)
 * and `namespace`. Returns the folder and the token.
 */
export async function serviceAccountVolume(
  cp: ControlPlane,
  layout: ImageLayout,
  namespace: string,
  name: string,
): Promise<{ dir: string; token: string }> {
  const request = await cp.kubeConfig.makeApiClient(CoreV1Api).createNamespacedServiceAccountToken({
    name,
    namespace,
    body: { spec: { expirationSeconds: 3600, audiences: [] } },
  });
  const token = request.status?.token;
  if (!token) throw new Error(`no token for ${namespace}/${name} in the TokenRequest's status`);
  const dir = layout.readOnlyVolume({ token, 'ca.crt': cp.certs.caCertPem, namespace });
  return { dir, token };
}

export interface InClusterReplica {
  process: ImageProcess;
  /** The Lease holder identity it logged at start. */
  identity(): Promise<string>;
  metricsUrl: string;
  healthUrl: string;
  webhookUrl: string;
  output(): string;
  /** Waits until /readyz answers 200 (leading with synced caches, or standing by). */
  ready(): Promise<void>;
  /** SIGTERM, SIGKILL after 15 s; resolves with the exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL: no graceful stop, no Lease release. */
  kill(): Promise<void>;
}

export interface InClusterOptions {
  cp: ControlPlane;
  layout: ImageLayout;
  serviceAccountDir: string;
  /** Flags after the Deployment's (a later flag wins). */
  extraArgs?: string[];
  /** The webhook's port (default: a free one), e.g. one registered before the start. */
  webhookPort?: number;
}

/** Replaces `--name=...` in `args` (keeping its place) or appends it. */
function setFlag(args: string[], name: string, value: string): string[] {
  const flag = `--${name}=`;
  const i = args.findIndex((a) => a.startsWith(flag));
  if (i < 0) return [...args, `${flag}${value}`];
  return args.map((a, j) => (j === i ? `${flag}${value}` : a));
}

export async function startInCluster(opts: InClusterOptions): Promise<InClusterReplica> {
  const [metricsPort, healthPort, freeWebhookPort] = await freePorts(3);
  const webhookPort = opts.webhookPort ?? freeWebhookPort;
  let args = deploymentArgs();
  args = setFlag(args, 'metrics-bind-address', `127.0.0.1:${metricsPort}`);
  args = setFlag(args, 'health-probe-bind-address', `127.0.0.1:${healthPort}`);
  args = setFlag(args, 'webhook-bind-address', `127.0.0.1:${webhookPort}`);
  // The API server reaches the webhook by URL at 127.0.0.1 here (no Service network).
  args = setFlag(args, 'webhook-cert-hosts', '127.0.0.1');
  args = setFlag(args, 'service-account-dir', opts.serviceAccountDir);
  args = [...args, '--log-format=json', ...(opts.extraArgs ?? [])];
  const apiServer = new URL(opts.cp.apiServerUrl);
  // As the kubelet starts the container: the image's user, its read-only root, no kubeconfig,
  // only the Service environment variables a Pod gets for the API server.
  const proc = startImage(opts.layout, {
    args,
    env: { KUBERNETES_SERVICE_HOST: apiServer.hostname, KUBERNETES_SERVICE_PORT: apiServer.port },
  });
  const running = (): boolean => proc.exitStatus() === undefined;
  return {
    process: proc,
    identity: () =>
      waitFor('the manager to log its identity', () => {
        for (const line of proc.output().split('\n')) {
          if (!line.includes('starting service-controller-manager')) continue;
          return (JSON.parse(line) as { identity?: string }).identity;
        }
        if (!running()) throw new Error(`the manager exited: ${proc.output().slice(-3000)}`);
        return undefined;
      }),
    metricsUrl: `https://127.0.0.1:${metricsPort}/metrics`,
    healthUrl: `http://127.0.0.1:${healthPort}`,
    webhookUrl: `https://127.0.0.1:${webhookPort}`,
    output: () => proc.output(),
    ready: async () => {
      await waitFor(
        '/readyz to be 200',
        async () =>
          (await fetch(`http://127.0.0.1:${healthPort}/readyz`).catch(() => undefined))?.status === 200,
      );
    },
    stop: async () => (await proc.stop(15_000)).code,
    kill: async () => {
      if (running()) process.kill(proc.pid, 'SIGKILL');
      await proc.exited;
    },
  };
}

/** An HTTPS GET that trusts any certificate (the metrics certificate is self-signed). */
export async function insecureGet(url: string, token?: string): Promise<{ status: number; body: string }> {
  const agent = new Agent({ connect: { rejectUnauthorized: false } });
  try {
    const resp = await fetch(url, {
      dispatcher: agent,
      headers: token ? { authorization: `Bearer ${token}` } : {},
    });
    return { status: resp.status, body: await resp.text() };
  } finally {
    await agent.close();
  }
}
