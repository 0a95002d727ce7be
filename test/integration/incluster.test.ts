/**
 * The manager run as the Deployment's Pod runs it (test/integration/helpers/incluster.ts), from the
 * image's filesystem (hack/image/layout.ts: what the Dockerfile's final stage holds, read-only),
 * with nothing but the manifests' RBAC:
 * - every controller works and the API server's audit log records no 403 for it;
 * - every verb on every resource the RBAC grants was used in that run (or is listed below with
 *   the path that needs it), so no grant is spare;
 * - without any one rule of the ClusterRole or the Role the manager is refused: the RBAC is
 *   exactly what the code needs, rule by rule;
 * - two replicas: one holds the Lease, both serve the webhook, /metrics refuses unauthenticated
 *   and unauthorized scrapes; a stopped leader (SIGTERM) hands over within the lease duration, a
 *   killed one (SIGKILL) within the lease duration plus two retry periods of its last renewal.
 */
import { randomUUID } from 'node:crypto';
import {
  AuthorizationV1Api,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  DiscoveryV1Api,
  RbacAuthorizationV1Api,
  type KubernetesObject,
  type V1ClusterRole,
  type V1EndpointSlice,
  type V1PolicyRule,
  type V1Role,
} from '@kubernetes/client-node';
import { expect } from 'chai';
import { IPRange, PortRange } from '../../shared/allocator/ranges.ts';
import { Agent, fetch as httpsFetch } from 'undici';
import { CLEANUP_FINALIZER } from '../../controllers/loadbalancer/types.ts';
import {
  freePorts,
  installCRDs,
  registerServiceWebhook,
  startControlPlane,
  type AuditEvent,
  type ControlPlane,
} from '../../shared/localcontrolplane/index.ts';
import { layOutImage, type ImageLayout } from '../../hack/image/layout.ts';
import { mapValues, readMap, waitForCaBundle } from './helpers/allocation.ts';
import { core, createPod, createService } from './helpers/fixtures.ts';
import {
  applyObjects,
  insecureGet,
  manifestObjects,
  OUR_NAMESPACE,
  OUR_SERVICE_ACCOUNT,
  OUR_USER,
  serviceAccountVolume,
  startInCluster,
  type InClusterReplica,
} from './helpers/incluster.ts';
import { setPodStatus } from './helpers/pods.ts';
import { waitFor } from './helpers/wait.ts';

const METRICS_READER = 'service-controller-manager-metrics-reader';
const SCRAPER = 'metrics-scraper';
const STRANGER = 'stranger';

/** Every request of our ServiceAccount and of the scrapers, reads and refusals included. */
const AUDIT_POLICY = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived, ResponseStarted]
rules:
  - level: Metadata
    users: ['${OUR_USER}']
  - level: None
`;

const PAGED_LIST =
  'a paged list: informers on servers without streaming lists (WatchList) and after a 410 Gone (test/unit/informer/reflector.test.ts)';
/**
 * Grants the baseline run does not exercise, each with the path that needs it. Everything else
 * granted must show up in the audit log of that run.
 */
const NOT_EXERCISED: Record<string, string> = {
  'core/nodes:list': PAGED_LIST,
  'core/namespaces:list': PAGED_LIST,
  'core/endpoints:list': PAGED_LIST,
  'discovery.k8s.io/endpointslices:list': PAGED_LIST,
  'networking.k8s.io/ipaddresses:list': PAGED_LIST,
  // Rotation, or a certificate that no longer covers the hosts: test/integration/admission.test.ts.
  'core/secrets:update': 'the certificate rewritten',
};

const POOL_API = { group: 'scm.dev', version: 'v1alpha1', plural: 'loadbalancerippools' };

function rbacObjects(): KubernetesObject[] {
  return manifestObjects('rbac.yaml');
}

interface OurRole {
  kind: 'ClusterRole' | 'Role';
  name: string;
  rules: V1PolicyRule[];
}

/** The Roles and ClusterRoles of rbac.yaml bound to our ServiceAccount (not the scrapers'). */
function ourRoles(): OurRole[] {
  return rbacObjects()
    .filter((o) => (o.kind === 'ClusterRole' || o.kind === 'Role') && o.metadata!.name !== METRICS_READER)
    .map((o) => ({
      kind: o.kind as OurRole['kind'],
      name: o.metadata!.name!,
      rules: (o as V1Role).rules ?? [],
    }));
}

/** `group/resource[/subresource]:verb` for every verb a rule grants ('core' is the '' group). */
function grantsOf(rules: readonly V1PolicyRule[]): string[] {
  const out: string[] = [];
  for (const rule of rules) {
    for (const group of rule.apiGroups ?? []) {
      for (const resource of rule.resources ?? []) {
        for (const verb of rule.verbs) out.push(`${group || 'core'}/${resource}:${verb}`);
      }
    }
  }
  return out;
}

function grantOf(ev: AuditEvent): string | undefined {
  const ref = ev.objectRef;
  if (!ref?.resource) return undefined;
  const resource = ref.subresource ? `${ref.resource}/${ref.subresource}` : ref.resource;
  return `${ref.apiGroup || 'core'}/${resource}:${ev.verb}`;
}

function ours(events: AuditEvent[]): AuditEvent[] {
  return events.filter((e) => e.user.username === OUR_USER);
}

function refusals(events: AuditEvent[]): AuditEvent[] {
  return ours(events).filter((e) => e.responseStatus?.code === 403);
}

const describeRequest = (e: AuditEvent): string => `${e.verb} ${e.requestURI ?? ''}`;

/**
 * The `group/resource` a refusal without `rule` may name: its own resources, or for an owner's
 * finalizers the slice create the admission plugin refuses.
 */
function refusedResourcesWithout(rule: V1PolicyRule): string[] {
  return (rule.apiGroups ?? []).flatMap((group) =>
    (rule.resources ?? []).map((resource) =>
      resource.endsWith('/finalizers') ? 'discovery.k8s.io/endpointslices' : `${group || 'core'}/${resource}`,
    ),
  );
}

/** rbac.yaml with rule `drop.index` of role `drop.name` left out. */
function rbacWithout(drop: { kind: OurRole['kind']; name: string; index: number }): KubernetesObject[] {
  return rbacObjects().map((o) => {
    if (o.kind !== drop.kind || o.metadata!.name !== drop.name) return o;
    const rules = (o as V1ClusterRole).rules ?? [];
    return { ...o, rules: rules.filter((_, i) => i !== drop.index) } as KubernetesObject;
  });
}

/** Waits until the API server's authorizer says `verb` on `resource` is (not) allowed for us. */
async function waitForGrant(
  cp: ControlPlane,
  rule: V1PolicyRule,
  namespace: string,
  allowed: boolean,
): Promise<void> {
  const [resource, subresource] = (rule.resources ?? [])[0].split('/');
  const api = cp.kubeConfig.makeApiClient(AuthorizationV1Api);
  await waitFor(`${rule.verbs[0]} ${resource} to be ${allowed ? 'allowed' : 'refused'} for us`, async () => {
    const review = await api.createSubjectAccessReview({
      body: {
        spec: {
          user: OUR_USER,
          groups: [
            'system:serviceaccounts',
            `system:serviceaccounts:${OUR_NAMESPACE}`,
            'system:authenticated',
          ],
          resourceAttributes: {
            group: (rule.apiGroups ?? [''])[0],
            resource,
            subresource,
            verb: rule.verbs[0],
            namespace,
            name: (rule.resourceNames ?? [])[0],
          },
        },
      },
    });
    return (review.status?.allowed === true) === allowed;
  });
}

async function createPool(cp: ControlPlane, name: string, addresses: string[]): Promise<void> {
  await cp.kubeConfig.makeApiClient(CustomObjectsApi).createClusterCustomObject({
    ...POOL_API,
    body: {
      apiVersion: 'scm.dev/v1alpha1',
      kind: 'LoadBalancerIPPool',
      metadata: { name },
      spec: { addresses },
    },
  });
}

async function createNamespace(cp: ControlPlane, name: string): Promise<void> {
  await core(cp.kubeConfig).createNamespace({ body: { metadata: { name } } });
}

async function readyPod(cp: ControlPlane, ns: string, name: string, ip: string, app: string): Promise<void> {
  await createPod(cp.kubeConfig, ns, name, { labels: { app } });
  await setPodStatus(cp.kubeConfig, ns, name, { ip, ready: true });
}

async function userEndpoints(cp: ControlPlane, ns: string, name: string, ip: string): Promise<void> {
  await core(cp.kubeConfig).createNamespacedEndpoints({
    namespace: ns,
    body: {
      metadata: { name },
      subsets: [{ addresses: [{ ip }], ports: [{ name: 'db', port: 5432, protocol: 'TCP' }] }],
    },
  });
}

async function slicesOf(cp: ControlPlane, ns: string, service: string): Promise<V1EndpointSlice[]> {
  const list = await cp.kubeConfig
    .makeApiClient(DiscoveryV1Api)
    .listNamespacedEndpointSlice({ namespace: ns, labelSelector: `kubernetes.io/service-name=${service}` });
  return list.items;
}

const sliceAddresses = (slices: V1EndpointSlice[]): string[] =>
  slices.flatMap((s) => (s.endpoints ?? []).flatMap((e) => e.addresses)).sort();

async function deleteIfPresent(del: () => Promise<unknown>): Promise<void> {
  try {
    await del();
  } catch (err) {
    if ((err as { code?: number }).code !== 404) throw err;
  }
}

async function stopAll(replicas: InClusterReplica[]): Promise<void> {
  await Promise.all(replicas.map((r) => r.stop()));
}

describe('in cluster, from the image, with the manifests’ RBAC', function () {
  this.timeout(600_000);
  let cp: ControlPlane;
  let image: ImageLayout | undefined;
  let serviceAccountDir: string;
  let scraperToken: string;
  let strangerToken: string;
  const replicas: InClusterReplica[] = [];

  const start = async (opts: { webhookPort?: number } = {}): Promise<InClusterReplica> => {
    const r = await startInCluster({ cp, layout: image!, serviceAccountDir, ...opts });
    replicas.push(r);
    return r;
  };

  before(async function () {
    this.timeout(300_000);
    [cp, image] = await Promise.all([
      startControlPlane({
        auditPolicy: AUDIT_POLICY,
        // Slices name their owner with blockOwnerDeletion: this plugin makes that need the
        // finalizers rules, as on clusters that enable it.
        extraApiServerArgs: ['--enable-admission-plugins=OwnerReferencesPermissionEnforcement'],
      }),
      layOutImage({ repo: new URL('../..', import.meta.url).pathname }),
    ]);
    await createNamespace(cp, OUR_NAMESPACE);
    await installCRDs(cp.kubeConfig);
    await applyObjects(cp.kubeConfig, rbacObjects());
    serviceAccountDir = (await serviceAccountVolume(cp, image, OUR_NAMESPACE, OUR_SERVICE_ACCOUNT)).dir;
    // A scraper bound to the metrics-reader ClusterRole, and a ServiceAccount bound to nothing.
    const coreApi = cp.kubeConfig.makeApiClient(CoreV1Api);
    for (const name of [SCRAPER, STRANGER]) {
      await coreApi.createNamespacedServiceAccount({
        namespace: OUR_NAMESPACE,
        body: { metadata: { name } },
      });
    }
    await cp.kubeConfig.makeApiClient(RbacAuthorizationV1Api).createClusterRoleBinding({
      body: {
        metadata: { name: SCRAPER },
        roleRef: {
          apiGroup: 'rbac.authorization.k8s.io',
          kind: 'ClusterRole',
          name: 'service-controller-manager-metrics-reader',
        },
        subjects: [{ kind: 'ServiceAccount', name: SCRAPER, namespace: OUR_NAMESPACE }],
      },
    });
    const token = async (name: string): Promise<string> => {
      const request = await coreApi.createNamespacedServiceAccountToken({
        name,
        namespace: OUR_NAMESPACE,
        body: { spec: { audiences: [] } },
      });
      if (!request.status?.token) throw new Error(`no token for ${name}`);
      return request.status.token;
    };
    scraperToken = await token(SCRAPER);
    strangerToken = await token(STRANGER);
  });

  afterEach(async () => {
    await stopAll(replicas.splice(0));
  });

  after(async () => {
    await stopAll(replicas.splice(0));
    await image?.remove();
    await cp?.stop();
  });

  it('every controller works, no request of ours is refused, and every grant is used', async () => {
    const [webhookPort] = await freePorts(1);
    await registerServiceWebhook(cp.kubeConfig, { baseUrl: `https://127.0.0.1:${webhookPort}` });
    const mgr = await start({ webhookPort });
    await mgr.ready();
    await waitForCaBundle(cp.kubeConfig);
    for (const name of ['serviceips-ipv4', 'servicenodeports']) {
      await waitFor(`RangeAllocation ${name} (the leader's repair loop creates it)`, () =>
        readMap(cp.kubeConfig, name),
      );
    }
    const ns = 'app';
    await createNamespace(cp, ns);
    await createPool(cp, 'incluster', ['198.51.100.10-198.51.100.20']);

    // Endpoints and EndpointSlices of a selector Service; its ClusterIP from our map.
    const web = await createService(cp.kubeConfig, ns, 'web', { selector: { app: 'web' } });
    await readyPod(cp, ns, 'web-1', '10.200.0.1', 'web');
    await readyPod(cp, ns, 'web-2', '10.200.0.2', 'web');
    const endpointsIPs = async (name: string): Promise<string[]> => {
      const ep = await core(cp.kubeConfig)
        .readNamespacedEndpoints({ name, namespace: ns })
        .catch(() => undefined);
      return (ep?.subsets ?? []).flatMap((s) => (s.addresses ?? []).map((a) => a.ip)).sort();
    };
    await waitFor(
      'Endpoints web with both pods',
      async () => (await endpointsIPs('web')).join() === '10.200.0.1,10.200.0.2',
    );
    const ep = await core(cp.kubeConfig).readNamespacedEndpoints({ name: 'web', namespace: ns });
    expect(ep.subsets!.map((s) => s.ports!.map((p) => [p.port, p.protocol]))).to.deep.equal([
      [[8080, 'TCP']],
    ]);
    const webSlices = await waitFor('one EndpointSlice of web with both pods', async () => {
      const slices = await slicesOf(cp, ns, 'web');
      return slices.length === 1 && sliceAddresses(slices).join() === '10.200.0.1,10.200.0.2'
        ? slices
        : undefined;
    });
    expect(webSlices[0].metadata!.labels!['endpointslice.kubernetes.io/managed-by']).to.equal(
      'endpointslice-controller.k8s.io',
    );
    expect(
      webSlices[0].metadata!.ownerReferences!.map((o) => [o.kind, o.name, o.blockOwnerDeletion]),
    ).to.deep.equal([['Service', 'web', true]]);
    const clusterIPs = mapValues(
      (await readMap(cp.kubeConfig, 'serviceips-ipv4'))!,
      new IPRange(cp.serviceClusterIpRange),
    );
    expect(clusterIPs).to.include(web.spec!.clusterIP);

    // A NodePort from our map.
    const np = await createService(cp.kubeConfig, ns, 'np', { type: 'NodePort', selector: { app: 'web' } });
    const nodePort = np.spec!.ports![0].nodePort!;
    expect(
      mapValues((await readMap(cp.kubeConfig, 'servicenodeports'))!, new PortRange('30000-32767')),
    ).to.include(nodePort);

    // Mirroring of user-written Endpoints.
    await createService(cp.kubeConfig, ns, 'db', {
      selector: undefined,
      ports: [{ name: 'db', port: 5432, protocol: 'TCP' }],
    });
    await userEndpoints(cp, ns, 'db', '10.201.0.1');
    const dbSlices = await waitFor('a mirrored EndpointSlice of db', async () => {
      const slices = await slicesOf(cp, ns, 'db');
      return sliceAddresses(slices).join() === '10.201.0.1' ? slices : undefined;
    });
    expect(dbSlices[0].metadata!.labels!['endpointslice.kubernetes.io/managed-by']).to.equal(
      'endpointslicemirroring-controller.k8s.io',
    );
    expect(dbSlices[0].metadata!.ownerReferences!.map((o) => [o.kind, o.name])).to.deep.equal([
      ['Endpoints', 'db'],
    ]);

    // A LoadBalancer address and its status; the finalizer comes with the create (the webhook).
    await createService(cp.kubeConfig, ns, 'lb', { type: 'LoadBalancer', selector: { app: 'web' } });
    const ingress = async (): Promise<string> => {
      const svc = await core(cp.kubeConfig).readNamespacedService({ name: 'lb', namespace: ns });
      return JSON.stringify([
        (svc.status?.loadBalancer?.ingress ?? []).map((i) => [i.ip, i.ipMode]),
        svc.metadata?.finalizers ?? [],
      ]);
    };
    const assigned = JSON.stringify([[['198.51.100.10', 'VIP']], [CLEANUP_FINALIZER]]);
    await waitFor('lb to get 198.51.100.10', async () => (await ingress()) === assigned);
    // Released on a type change (the finalizer goes with a patch), assigned again: the second
    // IPAllocated Event is the first one's count raised (an Event update).
    await core(cp.kubeConfig).patchNamespacedService({
      namespace: ns,
      name: 'lb',
      body: [
        { op: 'replace', path: '/spec/type', value: 'ClusterIP' },
        { op: 'remove', path: '/spec/ports/0/nodePort' },
      ],
    });
    await waitFor('lb released', async () => (await ingress()) === JSON.stringify([[], []]));
    await core(cp.kubeConfig).patchNamespacedService({
      namespace: ns,
      name: 'lb',
      body: [{ op: 'replace', path: '/spec/type', value: 'LoadBalancer' }],
    });
    await waitFor('lb to get 198.51.100.10 again', async () => (await ingress()) === assigned);
    await waitFor('the IPAllocated Event counted twice', async () => {
      const events = await core(cp.kubeConfig).listNamespacedEvent({
        namespace: ns,
        fieldSelector: 'involvedObject.name=lb',
      });
      return events.items.some((e) => e.reason === 'IPAllocated' && e.count === 2);
    });

    // Updates and deletes: a pod gone, user Endpoints gone, a Service gone, a pool gone.
    await core(cp.kubeConfig).deleteNamespacedPod({ name: 'web-2', namespace: ns, gracePeriodSeconds: 0 });
    await waitFor(
      'Endpoints web without web-2',
      async () => (await endpointsIPs('web')).join() === '10.200.0.1',
    );
    await waitFor(
      'the slice of web without web-2',
      async () => sliceAddresses(await slicesOf(cp, ns, 'web')).join() === '10.200.0.1',
    );
    await core(cp.kubeConfig).deleteNamespacedEndpoints({ name: 'db', namespace: ns });
    await waitFor('the mirrored slice deleted', async () => (await slicesOf(cp, ns, 'db')).length === 0);
    await core(cp.kubeConfig).deleteNamespacedService({ name: 'web', namespace: ns });
    await waitFor('Endpoints web deleted', async () =>
      core(cp.kubeConfig)
        .readNamespacedEndpoints({ name: 'web', namespace: ns })
        .then(
          () => false,
          (err: { code?: number }) => err.code === 404,
        ),
    );
    await waitFor(
      'the pool’s RangeAllocation written',
      () => readMap(cp.kubeConfig, 'lbpool-incluster-ipv4'),
      { timeoutMs: 60_000 },
    );
    await cp.kubeConfig
      .makeApiClient(CustomObjectsApi)
      .deleteClusterCustomObject({ ...POOL_API, name: 'incluster' });
    await waitFor(
      'the pool’s RangeAllocation deleted',
      async () => (await readMap(cp.kubeConfig, 'lbpool-incluster-ipv4')) === undefined,
    );

    // /metrics: no token 401, a token without the grant 403, the scraper's token 200.
    expect((await insecureGet(mgr.metricsUrl)).status).to.equal(401);
    expect((await insecureGet(mgr.metricsUrl, strangerToken)).status).to.equal(403);
    const scraped = await insecureGet(mgr.metricsUrl, scraperToken);
    expect(scraped.status).to.equal(200);
    expect(scraped.body).to.include('controller_runtime_reconcile_total{controller="endpoint"');

    expect(await mgr.stop(), mgr.output().slice(-3000)).to.equal(0);
    const events = cp.auditEvents();
    expect(refusals(events).map(describeRequest)).to.deep.equal([]);
    // A request answered with anything but 403 used its grant (a get of a Lease not yet there is 404).
    const used = new Set(
      ours(events)
        .filter((e) => e.responseStatus?.code !== 403)
        .map(grantOf),
    );
    // Update on an owner's finalizers is checked by the OwnerReferencesPermissionEnforcement
    // plugin, not requested: a slice created with a blocking owner reference used it.
    if (used.has('discovery.k8s.io/endpointslices:create')) {
      used.add('core/services/finalizers:update');
      used.add('core/endpoints/finalizers:update');
    }
    const granted = [...new Set(ourRoles().flatMap((r) => grantsOf(r.rules)))];
    expect(granted.filter((g) => !used.has(g) && !(g in NOT_EXERCISED))).to.deep.equal([]);
    expect(Object.keys(NOT_EXERCISED).filter((g) => used.has(g) || !granted.includes(g))).to.deep.equal([]);
  });

  describe('without any one rule the manager is refused', () => {
    const cases = ourRoles().flatMap((role) =>
      role.rules.map((rule, index) => ({ kind: role.kind, name: role.name, index, rule })),
    );
    let run = 0;

    before(async () => {
      // The manager is down between runs, so Services created meanwhile skip the webhook: each
      // start then has a finalizer to add, ClusterIPs to adopt, Endpoints and slices to write.
      await registerServiceWebhook(cp.kubeConfig, {
        baseUrl: 'https://127.0.0.1:1',
        failurePolicy: 'Ignore',
      });
    });
    after(async () => {
      await applyObjects(cp.kubeConfig, rbacObjects());
    });

    for (const c of cases) {
      const what = `${(c.rule.resources ?? c.rule.nonResourceURLs ?? []).join(',')} ${c.rule.verbs.join(',')}`;
      it(`${c.kind} ${c.name} rule ${c.index} (${what})`, async () => {
        run++;
        await applyObjects(cp.kubeConfig, rbacWithout(c));
        await waitForGrant(cp, c.rule, OUR_NAMESPACE, false);
        // A world that needs every grant at start, as a first install: no Lease, no certificate
        // Secret, a selector Service with a ready pod, user Endpoints, a LoadBalancer Service
        // without our finalizer, a new pool.
        await deleteIfPresent(() =>
          cp.kubeConfig
            .makeApiClient(CoordinationV1Api)
            .deleteNamespacedLease({ name: 'service-controller-manager', namespace: OUR_NAMESPACE }),
        );
        await deleteIfPresent(() =>
          core(cp.kubeConfig).deleteNamespacedSecret({
            name: 'service-controller-manager-webhook-tls',
            namespace: OUR_NAMESPACE,
          }),
        );
        const ns = `rule-${run}`;
        await createNamespace(cp, ns);
        await createService(cp.kubeConfig, ns, 'web', { selector: { app: 'web' } });
        await readyPod(cp, ns, 'web-1', `10.202.${run}.1`, 'web');
        await createService(cp.kubeConfig, ns, 'db', {
          selector: undefined,
          ports: [{ name: 'db', port: 5432, protocol: 'TCP' }],
        });
        await userEndpoints(cp, ns, 'db', `10.203.${run}.1`);
        await createService(cp.kubeConfig, ns, 'lb', { type: 'LoadBalancer', selector: { app: 'web' } });
        await createPool(cp, ns, [`10.250.${run}.0/28`]);
        const before = cp.auditEvents().length;
        const mgr = await start();
        const refused = await waitFor(
          'a request of ours refused',
          async () => {
            // A scrape with a token makes the manager review it.
            await insecureGet(mgr.metricsUrl, scraperToken).catch(() => undefined);
            const r = refusals(cp.auditEvents().slice(before));
            return r.length > 0 ? r : undefined;
          },
          { timeoutMs: 60_000 },
        );
        await mgr.stop();
        const allowedToFail = refusedResourcesWithout(c.rule);
        expect(
          refused
            .map((e) => grantOf(e) ?? describeRequest(e))
            .filter((g) => !allowedToFail.some((r) => g.startsWith(`${r}:`))),
          'every refusal is of what the rule grants',
        ).to.deep.equal([]);
      });
    }
  });

  describe('two replicas', () => {
    it('one holds the Lease, both serve the webhook and refuse unauthenticated scrapes; a stopped leader hands over within the lease duration, a killed one once its lease expired', async () => {
      await waitForGrant(cp, ourRoles()[0].rules[0], OUR_NAMESPACE, true);
      // The replicas are called directly here; the configuration only receives the CA bundle.
      await registerServiceWebhook(cp.kubeConfig, {
        baseUrl: 'https://127.0.0.1:1',
        failurePolicy: 'Ignore',
      });
      const a = await start();
      const b = await start();
      const leases = cp.kubeConfig.makeApiClient(CoordinationV1Api);
      const readLease = () =>
        leases.readNamespacedLease({ name: 'service-controller-manager', namespace: OUR_NAMESPACE });
      const identities = new Map([
        [await a.identity(), a],
        [await b.identity(), b],
      ]);
      const holder = await waitFor('one replica to hold the Lease', async () => {
        const id = (await readLease()).spec?.holderIdentity;
        return id && identities.has(id) ? id : undefined;
      });
      const leader = identities.get(holder)!;
      const standby = leader === a ? b : a;
      for (const r of [a, b]) {
        await r.ready();
      }

      // Both replicas answer an AdmissionReview, with the certificate the CA bundle vouches for.
      const config = await waitForCaBundle(cp.kubeConfig);
      const ca = Buffer.from(config.webhooks![0].clientConfig.caBundle!, 'base64').toString();
      for (const r of [leader, standby]) {
        const review = await postReview(`${r.webhookUrl}/mutate-v1-service`, ca);
        expect(review.response?.allowed, r === leader ? 'leader' : 'standby').to.equal(true);
        expect(review.response?.patchType).to.equal('JSONPatch');
        const patch = JSON.parse(Buffer.from(review.response!.patch!, 'base64').toString()) as {
          path: string;
        }[];
        expect(patch.map((op) => op.path)).to.include('/spec/clusterIP');
      }

      // /metrics on both: 401 without a token, 403 without the grant, 200 for the scraper.
      for (const r of [leader, standby]) {
        expect((await insecureGet(r.metricsUrl)).status).to.equal(401);
        expect((await insecureGet(r.metricsUrl, strangerToken)).status).to.equal(403);
        expect((await insecureGet(r.metricsUrl, scraperToken)).status).to.equal(200);
      }

      const lease = await readLease();
      const durationMs = lease.spec!.leaseDurationSeconds! * 1000;
      const newHolderOf = (previous: string) =>
        waitFor(
          'another replica to take the Lease',
          async () => {
            const l = await readLease();
            return l.spec?.holderIdentity && l.spec.holderIdentity !== previous ? l : undefined;
          },
          { timeoutMs: durationMs + 15_000 },
        );

      // Stopping the leader (SIGTERM, as a rollout or a drain does) releases the Lease: the
      // standby takes it within the lease duration.
      const stoppedAt = Date.now();
      expect(await leader.stop(), leader.output().slice(-3000)).to.equal(0);
      const second = await newHolderOf(holder);
      expect(identities.get(second.spec!.holderIdentity!)).to.equal(standby);
      expect(new Date(second.spec!.acquireTime!).getTime() - stoppedAt).to.be.at.most(durationMs);
      await standby.ready();

      // Killing a leader (SIGKILL: no release) leaves the Lease to expire. A candidate counts the
      // lease duration from when it observed the last renewal (client-go's rule: no trust in the
      // holder's clock), and looks every retry period (2 s, jittered up to 1.2x): the handover
      // comes within the lease duration plus two retry periods of the last renewal.
      const third = await start();
      await third.identity();
      await third.ready();
      const killedAt = Date.now();
      await standby.kill();
      const lastRenewMs = new Date((await readLease()).spec!.renewTime!).getTime();
      const fourth = await newHolderOf(second.spec!.holderIdentity!);
      expect(fourth.spec!.holderIdentity).to.equal(await third.identity());
      const acquiredMs = new Date(fourth.spec!.acquireTime!).getTime();
      // Plus 3 s for a loaded machine (timers late, API round trips): measured 18.8-19.0 s from the kill.
      const bound = durationMs + 2 * 2_400 + 3_000;
      expect(acquiredMs - lastRenewMs).to.be.at.most(bound);
      expect(acquiredMs - killedAt).to.be.at.most(bound);
      expect(acquiredMs - killedAt, 'not before the lease expired').to.be.at.least(durationMs - 2_400);
      expect(fourth.spec!.leaseTransitions).to.equal((lease.spec!.leaseTransitions ?? 0) + 2);
    });
  });
});

interface AdmissionReviewResponse {
  response?: { uid: string; allowed: boolean; patch?: string; patchType?: string };
}

/** POSTs a dry-run CREATE review of a ClusterIP Service to the webhook at `url`, trusting `ca`. */
async function postReview(url: string, ca: string): Promise<AdmissionReviewResponse> {
  const agent = new Agent({ connect: { ca } });
  try {
    const uid = randomUUID();
    const service = {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'review', namespace: 'two' },
      spec: { type: 'ClusterIP', ports: [{ port: 80, protocol: 'TCP' }], selector: { app: 'x' } },
    };
    const resp = await httpsFetch(url, {
      method: 'POST',
      dispatcher: agent,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        apiVersion: 'admission.k8s.io/v1',
        kind: 'AdmissionReview',
        request: {
          uid,
          kind: { group: '', version: 'v1', kind: 'Service' },
          resource: { group: '', version: 'v1', resource: 'services' },
          namespace: 'two',
          name: 'review',
          operation: 'CREATE',
          userInfo: { username: 'test' },
          object: service,
          dryRun: true,
        },
      }),
    });
    expect(resp.status).to.equal(200);
    const review = (await resp.json()) as AdmissionReviewResponse;
    expect(review.response?.uid).to.equal(uid);
    return review;
  } finally {
    await agent.close();
  }
}
