/**
 * ClusterIP and NodePort allocation through our webhook against a real API server: the test cases
 * of ../shared/spec/allocators.md (numbered as there), the webhook down with failurePolicy Ignore,
 * dry-run, the externalIPs policy and the utilisation alerts.
 */
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import {
  CoreV1Api,
  CustomObjectsApi,
  type CoreV1Event,
  type KubeConfig,
  type V1Service,
} from '@kubernetes/client-node';
import {
  allocationFlags,
  freePorts,
  registerServiceWebhook,
  startControlPlane,
  type ControlPlane,
} from '../../shared/localcontrolplane/index.ts';
import { IPRange, PortRange } from '../../shared/allocator/ranges.ts';
import type { RangeAllocation } from '../../shared/allocator/storage.ts';
import { createNamespace } from './helpers/namespaces.ts';
import { core, createService, inParallel } from './helpers/fixtures.ts';
import { mapValues, prepareAllocation, readMap, startAllocatingManager } from './helpers/allocation.ts';
import { scrape, type RunningManager } from './helpers/manager.ts';
import { startCutProxy, type CutProxy } from './helpers/cutproxy.ts';
import { apiServerMetrics } from './helpers/apiserver.ts';
import { waitFor } from './helpers/wait.ts';

const REPO = path.resolve(import.meta.dirname, '../..');
const NODE_PORTS = new PortRange('30000-32767');

/** The status message of a refused API call. */
async function refusal(call: Promise<unknown>): Promise<{ code: number; message: string }> {
  try {
    await call;
  } catch (err) {
    const e = err as { code?: number; body?: unknown };
    const body =
      typeof e.body === 'string'
        ? (JSON.parse(e.body) as { message?: string })
        : (e.body as { message?: string });
    return { code: e.code ?? 0, message: body?.message ?? String(err) };
  }
  throw new Error('expected the API server to refuse the call');
}

/** Our Events about `name` (the API server's own IP repair loop records some reasons too). */
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

/** Changes the stored map as another writer would: read, change, replace; again on a 409 (the repair loop wrote first). */
async function writeMap(kc: KubeConfig, name: string, change: (m: RangeAllocation) => void): Promise<void> {
  const api = kc.makeApiClient(CustomObjectsApi);
  for (let attempt = 0; ; attempt++) {
    const map = (await readMap(kc, name))!;
    change(map);
    try {
      await api.replaceClusterCustomObject({
        group: 'scm.dev',
        version: 'v1alpha1',
        plural: 'rangeallocations',
        name,
        body: map,
      });
      return;
    } catch (err) {
      if ((err as { code?: number }).code !== 409 || attempt >= 10) throw err;
    }
  }
}

const nodePortsOf = (svc: V1Service): number[] => (svc.spec?.ports ?? []).map((p) => p.nodePort ?? 0);

describe('ClusterIP and NodePort allocation through our webhook', function () {
  this.timeout(180_000);
  let cp: ControlPlane;
  let mgr: RunningManager | undefined;
  let ns: string;
  const v4 = new IPRange('10.96.0.0/22');
  const v6 = new IPRange('fd00:10:96::/112');
  const mapHas = async (name: string, value: string | number): Promise<boolean> => {
    const map = (await readMap(cp.kubeConfig, name))!;
    if (name === 'servicenodeports') return mapValues(map, NODE_PORTS).includes(value as number);
    return mapValues(map, name.endsWith('ipv6') ? v6 : v4).includes(value as string);
  };

  before(async () => {
    cp = await startControlPlane({
      serviceClusterIpRange: '10.96.0.0/22,fd00:10:96::/112',
      // Services stored as JSON, so case 10 can write one into etcd the way a bug or a restore would.
      extraApiServerArgs: ['--storage-media-type=application/json'],
    });
    await prepareAllocation(cp);
    // No --service-cluster-ip-range: the ranges are the cluster's ServiceCIDRs.
    mgr = await startAllocatingManager(cp, {
      extraArgs: ['--repair-interval=1s', '--external-ips-allowed-cidrs=192.0.2.0/24'],
      maps: ['serviceips-ipv4', 'serviceips-ipv6', 'servicenodeports'],
    });
  });
  after(async () => {
    if (mgr) expect(await mgr.stop()).to.equal(0);
    await cp?.stop();
  });
  beforeEach(async () => {
    ns = await createNamespace(cp.kubeConfig, 'alloc');
  });

  it('a --service-cluster-ip-range outside the cluster ServiceCIDRs fails at start, naming the flag and the cluster ranges', async () => {
    const proc = spawn(
      process.execPath,
      [
        'cmd/manager.ts',
        `--kubeconfig=${cp.kubeconfigPath}`,
        '--controllers=clusterip',
        '--service-cluster-ip-range=10.200.0.0/24',
      ],
      { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let err = '';
    proc.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((resolve) => proc.on('exit', resolve));
    expect(code).to.equal(2);
    expect(err.trim()).to.equal(
      "error: --service-cluster-ip-range: 10.200.0.0/24 is not inside the cluster's ServiceCIDRs (10.96.0.0/22, fd00:10:96::/112); the API server refuses ClusterIPs outside them",
    );
  });

  it('bootstrap: the maps hold the kubernetes Service IP, which the API server allocated itself', async () => {
    expect(await mapHas('serviceips-ipv4', '10.96.0.1')).to.equal(true);
    const map = (await readMap(cp.kubeConfig, 'serviceips-ipv4'))!;
    expect({ range: map.range, size: map.size }).to.deep.equal({ range: '10.96.0.0/22', size: 1022 });
  });

  it('2: a requested IP in range and free is granted; taken is denied naming it; outside is denied with the range', async () => {
    const granted = await createService(cp.kubeConfig, ns, 'a', { clusterIP: '10.96.1.200' });
    expect(granted.spec?.clusterIPs).to.deep.equal(['10.96.1.200']);
    expect(await mapHas('serviceips-ipv4', '10.96.1.200')).to.equal(true);
    const taken = await refusal(createService(cp.kubeConfig, ns, 'b', { clusterIP: '10.96.1.200' }));
    expect(taken.code).to.equal(422);
    expect(taken.message).to.contain(
      'spec.clusterIPs[0]: Invalid value: "10.96.1.200": provided IP is already allocated',
    );
    const outside = await refusal(createService(cp.kubeConfig, ns, 'c', { clusterIP: '10.96.9.9' }));
    expect(outside.code).to.equal(422);
    expect(outside.message).to.contain(
      'spec.clusterIPs[0]: Invalid value: "10.96.9.9": provided IP is not in the valid range. The range of valid IPs is 10.96.0.0/22',
    );
  });

  it('a picked ClusterIP comes from the upper band; the Service stores exactly what we chose', async () => {
    const svc = await createService(cp.kubeConfig, ns, 's');
    const offset = v4.offsetOf(svc.spec!.clusterIP!)!;
    expect(offset).to.be.at.least(v4.bandOffset);
    expect(svc.spec?.ipFamilies).to.deep.equal(['IPv4']);
    expect(svc.spec?.ipFamilyPolicy).to.equal('SingleStack');
    expect(await mapHas('serviceips-ipv4', svc.spec!.clusterIP!)).to.equal(true);
  });

  it('3: a NodePort Service gets a port from the upper band; 30007 is granted once, the second is denied', async () => {
    const svc = await createService(cp.kubeConfig, ns, 'np', { type: 'NodePort' });
    const [port] = nodePortsOf(svc);
    expect(port)
      .to.be.at.least(30000 + NODE_PORTS.bandOffset)
      .and.at.most(32767);
    expect(await mapHas('servicenodeports', port)).to.equal(true);
    const first = await createService(cp.kubeConfig, ns, 'np7', {
      type: 'NodePort',
      ports: [{ port: 80, nodePort: 30007, protocol: 'TCP' }],
    });
    expect(nodePortsOf(first)).to.deep.equal([30007]);
    const second = await refusal(
      createService(cp.kubeConfig, ns, 'np7b', {
        type: 'NodePort',
        ports: [{ port: 80, nodePort: 30007, protocol: 'TCP' }],
      }),
    );
    expect(second.code).to.equal(422);
    expect(second.message).to.contain(
      'spec.ports[0].nodePort: Invalid value: 30007: provided port is already allocated',
    );
    const outside = await refusal(
      createService(cp.kubeConfig, ns, 'np7c', {
        type: 'NodePort',
        ports: [{ port: 80, nodePort: 29999, protocol: 'TCP' }],
      }),
    );
    expect(outside.message).to.contain('The range of valid ports is 30000-32767');
  });

  it('4: 53/TCP + 53/UDP on a NodePort Service share one nodePort', async () => {
    const svc = await createService(cp.kubeConfig, ns, 'dns', {
      type: 'NodePort',
      ports: [
        { name: 'dns-tcp', port: 53, protocol: 'TCP' },
        { name: 'dns-udp', port: 53, protocol: 'UDP' },
      ],
    });
    const [tcp, udp] = nodePortsOf(svc);
    expect(tcp).to.be.greaterThan(0);
    expect(udp).to.equal(tcp);
    const map = (await readMap(cp.kubeConfig, 'servicenodeports'))!;
    expect(mapValues(map, NODE_PORTS).filter((p) => p === tcp)).to.have.length(1);
  });

  it('5: LoadBalancer + externalTrafficPolicy Local gets a healthCheckNodePort; switching to Cluster releases it', async () => {
    const svc = await createService(cp.kubeConfig, ns, 'lb', {
      type: 'LoadBalancer',
      externalTrafficPolicy: 'Local',
    });
    const hc = svc.spec!.healthCheckNodePort!;
    expect(hc).to.be.greaterThan(0);
    expect(nodePortsOf(svc)[0]).to.be.greaterThan(0);
    expect(await mapHas('servicenodeports', hc)).to.equal(true);
    const current = await core(cp.kubeConfig).readNamespacedService({ namespace: ns, name: 'lb' });
    current.spec!.externalTrafficPolicy = 'Cluster';
    delete current.spec!.healthCheckNodePort;
    const updated = await core(cp.kubeConfig).replaceNamespacedService({
      namespace: ns,
      name: 'lb',
      body: current,
    });
    expect(updated.spec?.healthCheckNodePort ?? 0).to.equal(0);
    await waitFor('the health check port released', async () => !(await mapHas('servicenodeports', hc)));
    expect(await mapHas('servicenodeports', nodePortsOf(updated)[0])).to.equal(true);
  });

  it('6: NodePort -> ClusterIP releases the nodePorts; -> ExternalName releases the ClusterIP', async () => {
    const svc = await createService(cp.kubeConfig, ns, 't', { type: 'NodePort' });
    const [port] = nodePortsOf(svc);
    const ip = svc.spec!.clusterIP!;
    const api = core(cp.kubeConfig);
    let current = await api.readNamespacedService({ namespace: ns, name: 't' });
    current.spec!.type = 'ClusterIP';
    current = await api.replaceNamespacedService({ namespace: ns, name: 't', body: current });
    expect(nodePortsOf(current)).to.deep.equal([0]);
    await waitFor('the nodePort released', async () => !(await mapHas('servicenodeports', port)));
    expect(await mapHas('serviceips-ipv4', ip)).to.equal(true);
    current.spec = { type: 'ExternalName', externalName: 'example.com', ports: current.spec!.ports };
    current = await api.replaceNamespacedService({ namespace: ns, name: 't', body: current });
    expect(current.spec?.clusterIP ?? '').to.equal('');
    await waitFor('the ClusterIP released', async () => !(await mapHas('serviceips-ipv4', ip)));
  });

  it('7: deleting a Service frees its values at once (watched)', async () => {
    const svc = await createService(cp.kubeConfig, ns, 'd', { type: 'NodePort' });
    const ip = svc.spec!.clusterIP!;
    const [port] = nodePortsOf(svc);
    await core(cp.kubeConfig).deleteNamespacedService({ namespace: ns, name: 'd' });
    await waitFor('the IP and the port free again', async () =>
      !(await mapHas('serviceips-ipv4', ip)) && !(await mapHas('servicenodeports', port)) ? true : undefined,
    );
  });

  it('11: RequireDualStack gets one IPv4 and one IPv6, from two maps', async () => {
    const svc = await createService(cp.kubeConfig, ns, 'ds', { ipFamilyPolicy: 'RequireDualStack' });
    const [a, b] = svc.spec!.clusterIPs!;
    expect(svc.spec?.ipFamilies).to.deep.equal(['IPv4', 'IPv6']);
    expect(v4.offsetOf(a)).to.not.equal(undefined);
    expect(v6.offsetOf(b)).to.not.equal(undefined);
    expect(await mapHas('serviceips-ipv4', a)).to.equal(true);
    expect(await mapHas('serviceips-ipv6', b)).to.equal(true);
  });

  it('a dry-run create answers with an IP but allocates nothing', async () => {
    const svc = await core(cp.kubeConfig).createNamespacedService({
      namespace: ns,
      dryRun: 'All',
      body: { metadata: { name: 'dry' }, spec: { ports: [{ port: 80 }] } },
    });
    const ip = svc.spec!.clusterIP!;
    expect(v4.offsetOf(ip)).to.not.equal(undefined);
    // Not handed out: either still free, or still in a pool's reservation. (Counting the values
    // held outside the pools before and after raced with the earlier tests' Services, whose
    // reserved values a later map write marks as used.)
    const after = (await readMap(cp.kubeConfig, 'serviceips-ipv4'))!;
    const reserved = (m: RangeAllocation): string[] => (m.reservations ?? []).flatMap((r) => r.values);
    expect(!mapValues(after, v4).includes(ip) || reserved(after).includes(ip)).to.equal(true);
    const services = await core(cp.kubeConfig).listServiceForAllNamespaces();
    expect(services.items.map((s) => s.spec?.clusterIP)).to.not.include(ip);
  });

  it('externalIPs outside --external-ips-allowed-cidrs are denied (CVE-2020-8554); inside are admitted', async () => {
    const denied = await refusal(createService(cp.kubeConfig, ns, 'x1', { externalIPs: ['198.51.100.7'] }));
    expect(denied.code).to.equal(403);
    expect(denied.message).to.contain(
      'spec.externalIPs[0]: Forbidden: 198.51.100.7 is not in the allowed externalIPs CIDRs (192.0.2.0/24',
    );
    const ok = await createService(cp.kubeConfig, ns, 'x2', { externalIPs: ['192.0.2.10'] });
    expect(ok.spec?.externalIPs).to.deep.equal(['192.0.2.10']);
  });

  it('8: a corrupt map is rebuilt by the next pass from the Services, with an Event; nothing is lost', async () => {
    const svc = await createService(cp.kubeConfig, ns, 'keep');
    const ip = svc.spec!.clusterIP!;
    await writeMap(cp.kubeConfig, 'serviceips-ipv4', (m) => (m.data = 'not base64 at all!'));
    const event = await waitEvent(cp.kubeConfig, 'default', 'serviceips-ipv4', 'AllocationMapRebuilt');
    expect(event.type).to.equal('Warning');
    expect(event.message).to.contain('the bitmap is not base64');
    await waitFor('the map readable again with the Service IP', async () => {
      try {
        return await mapHas('serviceips-ipv4', ip);
      } catch {
        return false;
      }
    });
    expect(await mapHas('serviceips-ipv4', '10.96.0.1')).to.equal(true);
  });

  it('9: a value marked in the map that no Service uses is released on the third pass, not before', async () => {
    const leaked = '10.96.3.250';
    const passes = (): Promise<number> =>
      mgr!.metric('service_controller_manager_allocation_repair_passes_total', { map: 'serviceips-ipv4' });
    const start = await passes();
    await writeMap(cp.kubeConfig, 'serviceips-ipv4', (m) => {
      const bytes = Buffer.from(m.data, 'base64');
      const offset = v4.offsetOf(leaked)!;
      bytes[offset >> 3] |= 1 << (offset & 7);
      m.data = bytes.toString('base64');
      m.used += 1;
    });
    // Passes are read before and after each look at the map, so each look is bracketed.
    let seenAfterTwo = false;
    const freedBy = await waitFor(
      'the leak released',
      async () => {
        const before = await passes();
        const has = await mapHas('serviceips-ipv4', leaked);
        const after = await passes();
        if (has && before - start >= 2) seenAfterTwo = true;
        return has ? undefined : after;
      },
      { timeoutMs: 30_000 },
    );
    // The pass running when the mark was written may not have seen it, so the third pass that
    // did is start+3 or start+4 (and one more may complete before the count is read).
    expect(freedBy - start).to.be.within(3, 5);
    expect(seenAfterTwo).to.equal(true);
  });

  it('10: two Services on one IP (written into etcd, bypassing every allocator) give ClusterIPAlreadyAllocated', async () => {
    const a = await createService(cp.kubeConfig, ns, 'dup-a');
    const key = `/registry/services/specs/${ns}/dup-a`;
    const got = (await (
      await fetch(`${cp.etcdUrl}/v3/kv/range`, {
        method: 'POST',
        body: JSON.stringify({ key: Buffer.from(key).toString('base64') }),
      })
    ).json()) as { kvs: { value: string }[] };
    const stored = JSON.parse(Buffer.from(got.kvs[0].value, 'base64').toString()) as V1Service;
    stored.metadata = { ...stored.metadata, name: 'dup-b', uid: crypto.randomUUID() };
    await fetch(`${cp.etcdUrl}/v3/kv/put`, {
      method: 'POST',
      body: JSON.stringify({
        key: Buffer.from(`/registry/services/specs/${ns}/dup-b`).toString('base64'),
        value: Buffer.from(JSON.stringify(stored)).toString('base64'),
      }),
    });
    const event = await waitFor('ClusterIPAlreadyAllocated on one of them', async () => {
      const all = [
        ...(await eventsFor(cp.kubeConfig, ns, 'dup-a')),
        ...(await eventsFor(cp.kubeConfig, ns, 'dup-b')),
      ];
      return all.find((e) => e.reason === 'ClusterIPAlreadyAllocated');
    });
    expect(event.message).to.contain(`Cluster IP ${a.spec!.clusterIP} was assigned to multiple Services`);
  });

  it('a Service created while the webhook is down (failurePolicy Ignore) is found by the repair loop and marked, with an Event', async () => {
    const [deadPort] = await freePorts(1);
    await registerServiceWebhook(cp.kubeConfig, {
      baseUrl: `https://127.0.0.1:${deadPort}`,
      failurePolicy: 'Ignore',
    });
    try {
      const svc = await createService(cp.kubeConfig, ns, 'bypass');
      const ip = svc.spec!.clusterIP!;
      expect(v4.offsetOf(ip)).to.not.equal(undefined);
      const event = await waitEvent(cp.kubeConfig, ns, 'bypass', 'ClusterIPNotAllocated');
      expect(event.message).to.equal(`Cluster IP ${ip} is not allocated in the map; repairing`);
      await waitFor('the IP marked', () => mapHas('serviceips-ipv4', ip));
    } finally {
      await registerServiceWebhook(cp.kubeConfig, {
        baseUrl: `https://127.0.0.1:${(mgr as RunningManager & { webhookPort: number }).webhookPort}`,
      });
    }
  });
});

describe('Allocation with a full range', function () {
  this.timeout(180_000);
  let cp: ControlPlane;
  let mgr: RunningManager | undefined;
  let ns: string;

  before(async () => {
    cp = await startControlPlane({ serviceClusterIpRange: '10.97.0.0/16' });
    await prepareAllocation(cp);
    mgr = await startAllocatingManager(cp, { extraArgs: ['--service-cluster-ip-range=10.97.0.0/28'] });
    ns = await createNamespace(cp.kubeConfig, 'full');
  });
  after(async () => {
    if (mgr) expect(await mgr.stop()).to.equal(0);
    await cp?.stop();
  });

  it('12: a full range is a clear 403 denial naming the range; freeing one lets the next create succeed; 80/95 % alerts', async () => {
    // A /28 holds 14 addresses; the kubernetes Service holds 10.97.0.1.
    const names = Array.from({ length: 13 }, (_, i) => `s${i}`);
    await inParallel(names, 13, (n) => createService(cp.kubeConfig, ns, n));
    const map = (await readMap(cp.kubeConfig, 'serviceips-ipv4'))!;
    expect({ used: map.used, free: map.free, percent: map.percent }).to.deep.equal({
      used: 14,
      free: 0,
      percent: 100,
    });
    const full = await refusal(createService(cp.kubeConfig, ns, 'one-more'));
    expect(full.code).to.equal(403);
    expect(full.message).to.contain('no free ClusterIP in 10.97.0.0/28: the range is full');
    expect(full.message).to.contain('kubectl get rangeallocations serviceips-ipv4');
    const alerts = (await eventsFor(cp.kubeConfig, 'default', 'serviceips-ipv4')).filter(
      (e) => e.reason === 'RangeUtilizationHigh',
    );
    expect(alerts.map((e) => /past the (\d+)% alert/.exec(e.message ?? '')?.[1]).sort()).to.deep.equal([
      '80',
      '95',
    ]);
    await core(cp.kubeConfig).deleteNamespacedService({ namespace: ns, name: 's0' });
    const next = await waitFor('a create to succeed once one IP is free', async () => {
      try {
        return await createService(cp.kubeConfig, ns, 'one-more');
      } catch {
        return undefined;
      }
    });
    expect(new IPRange('10.97.0.0/28').offsetOf(next.spec!.clusterIP!)).to.not.equal(undefined);
    expect(
      await mgr!.metric('service_controller_manager_allocation_map_utilization_alerts_total', {
        map: 'serviceips-ipv4',
      }),
    ).to.be.at.least(2);
  });
});

describe('Two manager processes allocating through one webhook Service', function () {
  this.timeout(240_000);
  let cp: ControlPlane;
  let proxy: CutProxy | undefined;
  const procs: { proc: ChildProcess; exit: Promise<number | null>; output: () => string; metrics: string }[] =
    [];

  before(async () => {
    cp = await startControlPlane({ serviceClusterIpRange: '10.98.0.0/16' });
    await prepareAllocation(cp);
  });
  after(async () => {
    for (const p of procs) if (p.proc.exitCode === null) p.proc.kill('SIGTERM');
    const codes = await Promise.all(procs.map((p) => p.exit));
    await proxy?.close();
    await cp?.stop();
    expect(codes).to.deep.equal(procs.map(() => 0));
  });

  async function startProcess(user: string, webhookPort: number, metricsPort: number): Promise<void> {
    const kubeconfig = await cp.userKubeconfig(user);
    const proc = spawn(
      process.execPath,
      [
        'cmd/manager.ts',
        `--kubeconfig=${kubeconfig}`,
        '--leader-elect=true',
        '--leader-elect-resource-namespace=service-controller-manager',
        `--metrics-bind-address=127.0.0.1:${metricsPort}`,
        '--metrics-secure=false',
        '--health-probe-bind-address=0',
        '--log-format=json',
        '--service-cluster-ip-range=10.98.0.0/23',
        ...allocationFlags(`127.0.0.1:${webhookPort}`),
      ],
      { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    const exit = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
    procs.push({ proc, exit, output: () => out, metrics: `http://127.0.0.1:${metricsPort}/metrics` });
  }

  it('1: 300 concurrent creates against one /23 get 300 distinct IPs in range; the map counts 300 (+ kubernetes)', async () => {
    const [hookA, hookB, metricsA, metricsB] = await freePorts(4);
    proxy = await startCutProxy([`https://127.0.0.1:${hookA}`, `https://127.0.0.1:${hookB}`]);
    const proxyPort = new URL(proxy.url).port;
    await registerServiceWebhook(cp.kubeConfig, { baseUrl: `https://127.0.0.1:${proxyPort}` });
    await startProcess('manager-a', hookA, metricsA);
    await startProcess('manager-b', hookB, metricsB);
    await waitFor(
      'the maps to exist (the leader bootstrapped them)',
      async () =>
        (await readMap(cp.kubeConfig, 'serviceips-ipv4')) &&
        (await readMap(cp.kubeConfig, 'servicenodeports')),
      { timeoutMs: 60_000 },
    );
    await waitFor('both webhooks to serve', async () => {
      const ok = await Promise.all(
        [hookA, hookB].map((p) =>
          fetch(procs[0].metrics)
            .then(() => p)
            .catch(() => undefined),
        ),
      );
      return ok.every((x) => x !== undefined);
    });
    const ns = await createNamespace(cp.kubeConfig, 'two');
    const range = new IPRange('10.98.0.0/23');
    const created: V1Service[] = [];
    await waitFor(
      'a first create through the webhook',
      async () => {
        try {
          created.push(await createService(cp.kubeConfig, ns, 'warm', { type: 'NodePort' }));
          return true;
        } catch {
          return undefined;
        }
      },
      { timeoutMs: 60_000 },
    );
    const api = apiServerMetrics(cp);
    const updates = (code: string): Promise<number> =>
      api.sum('apiserver_request_total', { resource: 'rangeallocations', verb: 'PUT', code });
    const [okBefore, conflictsBefore] = [await updates('200'), await updates('409')];
    const names = Array.from({ length: 299 }, (_, i) => `s${i}`);
    await inParallel(names, 300, async (n) => {
      created.push(await createService(cp.kubeConfig, ns, n, i(n) % 10 === 0 ? { type: 'NodePort' } : {}));
    });
    const ips = created.map((s) => s.spec!.clusterIP!);
    expect(new Set(ips).size).to.equal(300);
    expect(ips.every((ip) => range.offsetOf(ip) !== undefined)).to.equal(true);
    const ports = created.flatMap(nodePortsOf).filter((p) => p > 0);
    expect(new Set(ports).size).to.equal(ports.length);
    const map = (await readMap(cp.kubeConfig, 'serviceips-ipv4'))!;
    // Marked: every Service IP, the kubernetes Service's, and what the replicas' pools still hold.
    // (A value taken while its pool's refill was in flight may still be listed until the next
    // refill or repair pass; it is marked once either way.)
    const pooled = (map.reservations ?? []).flatMap((r) => r.values).filter((ip) => !ips.includes(ip));
    expect(map.used).to.equal(301 + pooled.length);
    expect(new Set(mapValues(map, range))).to.deep.equal(new Set([...ips, '10.98.0.1', ...pooled]));
    // Both replicas answered admission requests, and the group commit kept the writes far below one per create.
    const served = await Promise.all(
      procs.map((p) =>
        scrape(p.metrics, 'controller_runtime_webhook_requests_total', { webhook: '/mutate-v1-service' }),
      ),
    );
    expect(
      served.every((n) => n > 0),
      `requests served per replica: ${served.join(', ')}`,
    ).to.equal(true);
    const writes = (await updates('200')) - okBefore;
    const conflicts = (await updates('409')) - conflictsBefore;
    await api.close();
    // 299 creates (a tenth NodePort: two maps) in a handful of group commits per replica, not one write each.
    expect(writes, `RangeAllocation writes ${writes}, 409s ${conflicts}`).to.be.below(100);
    process.stdout.write(
      `      (299 concurrent creates: ${writes} RangeAllocation writes, ${conflicts} 409s)\n`,
    );
  });
});

function i(name: string): number {
  return Number(name.slice(1));
}
