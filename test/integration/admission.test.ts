// The admission webhook server and its certificates against a real API server: the API server
// calls our HTTPS server for ConfigMaps created in one test namespace (a MutatingWebhookConfiguration
// with a namespaceSelector), trusting the CA bundle our certificate source injected.
import { expect } from 'chai';
import fs from 'node:fs/promises';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import {
  AdmissionregistrationV1Api,
  CoreV1Api,
  type V1ConfigMap,
  type V1LabelSelector,
  type V1MutatingWebhook,
} from '@kubernetes/client-node';
import { Registry } from 'prom-client';
import {
  allow,
  type AdmissionHandler,
  type CertKeyPem,
  type CertSource,
  deny,
  DirCertSource,
  generateCA,
  isSignedBy,
  issueServingCert,
  jsonPointer,
  readCert,
  SelfManagedCertSource,
  WebhookServer,
} from '../../shared/admission/index.ts';
import { realClock } from '../../shared/clock.ts';
import { KubeClient } from '../../shared/kube/client.ts';
import { statusBody, statusCode } from '../../shared/kube/errors.ts';
import { createLogger, type Logger, nopLogger } from '../../shared/log.ts';
import { freePorts, startControlPlane, type ControlPlane } from '../../shared/localcontrolplane/index.ts';
import { createNamespace } from './helpers/namespaces.ts';
import { waitFor } from './helpers/wait.ts';

const MUTATED_LABEL = 'scm.test/mutated';
const DENY_LABEL = 'scm.test/deny';
const DENIAL = `configmaps labelled ${DENY_LABEL}=true are refused`;
const SECRET_NAME = 'webhook-tls';

const log: Logger = process.env.SCM_TEST_LOG
  ? createLogger({ format: 'text', verbosity: Number(process.env.SCM_TEST_LOG) })
  : nopLogger;

/** Adds MUTATED_LABEL to the object. */
const addLabel: AdmissionHandler = (request) => {
  const object = request.object as { metadata?: { labels?: Record<string, string> } } | undefined;
  return Promise.resolve(
    allow(
      object?.metadata?.labels === undefined
        ? [{ op: 'add', path: jsonPointer('metadata', 'labels'), value: { [MUTATED_LABEL]: 'true' } }]
        : [{ op: 'add', path: jsonPointer('metadata', 'labels', MUTATED_LABEL), value: 'true' }],
    ),
  );
};

const refuse: AdmissionHandler = () => Promise.resolve(deny(403, 'Forbidden', DENIAL));

const HANDLERS = new Map([
  ['/mutate-test', addLabel],
  ['/deny-test', refuse],
]);

/** GET /healthz on the webhook port, trusting only `caPem`: 'ok', or the TLS error code. */
function probeTls(port: number, caPem: string): Promise<string> {
  return new Promise<string>((resolve) => {
    const req = https.get({ host: '127.0.0.1', port, path: '/healthz', ca: caPem, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode === 200 ? 'ok' : `HTTP ${res.statusCode}`));
    });
    req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

function b64(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64');
}

describe('admission webhooks against a real API server', function () {
  let cp: ControlPlane | undefined;
  let client: KubeClient | undefined;
  /** Run in reverse after each test, also when it failed. */
  let cleanups: (() => Promise<void> | void)[] = [];

  before(async function () {
    cp = await startControlPlane();
    client = new KubeClient(cp.kubeConfig, { qps: 0, burst: 0, userAgent: 'admission-test' });
  });

  after(async function () {
    await client?.auth.close();
    await cp?.stop();
  });

  afterEach(async function () {
    const errors: unknown[] = [];
    for (const cleanup of cleanups.reverse()) {
      try {
        await cleanup();
      } catch (err) {
        errors.push(err);
      }
    }
    cleanups = [];
    if (errors.length > 0) throw errors[0];
  });

  function kube(): {
    cp: ControlPlane;
    client: KubeClient;
    core: CoreV1Api;
    admission: AdmissionregistrationV1Api;
  } {
    if (!cp || !client) throw new Error('the control plane did not start');
    return {
      cp,
      client,
      core: cp.kubeConfig.makeApiClient(CoreV1Api),
      admission: cp.kubeConfig.makeApiClient(AdmissionregistrationV1Api),
    };
  }

  /**
   * A MutatingWebhookConfiguration calling https://127.0.0.1:<port> for ConfigMap CREATEs in
   * `namespace`: `mutate.scm.test` on every one, then `deny.scm.test` on those labelled DENY_LABEL.
   */
  async function createWebhookConfiguration(
    namespace: string,
    port: number,
    caBundle?: string,
  ): Promise<string> {
    const name = `scm-admission-test-${namespace}`;
    const webhook = (hook: string, urlPath: string, objectSelector?: V1LabelSelector): V1MutatingWebhook => ({
      name: hook,
      clientConfig: { url: `https://127.0.0.1:${port}${urlPath}`, caBundle },
      rules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['configmaps'] }],
      namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': namespace } },
      objectSelector,
      sideEffects: 'None',
      admissionReviewVersions: ['v1'],
      failurePolicy: 'Fail',
      timeoutSeconds: 5,
    });
    await kube().admission.createMutatingWebhookConfiguration({
      body: {
        metadata: { name },
        webhooks: [
          webhook('mutate.scm.test', '/mutate-test'),
          webhook('deny.scm.test', '/deny-test', { matchLabels: { [DENY_LABEL]: 'true' } }),
        ],
      },
    });
    cleanups.push(async () => {
      await kube().admission.deleteMutatingWebhookConfiguration({ name });
    });
    return name;
  }

  async function caBundles(name: string): Promise<(string | undefined)[]> {
    const config = await kube().admission.readMutatingWebhookConfiguration({ name });
    return (config.webhooks ?? []).map((w) => w.clientConfig.caBundle);
  }

  async function startServer(port: number, certs: CertSource): Promise<WebhookServer> {
    const server = new WebhookServer({
      bindAddress: `127.0.0.1:${port}`,
      certs,
      log,
      registry: new Registry(),
      handlers: HANDLERS,
      requestTimeoutMs: 4000,
    });
    cleanups.push(() => server.close());
    expect(await server.start()).to.equal(`127.0.0.1:${port}`);
    return server;
  }

  /** A signal aborted after the test. */
  function testSignal(): AbortSignal {
    const stop = new AbortController();
    cleanups.push(() => stop.abort());
    return stop.signal;
  }

  function selfManaged(
    namespace: string,
    webhookConfigurationName: string,
    checkIntervalMs?: number,
    hosts: string[] = ['127.0.0.1'],
  ) {
    return new SelfManagedCertSource({
      client: kube().client,
      namespace,
      secretName: SECRET_NAME,
      webhookConfigurationName,
      hosts,
      clock: realClock,
      log,
      checkIntervalMs,
    });
  }

  /**
   * Waits until the API server calls the webhook with the configuration as it is now (it sees
   * configuration changes through a watch, a moment later): a probe ConfigMap comes back mutated.
   */
  async function waitUntilServed(namespace: string): Promise<void> {
    let probe = 0;
    await waitFor(
      'the API server to call the webhook',
      async () => {
        const created = await kube().core.createNamespacedConfigMap({
          namespace,
          body: { metadata: { name: `probe-${probe++}` } },
        });
        return created.metadata?.labels?.[MUTATED_LABEL] === 'true';
      },
      { intervalMs: 100 },
    );
  }

  async function createConfigMap(namespace: string, body: V1ConfigMap): Promise<V1ConfigMap> {
    return kube().core.createNamespacedConfigMap({ namespace, body });
  }

  it('a self-managed certificate is stored in a Secret, trusted through the injected CA bundle, and reused by a second source', async function () {
    const { core } = kube();
    const namespace = await createNamespace(kube().cp.kubeConfig, 'admission-self');
    const [port] = await freePorts(1);
    const configName = await createWebhookConfiguration(namespace, port);
    expect(await caBundles(configName)).to.deep.equal([undefined, undefined]);

    const source = selfManaged(namespace, configName);
    await source.start(testSignal());

    const secret = await core.readNamespacedSecret({ name: SECRET_NAME, namespace });
    expect(secret.type).to.equal('kubernetes.io/tls');
    expect(Object.keys(secret.data ?? {}).sort()).to.deep.equal(['ca.crt', 'ca.key', 'tls.crt', 'tls.key']);
    const text = (key: string): string => Buffer.from(secret.data?.[key] ?? '', 'base64').toString('utf8');
    expect(source.current()).to.deep.equal({ certPem: text('tls.crt'), keyPem: text('tls.key') });
    expect(isSignedBy(text('tls.crt'), text('ca.crt'))).to.equal(true);
    expect(readCert(text('tls.crt')).hosts).to.deep.equal(['127.0.0.1']);
    expect(await caBundles(configName)).to.deep.equal([b64(text('ca.crt')), b64(text('ca.crt'))]);

    await startServer(port, source);
    await waitUntilServed(namespace);
    const created = await createConfigMap(namespace, { metadata: { name: 'web' }, data: { answer: '42' } });
    expect(created.metadata?.labels).to.deep.equal({ [MUTATED_LABEL]: 'true' });
    const stored = await core.readNamespacedConfigMap({ name: 'web', namespace });
    expect([stored.metadata?.labels, stored.data]).to.deep.equal([
      { [MUTATED_LABEL]: 'true' },
      { answer: '42' },
    ]);

    const configVersion = (await kube().admission.readMutatingWebhookConfiguration({ name: configName }))
      .metadata?.resourceVersion;
    const second = selfManaged(namespace, configName);
    await second.start(testSignal());
    expect(second.current()).to.deep.equal(source.current());
    const after = await core.readNamespacedSecret({ name: SECRET_NAME, namespace });
    expect(after.metadata?.resourceVersion, 'the Secret was not written again').to.equal(
      secret.metadata?.resourceVersion,
    );
    const configAfter = await kube().admission.readMutatingWebhookConfiguration({ name: configName });
    expect(configAfter.metadata?.resourceVersion, 'the configuration was not written again').to.equal(
      configVersion,
    );
  });

  it('a certificate that does not cover the hosts any more is reissued by the same CA: the Secret is replaced', async function () {
    const namespace = await createNamespace(kube().cp.kubeConfig, 'admission-hosts');
    const [port] = await freePorts(1);
    const configName = await createWebhookConfiguration(namespace, port);
    await selfManaged(namespace, configName).start(testSignal());
    const before = await kube().core.readNamespacedSecret({ name: SECRET_NAME, namespace });

    const widened = selfManaged(namespace, configName, undefined, ['127.0.0.1', 'localhost']);
    await widened.start(testSignal());
    const after = await kube().core.readNamespacedSecret({ name: SECRET_NAME, namespace });
    expect(after.metadata?.resourceVersion).to.not.equal(before.metadata?.resourceVersion);
    expect(after.metadata?.uid, 'replaced, not recreated').to.equal(before.metadata?.uid);
    expect(after.data?.['ca.crt'], 'the same CA').to.equal(before.data?.['ca.crt']);
    const served = Buffer.from(after.data?.['tls.crt'] ?? '', 'base64').toString('utf8');
    expect(widened.current().certPem).to.equal(served);
    expect(readCert(served).hosts).to.deep.equal(['127.0.0.1', 'localhost']);
  });

  it('two sources starting at once on a missing Secret serve the same certificate', async function () {
    const namespace = await createNamespace(kube().cp.kubeConfig, 'admission-race');
    const [port] = await freePorts(1);
    const configName = await createWebhookConfiguration(namespace, port);
    const sources = [selfManaged(namespace, configName), selfManaged(namespace, configName)];
    await Promise.all(sources.map((s) => s.start(testSignal())));

    const secret = await kube().core.readNamespacedSecret({ name: SECRET_NAME, namespace });
    const servingPem = Buffer.from(secret.data?.['tls.crt'] ?? '', 'base64').toString('utf8');
    expect(sources.map((s) => s.current().certPem)).to.deep.equal([servingPem, servingPem]);
    const caBundle = secret.data?.['ca.crt'];
    expect(await caBundles(configName)).to.deep.equal([caBundle, caBundle]);
  });

  it('a webhook configuration created after the source started gets the CA bundle at a later check', async function () {
    const namespace = await createNamespace(kube().cp.kubeConfig, 'admission-late');
    const [port] = await freePorts(1);
    const configName = `scm-admission-test-${namespace}`;
    const source = selfManaged(namespace, configName, 200);
    await source.start(testSignal());

    await createWebhookConfiguration(namespace, port);
    const want = (await kube().core.readNamespacedSecret({ name: SECRET_NAME, namespace })).data?.['ca.crt'];
    expect(want).to.be.a('string');
    await waitFor('the CA bundle to be injected', async () => {
      const bundles = await caBundles(configName);
      return bundles.every((b) => b === want) && bundles;
    });
    expect(await caBundles(configName)).to.deep.equal([want, want]);
  });

  it('a denial reaches the client with its code, reason and message', async function () {
    const namespace = await createNamespace(kube().cp.kubeConfig, 'admission-deny');
    const [port] = await freePorts(1);
    const configName = await createWebhookConfiguration(namespace, port);
    const source = selfManaged(namespace, configName);
    await source.start(testSignal());
    await startServer(port, source);
    await waitUntilServed(namespace);

    const refused = await createConfigMap(namespace, {
      metadata: { name: 'refused', labels: { [DENY_LABEL]: 'true' } },
    }).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(statusCode(refused)).to.equal(403);
    const status = statusBody(refused);
    expect([status?.reason, status?.message]).to.deep.equal([
      'Forbidden',
      `admission webhook "deny.scm.test" denied the request: ${DENIAL}`,
    ]);
    const names = (await kube().core.listNamespacedConfigMap({ namespace })).items.map(
      (c) => c.metadata?.name,
    );
    expect(names).to.not.include('refused');
  });

  it('a certificate folder whose files are replaced by a cert from another CA is served without a restart', async function () {
    const namespace = await createNamespace(kube().cp.kubeConfig, 'admission-dir');
    const [port] = await freePorts(1);
    const now = Date.now();
    const validity = { notBefore: new Date(now - 3600_000), notAfter: new Date(now + 24 * 3600_000) };
    const issue = async (commonName: string): Promise<{ ca: CertKeyPem; serving: CertKeyPem }> => {
      const ca = await generateCA({ commonName, ...validity });
      return {
        ca,
        serving: await issueServingCert(ca, { commonName: 'webhook', hosts: ['127.0.0.1'], ...validity }),
      };
    };
    const first = await issue('dir-test-ca-1');
    const second = await issue('dir-test-ca-2');

    // The layout of a Secret volume: tls.crt -> ..data/tls.crt, ..data -> a timestamped folder;
    // an update writes a new folder and swaps the ..data symlink with a rename.
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'scm-admission-certs-'));
    cleanups.push(() => fs.rm(dir, { recursive: true, force: true }));
    const publish = async (version: string, pair: CertKeyPem): Promise<void> => {
      await fs.mkdir(path.join(dir, version));
      await fs.writeFile(path.join(dir, version, 'tls.crt'), pair.certPem);
      await fs.writeFile(path.join(dir, version, 'tls.key'), pair.keyPem);
      await fs.symlink(version, path.join(dir, '..data_tmp'));
      await fs.rename(path.join(dir, '..data_tmp'), path.join(dir, '..data'));
    };
    await publish('..v1', first.serving);
    await fs.symlink(path.join('..data', 'tls.crt'), path.join(dir, 'tls.crt'));
    await fs.symlink(path.join('..data', 'tls.key'), path.join(dir, 'tls.key'));

    const configName = await createWebhookConfiguration(namespace, port, b64(first.ca.certPem));
    const source = new DirCertSource({ dir, clock: realClock, log, pollIntervalMs: 100 });
    await source.start(testSignal());
    let changes = 0;
    source.onChange(() => changes++);
    await startServer(port, source);
    await waitUntilServed(namespace);
    const before = await createConfigMap(namespace, { metadata: { name: 'before' } });
    expect(before.metadata?.labels).to.deep.equal({ [MUTATED_LABEL]: 'true' });

    await publish('..v2', second.serving);
    await waitFor(
      'the new certificate to be served',
      async () => (await probeTls(port, second.ca.certPem)) === 'ok',
    );
    expect(changes).to.equal(1);
    expect(source.current()).to.deep.equal(second.serving);
    expect(await probeTls(port, first.ca.certPem)).to.equal('UNABLE_TO_VERIFY_LEAF_SIGNATURE');

    await kube().admission.patchMutatingWebhookConfiguration({
      name: configName,
      body: [0, 1].map((i) => ({
        op: 'replace',
        path: jsonPointer('webhooks', i, 'clientConfig', 'caBundle'),
        value: b64(second.ca.certPem),
      })),
    });
    await waitUntilServed(namespace);
    const after = await createConfigMap(namespace, { metadata: { name: 'after' } });
    expect(after.metadata?.labels).to.deep.equal({ [MUTATED_LABEL]: 'true' });
  });
});
