import { spawn, type ChildProcess } from 'node:child_process';
import { expect } from 'chai';
import { CoordinationV1Api, DiscoveryV1Api } from '@kubernetes/client-node';
import { startControlPlane, freePorts, type ControlPlane } from '../../shared/localcontrolplane/index.ts';
import { createNamespace } from './helpers/namespaces.ts';
import { setPodStatus } from './helpers/pods.ts';
import { core, createPod, createService } from './helpers/fixtures.ts';
import { scrape } from './helpers/manager.ts';
import { waitFor } from './helpers/wait.ts';

const REPO = new URL('../..', import.meta.url).pathname;

interface Child {
  proc: ChildProcess;
  exit: Promise<number | null>;
  stderr: () => string;
}

function startProcess(args: string[]): Child {
  const proc = spawn(process.execPath, ['cmd/manager.ts', ...args], {
    cwd: REPO,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exit = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  return { proc, exit, stderr: () => err };
}

describe('the manager as a process', function () {
  this.timeout(120_000);
  let cp: ControlPlane;
  const children: Child[] = [];

  before(async () => {
    cp = await startControlPlane();
  });
  after(async () => {
    for (const c of children)
      if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
    await Promise.all(children.map((c) => c.exit));
    await cp?.stop();
  });

  it('a bad flag value fails at start naming the flag and the accepted form', async () => {
    const c = startProcess(['--concurrent-endpoint-syncs=many']);
    children.push(c);
    expect(await c.exit).to.equal(2);
    expect(c.stderr()).to.include('--concurrent-endpoint-syncs').and.include('whole number');
  });

  it('an unknown controller name fails at start naming --controllers', async () => {
    const c = startProcess([`--kubeconfig=${cp.kubeconfigPath}`, '--controllers=endpoint,nope']);
    children.push(c);
    expect(await c.exit).to.equal(2);
    expect(c.stderr()).to.include('--controllers').and.include('nope');
  });

  it('takes the Lease, serves probes and metrics, syncs, and on SIGTERM exits 0 releasing the Lease', async () => {
    const [metricsPort, healthPort] = await freePorts(2);
    const c = startProcess([
      `--kubeconfig=${cp.kubeconfigPath}`,
      '--leader-elect=true',
      '--leader-elect-resource-namespace=kube-system',
      `--metrics-bind-address=127.0.0.1:${metricsPort}`,
      '--metrics-secure=false',
      `--health-probe-bind-address=127.0.0.1:${healthPort}`,
      '--log-format=json',
    ]);
    children.push(c);
    const leases = cp.kubeConfig.makeApiClient(CoordinationV1Api);
    const lease = await waitFor('the Lease to be held', async () => {
      const l = await leases.readNamespacedLease({
        name: 'service-controller-manager',
        namespace: 'kube-system',
      });
      return l.spec?.holderIdentity ? l : undefined;
    });
    expect(lease.spec!.leaseDurationSeconds).to.equal(15);
    await waitFor(
      '/readyz to be 200',
      async () => (await fetch(`http://127.0.0.1:${healthPort}/readyz`)).status === 200,
    );
    expect((await fetch(`http://127.0.0.1:${healthPort}/healthz`)).status).to.equal(200);

    const ns = await createNamespace(cp.kubeConfig, 'proc');
    await createService(cp.kubeConfig, ns, 's');
    await createPod(cp.kubeConfig, ns, 'p1');
    await setPodStatus(cp.kubeConfig, ns, 'p1', { ip: '10.200.1.1', ready: true });
    await waitFor('Endpoints with the pod', async () => {
      const ep = await core(cp.kubeConfig)
        .readNamespacedEndpoints({ name: 's', namespace: ns })
        .catch(() => undefined);
      return ep?.subsets?.[0]?.addresses?.[0]?.ip === '10.200.1.1';
    });
    // The default --controllers=* runs the EndpointSlice controllers too.
    await waitFor('an EndpointSlice with the pod', async () => {
      const list = await cp.kubeConfig
        .makeApiClient(DiscoveryV1Api)
        .listNamespacedEndpointSlice({ namespace: ns, labelSelector: 'kubernetes.io/service-name=s' });
      return list.items[0]?.endpoints?.[0]?.addresses?.[0] === '10.200.1.1';
    });
    const metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
    expect(
      await scrape(metricsUrl, 'workqueue_adds_total', { name: 'endpoint', controller: 'endpoint' }),
    ).to.be.above(0);
    for (const controller of ['endpoint', 'endpointslice', 'endpointslicemirroring']) {
      const reconciled = await waitFor(`${controller} to reconcile`, async () => {
        const n = await scrape(metricsUrl, 'controller_runtime_reconcile_total', {
          controller,
          result: 'success',
        });
        return n > 0 ? n : undefined;
      });
      expect(reconciled, controller).to.be.above(0);
    }
    expect(await scrape(metricsUrl, 'rest_client_requests_total', { method: 'GET' })).to.be.above(0);
    expect(
      (await fetch(metricsUrl).then((r) => r.text())).includes('nodejs_eventloop_lag_p99_seconds'),
    ).to.equal(true);

    c.proc.kill('SIGTERM');
    expect(await c.exit, c.stderr().slice(-2000)).to.equal(0);
    const released = await leases.readNamespacedLease({
      name: 'service-controller-manager',
      namespace: 'kube-system',
    });
    expect(released.spec!.holderIdentity ?? '').to.equal('');
  });
});
