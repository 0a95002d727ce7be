/**
 * LoadBalancer addresses from pools against a real API server: the test cases of
 * ../shared/spec/loadbalancer.md (numbered as there), plus pool changes, overlapping pools and the
 * pool status and maps. Our webhook is registered (it adds the cleanup finalizer at create), and
 * the API server's audit log counts who wrote what.
 */
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import {
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  type CoreV1Event,
  type KubeConfig,
  type V1Service,
  type V1ServiceSpec,
} from '@kubernetes/client-node';
import {
  allocationFlags,
  freePorts,
  registerServiceWebhook,
  startControlPlane,
  type ControlPlane,
} from '../../shared/localcontrolplane/index.ts';
import type { LoadBalancerIPPool, LoadBalancerIPPoolSpec } from '../../controllers/loadbalancer/types.ts';
import { createNamespace } from './helpers/namespaces.ts';
import { core, inParallel } from './helpers/fixtures.ts';
import { prepareAllocation, readMap, startAllocatingManager } from './helpers/allocation.ts';
import type { RunningManager } from './helpers/manager.ts';
import { waitFor } from './helpers/wait.ts';

const REPO = path.resolve(import.meta.dirname, '../..');
const FINALIZER = 'service.kubernetes.io/load-balancer-cleanup';
const CONDITION = 'scm.dev/AddressAssigned';

function pools(kc: KubeConfig): CustomObjectsApi {
  return kc.makeApiClient(CustomObjectsApi);
}

async function createPool(kc: KubeConfig, name: string, spec: LoadBalancerIPPoolSpec): Promise<void> {
  await pools(kc).createClusterCustomObject({
    group: 'scm.dev',
    version: 'v1alpha1',
    plural: 'loadbalancerippools',
    body: { apiVersion: 'scm.dev/v1alpha1', kind: 'LoadBalancerIPPool', metadata: { name }, spec },
  });
}

async function deletePool(kc: KubeConfig, name: string): Promise<void> {
  try {
    await pools(kc).deleteClusterCustomObject({
      group: 'scm.dev',
      version: 'v1alpha1',
      plural: 'loadbalancerippools',
      name,
    });
  } catch (err) {
    if ((err as { code?: number }).code !== 404) throw err;
  }
}

async function readPool(kc: KubeConfig, name: string): Promise<LoadBalancerIPPool> {
  return (await pools(kc).getClusterCustomObject({
    group: 'scm.dev',
    version: 'v1alpha1',
    plural: 'loadbalancerippools',
    name,
  })) as LoadBalancerIPPool;
}

/** A pool that selects only the Services of namespace `ns` (each test has its own). */
function forNamespace(ns: string, spec: LoadBalancerIPPoolSpec): LoadBalancerIPPoolSpec {
  return { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': ns } }, ...spec };
}

async function createLB(
  kc: KubeConfig,
  namespace: string,
  name: string,
  opts: { spec?: Partial<V1ServiceSpec>; annotations?: Record<string, string> } = {},
): Promise<V1Service> {
  return core(kc).createNamespacedService({
    namespace,
    body: {
      metadata: { name, annotations: opts.annotations },
      spec: {
        type: 'LoadBalancer',
        selector: { app: name },
        ports: [{ port: 80, targetPort: 8080, protocol: 'TCP' }],
        ...opts.spec,
      },
    },
  });
}

const readService = (kc: KubeConfig, namespace: string, name: string): Promise<V1Service> =>
  core(kc).readNamespacedService({ namespace, name });

const ingressIPs = (svc: V1Service): string[] =>
  (svc.status?.loadBalancer?.ingress ?? []).map((i) => i.ip ?? '');
const conditionOf = (svc: V1Service): { status: string; reason: string; message: string } | undefined => {
  const c = svc.status?.conditions?.find((x) => x.type === CONDITION);
  return c && { status: c.status, reason: c.reason, message: c.message };
};

async function waitAddress(kc: KubeConfig, namespace: string, name: string): Promise<V1Service> {
  return waitFor(`an address on ${namespace}/${name}`, async () => {
    const svc = await readService(kc, namespace, name);
    return ingressIPs(svc).length > 0 ? svc : undefined;
  });
}

async function waitCondition(
  kc: KubeConfig,
  namespace: string,
  name: string,
  reason: string,
): Promise<V1Service> {
  return waitFor(`condition ${CONDITION} ${reason} on ${namespace}/${name}`, async () => {
    const svc = await readService(kc, namespace, name);
    return conditionOf(svc)?.reason === reason ? svc : undefined;
  });
}

/** Our Events about `name`. */
async function eventsFor(kc: KubeConfig, namespace: string, name: string): Promise<CoreV1Event[]> {
  const list = await kc
    .makeApiClient(CoreV1Api)
    .listNamespacedEvent({ namespace, fieldSelector: `involvedObject.name=${name}` });
  return list.items.filter((e) => e.source?.component === 'service-controller-manager');
}

const waitEvent = (kc: KubeConfig, namespace: string, name: string, reason: string): Promise<CoreV1Event> =>
  waitFor(`Event ${reason} on ${namespace}/${name}`, async () =>
    (await eventsFor(kc, namespace, name)).find((e) => e.reason === reason),
  );

describe('LoadBalancer addresses from pools', function () {
  this.timeout(180_000);
  let cp: ControlPlane;
  let mgr: RunningManager | undefined;
  let ns: string;
  const created: string[] = [];
  const pool = async (name: string, spec: LoadBalancerIPPoolSpec): Promise<void> => {
    created.push(name);
    await createPool(cp.kubeConfig, name, forNamespace(ns, spec));
  };
  /** Writes to Services in `ns` by our manager, from the audit log. */
  const ourWrites = (namespace: string): { name: string; subresource: string }[] =>
    cp
      .auditEvents()
      .filter(
        (e) =>
          e.user.username === 'manager' &&
          e.objectRef?.resource === 'services' &&
          e.objectRef.namespace === namespace &&
          ['update', 'patch'].includes(e.verb),
      )
      .map((e) => ({ name: e.objectRef?.name ?? '', subresource: e.objectRef?.subresource ?? '' }));

  before(async () => {
    cp = await startControlPlane({
      serviceClusterIpRange: '10.96.0.0/22,fd00:10:96::/112',
      auditWrites: true,
    });
    await prepareAllocation(cp);
    mgr = await startAllocatingManager(cp, {
      extraArgs: ['--controllers=loadbalancer', `--kubeconfig=${await cp.userKubeconfig('manager')}`],
      maps: [],
    });
  });
  after(async () => {
    if (mgr) expect(await mgr.stop()).to.equal(0);
    await cp?.stop();
  });
  beforeEach(async () => {
    ns = await createNamespace(cp.kubeConfig, 'lb');
  });
  afterEach(async () => {
    for (const name of created.splice(0)) await deletePool(cp.kubeConfig, name);
  });

  it('1: pool 192.0.2.0/30 gives the lowest free address with ipMode VIP and the ports, in one status write and no other', async () => {
    await pool('case1', { addresses: ['192.0.2.0/30'] });
    await pool('case1-buggy', { addresses: ['198.51.100.0/30'], avoidBuggyIPs: true, autoAssign: false });
    await createLB(cp.kubeConfig, ns, 'web', {
      spec: {
        ports: [
          { name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' },
          { name: 'dns', port: 53, targetPort: 53, protocol: 'UDP' },
        ],
      },
    });
    const svc = await waitAddress(cp.kubeConfig, ns, 'web');
    expect(svc.status?.loadBalancer?.ingress).to.deep.equal([
      {
        ip: '192.0.2.0',
        ipMode: 'VIP',
        ports: [
          { port: 80, protocol: 'TCP' },
          { port: 53, protocol: 'UDP' },
        ],
      },
    ]);
    expect(conditionOf(svc)).to.deep.equal({
      status: 'True',
      reason: 'Assigned',
      message: 'assigned 192.0.2.0',
    });
    expect(svc.metadata?.finalizers).to.deep.equal([FINALIZER]);
    const allocated = await waitEvent(cp.kubeConfig, ns, 'web', 'IPAllocated');
    expect(allocated.message).to.equal('Assigned IP [192.0.2.0]');

    await createLB(cp.kubeConfig, ns, 'buggy', { annotations: { 'scm.dev/address-pool': 'case1-buggy' } });
    const buggy = await waitAddress(cp.kubeConfig, ns, 'buggy');
    expect(ingressIPs(buggy)).to.deep.equal(['198.51.100.1']);
    await mgr!.waitIdle();
    // The webhook added the finalizer at create: one write per Service, the status.
    expect(ourWrites(ns)).to.deep.equal([
      { name: 'web', subresource: 'status' },
      { name: 'buggy', subresource: 'status' },
    ]);
  });

  it('2: a pool of 2 and 3 Services: the third gets AllocationFailed "pool exhausted", then the address a deleted one frees', async () => {
    await pool('case2', { addresses: ['203.0.113.0/31'] });
    await createLB(cp.kubeConfig, ns, 'a');
    await waitAddress(cp.kubeConfig, ns, 'a');
    await createLB(cp.kubeConfig, ns, 'b');
    await waitAddress(cp.kubeConfig, ns, 'b');
    await createLB(cp.kubeConfig, ns, 'c');
    const failed = await waitCondition(cp.kubeConfig, ns, 'c', 'PoolExhausted');
    expect(ingressIPs(failed)).to.deep.equal([]);
    expect(conditionOf(failed)).to.deep.equal({
      status: 'False',
      reason: 'PoolExhausted',
      message: 'pool exhausted: no free IPv4 address in case2 (2 of 2 in use)',
    });
    const event = await waitEvent(cp.kubeConfig, ns, 'c', 'AllocationFailed');
    expect(event.type).to.equal('Warning');
    expect(event.message).to.equal('pool exhausted: no free IPv4 address in case2 (2 of 2 in use)');
    const freed = ingressIPs(await readService(cp.kubeConfig, ns, 'a'))[0];
    await core(cp.kubeConfig).deleteNamespacedService({ namespace: ns, name: 'a' });
    const c = await waitAddress(cp.kubeConfig, ns, 'c');
    expect(ingressIPs(c)).to.deep.equal([freed]);
    expect(conditionOf(c)?.reason).to.equal('Assigned');
  });

  it('3: a requested IP free in the pool is granted; one outside every pool gets an Event and no status', async () => {
    await pool('case3', { addresses: ['192.0.2.16/28'] });
    await createLB(cp.kubeConfig, ns, 'wants', {
      annotations: { 'scm.dev/load-balancer-ips': '192.0.2.20' },
    });
    expect(ingressIPs(await waitAddress(cp.kubeConfig, ns, 'wants'))).to.deep.equal(['192.0.2.20']);
    await createLB(cp.kubeConfig, ns, 'legacy', { spec: { loadBalancerIP: '192.0.2.21' } });
    expect(ingressIPs(await waitAddress(cp.kubeConfig, ns, 'legacy'))).to.deep.equal(['192.0.2.21']);
    await createLB(cp.kubeConfig, ns, 'outside', {
      annotations: { 'scm.dev/load-balancer-ips': '10.1.2.3' },
    });
    const refused = await waitCondition(cp.kubeConfig, ns, 'outside', 'RequestedIPNotInPool');
    expect(ingressIPs(refused)).to.deep.equal([]);
    const event = await waitEvent(cp.kubeConfig, ns, 'outside', 'AllocationFailed');
    expect(event.message).to.equal(
      'requested IP not in pool: 10.1.2.3 is not in any pool that selects this Service',
    );
    await createLB(cp.kubeConfig, ns, 'taken', {
      annotations: { 'scm.dev/load-balancer-ips': '192.0.2.20' },
    });
    const taken = await waitCondition(cp.kubeConfig, ns, 'taken', 'RequestedIPInUse');
    expect(conditionOf(taken)?.message).to.equal(
      `requested IP already used: 192.0.2.20: ${ns}/wants holds it and this Service has no scm.dev/allow-shared-ip key`,
    );
  });

  it('4: one sharing key with 80/TCP and 443/TCP share an address; a third with 80/TCP gets its own', async () => {
    await pool('case4', { addresses: ['192.0.2.32/29'] });
    const shared = { 'scm.dev/allow-shared-ip': 'frontends' };
    await createLB(cp.kubeConfig, ns, 'http', { annotations: shared });
    const http = await waitAddress(cp.kubeConfig, ns, 'http');
    await createLB(cp.kubeConfig, ns, 'https', {
      annotations: shared,
      spec: { ports: [{ port: 443, targetPort: 8443, protocol: 'TCP' }] },
    });
    const https = await waitAddress(cp.kubeConfig, ns, 'https');
    await createLB(cp.kubeConfig, ns, 'http2', { annotations: shared });
    const http2 = await waitAddress(cp.kubeConfig, ns, 'http2');
    expect(ingressIPs(http)).to.deep.equal(['192.0.2.32']);
    expect(ingressIPs(https)).to.deep.equal(['192.0.2.32']);
    expect(ingressIPs(http2)).to.deep.equal(['192.0.2.33']);
    // The shared address stays held while one of its Services does.
    await core(cp.kubeConfig).deleteNamespacedService({ namespace: ns, name: 'http' });
    await createLB(cp.kubeConfig, ns, 'other');
    expect(ingressIPs(await waitAddress(cp.kubeConfig, ns, 'other'))).to.deep.equal(['192.0.2.34']);
  });

  it('5: RequireDualStack with only an IPv4 pool gets nothing, and says why', async () => {
    await pool('case5', { addresses: ['192.0.2.48/29'] });
    await createLB(cp.kubeConfig, ns, 'dual', {
      spec: { ipFamilyPolicy: 'RequireDualStack', ipFamilies: ['IPv4', 'IPv6'] },
    });
    const svc = await waitCondition(cp.kubeConfig, ns, 'dual', 'DualStackUnavailable');
    expect(ingressIPs(svc)).to.deep.equal([]);
    expect(conditionOf(svc)?.message).to.equal(
      'dual-stack unavailable: RequireDualStack needs an IPv6 address and no usable LoadBalancerIPPool with IPv6 addresses selects this Service',
    );
    await waitEvent(cp.kubeConfig, ns, 'dual', 'AllocationFailed');
    // With an IPv6 pool it gets both, IPv4 first.
    await pool('case5-v6', { addresses: ['2001:db8:5::/124'] });
    const both = await waitAddress(cp.kubeConfig, ns, 'dual');
    expect(ingressIPs(both)).to.deep.equal(['192.0.2.48', '2001:db8:5::']);
  });

  it('6: type LoadBalancer -> ClusterIP clears the status, frees the address and drops the finalizer', async () => {
    await pool('case6', { addresses: ['192.0.2.64/32'] });
    await createLB(cp.kubeConfig, ns, 'lb');
    await waitAddress(cp.kubeConfig, ns, 'lb');
    await createLB(cp.kubeConfig, ns, 'waiting');
    await waitCondition(cp.kubeConfig, ns, 'waiting', 'PoolExhausted');
    await core(cp.kubeConfig).patchNamespacedService({
      namespace: ns,
      name: 'lb',
      body: [
        { op: 'replace', path: '/spec/type', value: 'ClusterIP' },
        { op: 'remove', path: '/spec/ports/0/nodePort' },
      ],
    });
    const cleared = await waitFor('the status and finalizer gone', async () => {
      const svc = await readService(cp.kubeConfig, ns, 'lb');
      return ingressIPs(svc).length === 0 && !(svc.metadata?.finalizers ?? []).includes(FINALIZER)
        ? svc
        : undefined;
    });
    expect(conditionOf(cleared)).to.equal(undefined);
    expect(ingressIPs(await waitAddress(cp.kubeConfig, ns, 'waiting'))).to.deep.equal(['192.0.2.64']);
    await waitEvent(cp.kubeConfig, ns, 'lb', 'IPReleased');
  });

  it('7: deleting a Service removes the finalizer and frees the address (nothing stuck Terminating)', async () => {
    await pool('case7', { addresses: ['192.0.2.72/32'] });
    await createLB(cp.kubeConfig, ns, 'gone');
    await waitAddress(cp.kubeConfig, ns, 'gone');
    await createLB(cp.kubeConfig, ns, 'next');
    await waitCondition(cp.kubeConfig, ns, 'next', 'PoolExhausted');
    await core(cp.kubeConfig).deleteNamespacedService({ namespace: ns, name: 'gone' });
    await waitFor('the Service to be gone', async () => {
      try {
        await readService(cp.kubeConfig, ns, 'gone');
        return undefined;
      } catch (err) {
        return (err as { code?: number }).code === 404 ? true : undefined;
      }
    });
    expect(ingressIPs(await waitAddress(cp.kubeConfig, ns, 'next'))).to.deep.equal(['192.0.2.72']);
  });

  it('10: a Service of another loadBalancerClass is left untouched', async () => {
    await pool('case10', { addresses: ['192.0.2.80/29'] });
    await createLB(cp.kubeConfig, ns, 'theirs', { spec: { loadBalancerClass: 'example.com/other' } });
    await createLB(cp.kubeConfig, ns, 'ours');
    await waitAddress(cp.kubeConfig, ns, 'ours');
    await mgr!.waitIdle();
    const theirs = await readService(cp.kubeConfig, ns, 'theirs');
    expect(theirs.metadata?.finalizers).to.equal(undefined);
    expect(theirs.status?.loadBalancer).to.deep.equal({});
    expect(theirs.status?.conditions).to.equal(undefined);
    expect(await eventsFor(cp.kubeConfig, ns, 'theirs')).to.deep.equal([]);
    expect(ourWrites(ns).filter((w) => w.name === 'theirs')).to.deep.equal([]);
  });

  it('a deleted pool leaves its Services their addresses, with a PoolChanged Event and condition', async () => {
    await pool('shrinks', { addresses: ['192.0.2.88/30'] });
    await createLB(cp.kubeConfig, ns, 'kept');
    const before = await waitAddress(cp.kubeConfig, ns, 'kept');
    await deletePool(cp.kubeConfig, 'shrinks');
    const after = await waitCondition(cp.kubeConfig, ns, 'kept', 'PoolChanged');
    expect(ingressIPs(after)).to.deep.equal(ingressIPs(before));
    expect(conditionOf(after)?.status).to.equal('True');
    await waitEvent(cp.kubeConfig, ns, 'kept', 'PoolChanged');
    // A new pool over the same addresses does not hand the held one out again.
    await pool('shrinks-again', { addresses: ['192.0.2.88/30'] });
    await waitCondition(cp.kubeConfig, ns, 'kept', 'Assigned');
    await createLB(cp.kubeConfig, ns, 'newcomer');
    expect(ingressIPs(await waitAddress(cp.kubeConfig, ns, 'newcomer'))).to.deep.equal(['192.0.2.89']);
  });

  it('an overlapping pool is marked Conflict and skipped; the pools show their counts and maps', async () => {
    await pool('first', { addresses: ['192.0.2.96/29'] });
    await createLB(cp.kubeConfig, ns, 's');
    await waitAddress(cp.kubeConfig, ns, 's');
    await pool('second', { addresses: ['192.0.2.100-192.0.2.110'] });
    const second = await waitFor('pool second marked Conflict', async () => {
      const p = await readPool(cp.kubeConfig, 'second');
      return p.status?.conditions?.find((c) => c.type === 'Conflict' && c.status === 'True') ? p : undefined;
    });
    expect(second.status?.conditions?.map((c) => [c.type, c.status, c.reason, c.message])).to.deep.equal([
      ['Ready', 'False', 'Conflict', 'overlaps pool first; skipped'],
      [
        'Conflict',
        'True',
        'Overlap',
        'its addresses overlap pool first, which is older; this pool is skipped until the overlap is gone',
      ],
    ]);
    const conflict = await waitFor('a Conflict Event on pool second', async () => {
      const list = await core(cp.kubeConfig).listNamespacedEvent({
        namespace: 'default',
        fieldSelector: 'involvedObject.name=second,involvedObject.kind=LoadBalancerIPPool',
      });
      return list.items.find((e) => e.reason === 'Conflict');
    });
    expect([conflict.type, conflict.message]).to.deep.equal(['Warning', 'overlaps pool first; skipped']);
    const first = await waitFor('pool first counts', async () => {
      const p = await readPool(cp.kubeConfig, 'first');
      return p.status?.used === 1 ? p : undefined;
    });
    expect(first.status?.ipv4).to.deep.equal({ total: 8, used: 1, free: 7 });
    expect(first.status?.conditions?.find((c) => c.type === 'Ready')?.status).to.equal('True');
    const map = await waitFor('the pool map', () => readMap(cp.kubeConfig, 'lbpool-first-ipv4'));
    expect([map.range, map.size, map.used]).to.deep.equal(['192.0.2.96/29', 8, 1]);
  });
});

describe('LoadBalancer across restarts and leader changes', function () {
  this.timeout(300_000);
  let cp: ControlPlane;
  const procs: { proc: ChildProcess; exit: Promise<number | null>; output: () => string; user: string }[] =
    [];

  before(async () => {
    cp = await startControlPlane({ auditWrites: true });
    await prepareAllocation(cp);
  });
  after(async () => {
    for (const p of procs) if (p.proc.exitCode === null && p.proc.signalCode === null) p.proc.kill('SIGTERM');
    await Promise.all(procs.map((p) => p.exit));
    await cp?.stop();
  });

  async function startProcess(
    user: string,
    webhookPort: number,
    leaderElect: boolean,
  ): Promise<(typeof procs)[0]> {
    const kubeconfig = await cp.userKubeconfig(user);
    const proc = spawn(
      process.execPath,
      [
        'cmd/manager.ts',
        `--kubeconfig=${kubeconfig}`,
        `--leader-elect=${leaderElect}`,
        '--leader-elect-resource-namespace=service-controller-manager',
        '--leader-elect-lease-duration=6s',
        '--leader-elect-renew-deadline=4s',
        '--leader-elect-retry-period=1s',
        '--metrics-bind-address=0',
        '--health-probe-bind-address=0',
        '--log-format=json',
        ...allocationFlags(`127.0.0.1:${webhookPort}`),
        '--controllers=loadbalancer',
      ],
      { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    const exit = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
    const p = { proc, exit, output: () => out, user };
    procs.push(p);
    return p;
  }

  const statusWritesBy = (user: string, namespace: string): string[] =>
    cp
      .auditEvents()
      .filter(
        (e) =>
          e.user.username === user &&
          e.objectRef?.resource === 'services' &&
          e.objectRef.subresource === 'status' &&
          e.objectRef.namespace === namespace,
      )
      .map((e) => e.objectRef?.name ?? '');

  it('8: a restart with 50 assigned and 5 pending Services keeps the 50 where they are and writes nothing for them', async () => {
    const ns = await createNamespace(cp.kubeConfig, 'restart');
    await createPool(
      cp.kubeConfig,
      'restart',
      forNamespace(ns, { addresses: ['10.10.0.0/27', '10.10.0.32-10.10.0.49'] }),
    );
    const [hook] = await freePorts(1);
    await registerServiceWebhook(cp.kubeConfig, { baseUrl: `https://127.0.0.1:${hook}` });
    const first = await startProcess('manager-first', hook, false);
    const names = Array.from({ length: 55 }, (_, i) => `s${String(i).padStart(2, '0')}`);
    await waitFor(
      'the webhook to admit',
      async () => {
        try {
          await createLB(cp.kubeConfig, ns, names[0]);
          return true;
        } catch {
          return undefined;
        }
      },
      { timeoutMs: 60_000 },
    );
    for (const n of names.slice(1)) await createLB(cp.kubeConfig, ns, n);
    const settled = async (): Promise<Map<string, string[]>> =>
      waitFor(
        '50 assigned and 5 pending',
        async () => {
          const list = await core(cp.kubeConfig).listNamespacedService({ namespace: ns });
          const assigned = list.items.filter((s) => ingressIPs(s).length > 0);
          const pending = list.items.filter((s) => conditionOf(s)?.reason === 'PoolExhausted');
          if (assigned.length !== 50 || pending.length !== 5) return undefined;
          return new Map(list.items.map((s) => [s.metadata!.name!, ingressIPs(s)]));
        },
        { timeoutMs: 60_000 },
      );
    const before = await settled();
    const held = [...before.values()].flat();
    expect(new Set(held).size).to.equal(50);
    first.proc.kill('SIGTERM');
    expect(await first.exit).to.equal(0);

    await startProcess('manager-second', hook, false);
    await waitFor(
      'the second manager to rebuild its book',
      () => procs[1].output().includes('address book rebuilt from Service statuses') || undefined,
      { timeoutMs: 60_000 },
    );
    // A fresh Service after the restart must not get any of the 50 (the book was rebuilt first).
    await core(cp.kubeConfig).deleteNamespacedService({ namespace: ns, name: 's00' });
    const freed = before.get('s00')![0];
    const winner = await waitFor(
      'one pending Service to get the freed address',
      async () => {
        const list = await core(cp.kubeConfig).listNamespacedService({ namespace: ns });
        return list.items.find((s) => ingressIPs(s)[0] === freed && s.metadata?.name !== 's00');
      },
      { timeoutMs: 60_000 },
    );
    expect(before.get(winner.metadata!.name!)).to.deep.equal([]);
    const after = await core(cp.kubeConfig).listNamespacedService({ namespace: ns });
    for (const s of after.items) {
      const was = before.get(s.metadata!.name!)!;
      if (was.length > 0) expect(ingressIPs(s), s.metadata!.name).to.deep.equal(was);
    }
    expect(new Set(after.items.flatMap(ingressIPs)).size).to.equal(50);
    // The second manager wrote status only for the Service that got the freed address.
    expect(statusWritesBy('manager-second', ns)).to.deep.equal([winner.metadata!.name!]);
    procs[1].proc.kill('SIGTERM');
    expect(await procs[1].exit).to.equal(0);
  });

  it('9: two managers with leader election have one writer; killing the leader, the other continues', async () => {
    const ns = await createNamespace(cp.kubeConfig, 'leader');
    await createPool(cp.kubeConfig, 'leader', forNamespace(ns, { addresses: ['10.20.0.0/24'] }));
    const [hookA, hookB] = await freePorts(2);
    // Both replicas serve the webhook; registering one of them is enough here.
    await registerServiceWebhook(cp.kubeConfig, { baseUrl: `https://127.0.0.1:${hookB}` });
    const a = await startProcess('manager-a', hookA, true);
    const b = await startProcess('manager-b', hookB, true);
    const leases = cp.kubeConfig.makeApiClient(CoordinationV1Api);
    const holder = async (): Promise<string | undefined> => {
      try {
        const lease = await leases.readNamespacedLease({
          namespace: 'service-controller-manager',
          name: 'service-controller-manager',
        });
        return lease.spec?.holderIdentity;
      } catch {
        return undefined;
      }
    };
    await waitFor('a leader', holder, { timeoutMs: 60_000 });
    await waitFor(
      'the webhook to admit',
      async () => {
        try {
          await createLB(cp.kubeConfig, ns, 'warm');
          return true;
        } catch {
          return undefined;
        }
      },
      { timeoutMs: 60_000 },
    );
    const names = Array.from({ length: 20 }, (_, i) => `s${i}`);
    await inParallel(names, 10, (n) => createLB(cp.kubeConfig, ns, n));
    const assigned = await waitFor(
      '21 Services assigned',
      async () => {
        const list = await core(cp.kubeConfig).listNamespacedService({ namespace: ns });
        return list.items.every((s) => ingressIPs(s).length === 1) && list.items.length === 21
          ? list.items
          : undefined;
      },
      { timeoutMs: 60_000 },
    );
    expect(new Set(assigned.flatMap(ingressIPs)).size).to.equal(21);
    const writers = new Set([a, b].filter((p) => statusWritesBy(p.user, ns).length > 0).map((p) => p.user));
    expect(writers.size, 'one writer').to.equal(1);
    const leader = writers.has('manager-a') ? a : b;
    const follower = leader === a ? b : a;
    leader.proc.kill('SIGKILL');
    await leader.exit;
    // The webhook goes to the survivor (the Deployment's Service would do that).
    await registerServiceWebhook(cp.kubeConfig, {
      baseUrl: `https://127.0.0.1:${follower === a ? hookA : hookB}`,
    });
    // The survivor takes over once the lease expires, keeps the 21 and assigns new ones.
    await createLB(cp.kubeConfig, ns, 'after');
    const after = await waitAddress(cp.kubeConfig, ns, 'after');
    const held = new Set(assigned.flatMap(ingressIPs));
    expect(held.has(ingressIPs(after)[0])).to.equal(false);
    const list = await core(cp.kubeConfig).listNamespacedService({ namespace: ns });
    for (const s of list.items) {
      const was = assigned.find((x) => x.metadata?.name === s.metadata?.name);
      if (was) expect(ingressIPs(s)).to.deep.equal(ingressIPs(was));
    }
    expect(statusWritesBy(follower.user, ns)).to.deep.equal(['after']);
    follower.proc.kill('SIGTERM');
    expect(await follower.exit).to.equal(0);
  });
});

describe('LoadBalancer before its CRD is installed', function () {
  this.timeout(180_000);
  let cp: ControlPlane;
  let proc: ChildProcess | undefined;
  let exit: Promise<number | null> | undefined;

  before(async () => {
    cp = await startControlPlane({});
  });
  after(async () => {
    if (proc && proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
    await exit;
    await cp?.stop();
  });

  it('says what is missing as an error, keeps running, and assigns once the CRD is installed', async () => {
    proc = spawn(
      process.execPath,
      [
        'cmd/manager.ts',
        `--kubeconfig=${cp.kubeconfigPath}`,
        '--leader-elect=false',
        '--metrics-bind-address=0',
        '--health-probe-bind-address=0',
        '--webhook-bind-address=0',
        '--log-format=json',
        '--controllers=loadbalancer',
      ],
      { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    exit = new Promise<number | null>((resolve) => proc!.on('exit', (code) => resolve(code)));
    const line = await waitFor(
      'the error naming the missing CRD',
      () => out.split('\n').find((l) => l.includes('the LoadBalancerIPPool CRD is not installed')),
      { timeoutMs: 60_000 },
    );
    expect((JSON.parse(line) as { level: string; msg: string }).level).to.equal('error');
    await prepareAllocation(cp);
    await createPool(cp.kubeConfig, 'late', { addresses: ['192.0.2.0/29'] });
    await createLB(cp.kubeConfig, 'default', 'late');
    // Without the webhook the controller adds the finalizer itself, then writes the status.
    const svc = await waitAddress(cp.kubeConfig, 'default', 'late');
    expect(ingressIPs(svc)).to.deep.equal(['192.0.2.0']);
    expect(svc.metadata?.finalizers).to.deep.equal([FINALIZER]);
    expect(proc.exitCode).to.equal(null);
    proc.kill('SIGTERM');
    expect(await exit).to.equal(0);
  });
});
