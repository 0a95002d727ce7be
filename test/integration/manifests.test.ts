// What `kubectl apply -k` would send, checked by a real API server: the base (manifests/), the
// cert-manager overlay (overlays/cert-manager) and the monitoring
// manifests (manifests/monitoring), each built by the pinned kustomize and created as a
// server-side dry run (every admission and validation step, nothing stored). The third-party kinds
// are validated by their real CRDs (cert-manager's and prometheus-operator's, from the Go modules
// of the versions in hack/versions.env, copied into the cache by `make kustomize`).
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { load as loadYamlDoc } from 'js-yaml';
import {
  ApiextensionsV1Api,
  KubernetesObjectApi,
  loadAllYaml,
  type KubernetesObject,
  type V1ClusterRole,
  type V1ClusterRoleBinding,
  type V1CustomResourceDefinition,
  type V1Deployment,
  type V1MutatingWebhookConfiguration,
  type V1Service,
} from '@kubernetes/client-node';
import { startControlPlane, type ControlPlane } from '../../shared/localcontrolplane/index.ts';
import { kustomizeBuild, thirdPartyCrds, type ThirdParty } from './helpers/kustomize.ts';
import { waitFor } from './helpers/wait.ts';

const MANIFESTS = path.resolve(import.meta.dirname, '../../manifests');
const CERT_MANAGER_OVERLAY = path.resolve(import.meta.dirname, '../../overlays/cert-manager');
const NS = 'service-controller-manager';
/** The name of the Deployment, the MutatingWebhookConfiguration and most other objects. */
const NAME = 'service-controller-manager';

/** kind/namespace/name: what identifies an object in a kustomize build (namespace '' if none). */
function key(obj: KubernetesObject): string {
  return `${obj.kind}/${obj.metadata?.namespace ?? ''}/${obj.metadata?.name}`;
}

const keys = (objs: KubernetesObject[]): string[] => objs.map(key).sort();

function byKey(objs: KubernetesObject[]): Map<string, KubernetesObject> {
  const map = new Map(objs.map((o) => [key(o), o]));
  expect(map.size, 'no two objects share a kind/namespace/name').to.equal(objs.length);
  return map;
}

function find<T extends KubernetesObject>(objs: KubernetesObject[], kind: string, name: string): T {
  const found = objs.filter((o) => o.kind === kind && o.metadata?.name === name);
  expect(found.map(key), `one ${kind} ${name}`).to.have.length(1);
  return found[0] as T;
}

/** The objects of the files manifests/kustomization.yaml lists, read without kustomize. */
function baseFromFiles(): KubernetesObject[] {
  const kustomization = loadYamlDoc(fs.readFileSync(path.join(MANIFESTS, 'kustomization.yaml'), 'utf8')) as {
    resources?: string[];
  };
  const resources = kustomization.resources ?? [];
  expect(resources).to.not.be.empty;
  return resources.flatMap((r) => {
    const file = path.join(MANIFESTS, r);
    // Only files: a folder listed there would need this reader to learn kustomize's rules.
    expect(fs.statSync(file).isFile(), `${r} is a file`).to.equal(true);
    return loadAllYaml(fs.readFileSync(file, 'utf8')) as KubernetesObject[];
  });
}

/**
 * Objects of the base that must be there whatever else the base gains: the ones the manager, the
 * cert-manager overlay and the monitoring manifests rely on, by kind and name.
 */
const BASE_MUST_INCLUDE = [
  'Namespace/service-controller-manager',
  'ServiceAccount/service-controller-manager',
  'ClusterRole/service-controller-manager',
  'ClusterRole/service-controller-manager-metrics-reader',
  'CustomResourceDefinition/rangeallocations.scm.dev',
  'CustomResourceDefinition/loadbalancerippools.scm.dev',
  'Role/service-controller-manager-leader-election',
  'Role/service-controller-manager-webhook-cert',
  'ClusterRole/service-controller-manager-webhook-ca',
  'Service/service-controller-manager-webhook',
  'Service/service-controller-manager-metrics',
  'MutatingWebhookConfiguration/service-controller-manager',
  'Deployment/service-controller-manager',
  'PodDisruptionBudget/service-controller-manager',
  'NetworkPolicy/service-controller-manager',
];

describe('the manifests built by kustomize, on an API server (server-side dry run)', function () {
  this.timeout(120_000);
  let cp: ControlPlane;
  let api: KubernetesObjectApi;
  let base: KubernetesObject[];
  let namespace: KubernetesObject;

  before(async () => {
    // Built before the control plane starts, so that a missing kustomize fails at once.
    base = kustomizeBuild(MANIFESTS);
    cp = await startControlPlane();
    api = KubernetesObjectApi.makeApiClient(cp.kubeConfig);
    // The namespace for real: a dry run of the namespaced objects needs it to exist.
    const namespaces = base.filter((o) => o.kind === 'Namespace');
    expect(keys(namespaces)).to.deep.equal([`Namespace//${NS}`]);
    namespace = namespaces[0];
    await api.create(namespace);
  });
  after(async () => {
    await cp?.stop();
  });

  /**
   * Creates each object as a server-side dry run and returns the kind/namespace/name of what the
   * API server answered. The namespace, created for real in `before`, is compared instead (a dry
   * run create of an existing object is refused as AlreadyExists).
   */
  async function dryRun(objs: KubernetesObject[]): Promise<string[]> {
    const accepted: string[] = [];
    for (const obj of objs) {
      if (obj.kind === 'Namespace') {
        expect(obj, 'the namespace as created in before()').to.deep.equal(namespace);
        accepted.push(key(obj));
        continue;
      }
      const answer = await api.create(obj, undefined, 'All').catch((err: unknown) => {
        throw new Error(`${key(obj)} refused: ${err instanceof Error ? err.message : String(err)}`, {
          cause: err,
        });
      });
      accepted.push(key(answer));
    }
    return accepted.sort();
  }

  /**
   * Creates, for real, `project`'s CRDs of the kinds among `objs` whose group that project owns,
   * and waits until the API server serves them; returns their kinds.
   */
  async function installThirdPartyCrds(project: ThirdParty, objs: KubernetesObject[]): Promise<string[]> {
    const crds = thirdPartyCrds(project);
    const groups = new Set(crds.map((c) => c.spec.group));
    const wanted = new Set(
      objs
        .filter((o) => groups.has(o.apiVersion?.split('/')[0] ?? ''))
        .map((o) => `${o.apiVersion}/${o.kind}`),
    );
    const served = (c: V1CustomResourceDefinition): string[] =>
      c.spec.versions.filter((v) => v.served).map((v) => `${c.spec.group}/${v.name}/${c.spec.names.kind}`);
    const needed = crds.filter((c) => served(c).some((s) => wanted.has(s)));
    expect(
      needed
        .flatMap(served)
        .filter((s) => wanted.has(s))
        .sort(),
      'a CRD for each kind',
    ).to.deep.equal([...wanted].sort());
    const ext = cp.kubeConfig.makeApiClient(ApiextensionsV1Api);
    for (const crd of needed) {
      await ext.createCustomResourceDefinition({ body: crd });
      const name = crd.metadata!.name!;
      await waitFor(`CRD ${name} to be established`, async () => {
        const got = await ext.readCustomResourceDefinition({ name });
        return got.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True');
      });
      // Established is not yet in discovery, which KubernetesObjectApi resolves kinds through.
      const storage = crd.spec.versions.find((v) => v.storage)!.name;
      await waitFor(`${crd.spec.names.kind} in discovery`, async () => {
        await api.list(`${crd.spec.group}/${storage}`, crd.spec.names.kind, NS);
        return true;
      });
    }
    return needed.map((c) => c.spec.names.kind).sort();
  }

  it('kustomize builds manifests/ into exactly the objects of the files its kustomization lists', () => {
    const fromFiles = baseFromFiles();
    expect(keys(base)).to.deep.equal(keys(fromFiles));
    // Content too: the base has no transformers, so kustomize must change nothing.
    const files = byKey(fromFiles);
    for (const [k, obj] of byKey(base)) expect(obj, k).to.deep.equal(files.get(k));
  });

  it('the base is accepted: every object of the files, among them the ones the others rely on', async () => {
    const accepted = await dryRun(base);
    expect(accepted).to.deep.equal(keys(baseFromFiles()));
    const kindNames = accepted.map((k) => k.replace(/\/[^/]*\//, '/'));
    expect(kindNames).to.include.members(BASE_MUST_INCLUDE);
  });

  it('the cert-manager overlay is accepted, cert-manager objects by their real CRDs', async () => {
    const built = kustomizeBuild(CERT_MANAGER_OVERLAY);
    const CERT = 'service-controller-manager-webhook';
    const SECRET = 'service-controller-manager-webhook-cert';
    const ISSUER = 'service-controller-manager-selfsigned';
    const added = [`Certificate/${NS}/${CERT}`, `Issuer/${NS}/${ISSUER}`];
    // No self-managed certificate, so no Secret and no webhook configuration permission left.
    const certRbac = [
      `Role/${NS}/service-controller-manager-webhook-cert`,
      `RoleBinding/${NS}/service-controller-manager-webhook-cert`,
      'ClusterRole//service-controller-manager-webhook-ca',
      'ClusterRoleBinding//service-controller-manager-webhook-ca',
    ];
    expect(keys(base)).to.include.members(certRbac);
    expect(keys(built)).to.deep.equal([...keys(base).filter((k) => !certRbac.includes(k)), ...added].sort());

    expect(await installThirdPartyCrds('cert-manager', built)).to.deep.equal(['Certificate', 'Issuer']);
    expect(await dryRun(built)).to.deep.equal(keys(built));

    // The Certificate is for the names the API server dials, and the Deployment mounts its Secret.
    const certificate = find<KubernetesObject & { spec: Record<string, unknown> }>(
      built,
      'Certificate',
      CERT,
    );
    const mwc = find<V1MutatingWebhookConfiguration>(built, 'MutatingWebhookConfiguration', NAME);
    const svc = mwc.webhooks![0].clientConfig.service!;
    expect(certificate.spec).to.deep.include({
      secretName: SECRET,
      dnsNames: [`${svc.name}.${svc.namespace}.svc`, `${svc.name}.${svc.namespace}.svc.cluster.local`],
      issuerRef: { kind: 'Issuer', name: ISSUER },
    });
    expect(mwc.metadata!.annotations).to.deep.equal({ 'cert-manager.io/inject-ca-from': `${NS}/${CERT}` });

    const certDir = '/etc/service-controller-manager/webhook-cert';
    const deployment = find<V1Deployment>(built, 'Deployment', NAME);
    const baseDeployment = find<V1Deployment>(base, 'Deployment', NAME);
    const container = deployment.spec!.template.spec!.containers[0];
    expect(container.name).to.equal('manager');
    expect(container.args).to.deep.equal([
      ...baseDeployment.spec!.template.spec!.containers[0].args!,
      `--webhook-cert-dir=${certDir}`,
    ]);
    expect(container.volumeMounts).to.deep.include({
      name: 'webhook-cert',
      mountPath: certDir,
      readOnly: true,
    });
    expect(deployment.spec!.template.spec!.volumes).to.deep.include({
      name: 'webhook-cert',
      secret: { secretName: SECRET },
    });

    // Everything else is the base's, unchanged.
    const changed = new Set([`Deployment/${NS}/${NAME}`, `MutatingWebhookConfiguration//${NAME}`, ...added]);
    const baseObjects = byKey(base);
    for (const [k, obj] of byKey(built))
      if (!changed.has(k)) expect(obj, k).to.deep.equal(baseObjects.get(k));

    // The real schema is in force, not a stand-in: a key algorithm cert-manager lacks is refused.
    const bad = structuredClone(certificate);
    bad.spec.privateKey = { algorithm: 'DSA' };
    const refused = await api.create(bad, undefined, 'All').then(
      () => undefined,
      (err: unknown) => err as { code?: number; body?: unknown },
    );
    expect(refused?.code).to.equal(422);
    const body = typeof refused?.body === 'string' ? refused.body : JSON.stringify(refused?.body);
    expect(body).to.include('spec.privateKey.algorithm');
  });

  it('the monitoring manifests are accepted, the ServiceMonitor by its real CRD', async () => {
    const built = kustomizeBuild(path.join(MANIFESTS, 'monitoring'));
    expect(keys(built)).to.deep.equal([
      'ClusterRoleBinding//service-controller-manager-metrics-reader',
      `ServiceMonitor/${NS}/service-controller-manager`,
    ]);
    expect(await installThirdPartyCrds('prometheus-operator', built)).to.deep.equal(['ServiceMonitor']);
    expect(await dryRun(built)).to.deep.equal(keys(built));

    const monitor = find<KubernetesObject & { spec: unknown }>(
      built,
      'ServiceMonitor',
      'service-controller-manager',
    );
    expect(monitor.spec).to.deep.equal({
      selector: {
        matchLabels: {
          'app.kubernetes.io/name': 'service-controller-manager',
          'app.kubernetes.io/component': 'metrics',
        },
      },
      endpoints: [
        {
          port: 'https',
          scheme: 'https',
          path: '/metrics',
          bearerTokenFile: '/var/run/secrets/kubernetes.io/serviceaccount/token',
          tlsConfig: { insecureSkipVerify: true },
        },
      ],
    });
    const binding = find<V1ClusterRoleBinding>(
      built,
      'ClusterRoleBinding',
      'service-controller-manager-metrics-reader',
    );
    expect(binding.roleRef).to.deep.equal({
      apiGroup: 'rbac.authorization.k8s.io',
      kind: 'ClusterRole',
      name: 'service-controller-manager-metrics-reader',
    });
    expect(binding.subjects).to.deep.equal([
      { kind: 'ServiceAccount', name: 'prometheus-k8s', namespace: 'monitoring' },
    ]);
  });

  it("the ServiceMonitor selects only the base's metrics Service, by a port it has, and is let read /metrics", () => {
    const built = kustomizeBuild(path.join(MANIFESTS, 'monitoring'));
    const monitor = find<KubernetesObject & { spec: { selector: { matchLabels: Record<string, string> } } }>(
      built,
      'ServiceMonitor',
      'service-controller-manager',
    );
    const selector = Object.entries(monitor.spec.selector.matchLabels);
    const selected = base.filter(
      (o): o is V1Service =>
        o.kind === 'Service' &&
        o.metadata?.namespace === monitor.metadata!.namespace &&
        selector.every(([k, v]) => o.metadata?.labels?.[k] === v),
    );
    expect(keys(selected)).to.deep.equal([`Service/${NS}/service-controller-manager-metrics`]);
    expect(selected[0].spec!.ports!.map((p) => p.name)).to.include('https');

    const binding = find<V1ClusterRoleBinding>(
      built,
      'ClusterRoleBinding',
      'service-controller-manager-metrics-reader',
    );
    const reader = find<V1ClusterRole>(base, 'ClusterRole', binding.roleRef.name);
    expect(reader.rules).to.deep.equal([{ nonResourceURLs: ['/metrics'], verbs: ['get'] }]);
  });
});
