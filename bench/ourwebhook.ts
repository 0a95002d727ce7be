/**
 * What the scenarios that run ours with its Service webhook share: registering the webhook on a
 * local control plane, waiting until ours serves it, and waiting on a condition while watching
 * that the manager did not exit.
 */
import { AdmissionregistrationV1Api } from '@kubernetes/client-node';
import { describeError } from '../shared/kube/errors.ts';
import {
  allocationFlags,
  ensureOurNamespace,
  freePorts,
  installCRDs,
  registerServiceWebhook,
  WEBHOOK_CONFIGURATION_NAME,
  type ControlPlane,
} from '../shared/localcontrolplane/index.ts';
import { eventLoopLagP99, type RunningManager } from './processes.ts';

/**
 * Polls `probe` every 100 ms until it returns a value (not undefined or false); fails when the
 * manager exited meanwhile (none given: nothing to watch) or after `timeoutMs`, with the last error.
 */
export async function until<T>(
  manager: RunningManager | undefined,
  what: string,
  probe: () => Promise<T | undefined | false>,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    const exited = manager?.exited();
    if (exited !== undefined) throw new Error(`waiting for ${what}: ${exited}`);
    try {
      const v = await probe();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = describeError(err);
    }
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (${last})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Our CRDs and namespace, and the Service webhook registered at a free loopback port
 * (failurePolicy Fail); returns the manager flags that serve it there (the scenario names the
 * controllers itself).
 */
export async function registerOurWebhook(cp: ControlPlane): Promise<string[]> {
  await installCRDs(cp.kubeConfig);
  await ensureOurNamespace(cp.kubeConfig);
  const [port] = await freePorts(1);
  await registerServiceWebhook(cp.kubeConfig, {
    baseUrl: `https://127.0.0.1:${port}`,
    failurePolicy: 'Fail',
  });
  return allocationFlags(`127.0.0.1:${port}`).filter((f) => !f.startsWith('--controllers='));
}

/** Until ours serves /metrics and has injected its CA bundle into the webhook configuration. */
export async function waitOurWebhook(
  manager: RunningManager | undefined,
  cp: ControlPlane,
  timeoutMs?: number,
): Promise<void> {
  await until(
    manager,
    'ours to serve /metrics',
    async () => ((await eventLoopLagP99(manager?.metricsUrl)) !== undefined ? true : undefined),
    timeoutMs,
  );
  const admission = cp.kubeConfig.makeApiClient(AdmissionregistrationV1Api);
  await until(
    manager,
    'the CA bundle in the webhook configuration',
    async () => {
      const c = await admission.readMutatingWebhookConfiguration({ name: WEBHOOK_CONFIGURATION_NAME });
      return (c.webhooks ?? []).every((w) => (w.clientConfig.caBundle ?? '') !== '');
    },
    timeoutMs,
  );
}
