import { expect } from 'chai';
import fs from 'node:fs';
import { CoreV1Api, VersionApi } from '@kubernetes/client-node';
import {
  pinnedVersions,
  startControlPlane,
  type ControlPlane,
} from '../../shared/localcontrolplane/index.ts';
import { createNamespace } from './helpers/namespaces.ts';
import { setPodStatus } from './helpers/pods.ts';

function processGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

describe('local control plane (envtest)', function () {
  let cp: ControlPlane | undefined;

  before(async function () {
    cp = await startControlPlane();
  });

  after(async function () {
    await cp?.stop();
  });

  function plane(): ControlPlane {
    if (!cp) throw new Error('the control plane did not start');
    return cp;
  }

  it('the local control plane serves /version with the pinned Kubernetes version', async function () {
    const info = await plane().kubeConfig.makeApiClient(VersionApi).getCode();
    expect(info.gitVersion).to.equal(pinnedVersions().kubernetes);
  });

  it('a pod created with the admin kubeconfig can have its status written through the status subresource', async function () {
    const kc = plane().kubeConfig;
    const core = kc.makeApiClient(CoreV1Api);
    const namespace = await createNamespace(kc, 'envtest-pod');
    await core.createNamespacedPod({
      namespace,
      body: {
        metadata: { name: 'web' },
        spec: { containers: [{ name: 'web', image: 'registry.invalid/web:1' }] },
      },
    });

    await setPodStatus(kc, namespace, 'web', {
      ip: '10.1.2.3',
      ready: true,
      phase: 'Running',
      nodeName: 'node-a',
    });

    const pod = await core.readNamespacedPod({ name: 'web', namespace });
    expect(pod.spec?.nodeName).to.equal('node-a');
    expect(pod.status?.phase).to.equal('Running');
    expect(pod.status?.podIP).to.equal('10.1.2.3');
    expect(pod.status?.podIPs).to.deep.equal([{ ip: '10.1.2.3' }]);
    expect(pod.status?.conditions?.find((c) => c.type === 'Ready')?.status).to.equal('True');

    await setPodStatus(kc, namespace, 'web', { ip: '10.1.2.3', ready: false });
    const notReady = await core.readNamespacedPod({ name: 'web', namespace });
    expect(notReady.status?.conditions?.find((c) => c.type === 'Ready')?.status).to.equal('False');
  });

  it('stopApiServer then startApiServer keeps etcd data', async function () {
    const cp = plane();
    const namespace = await createNamespace(cp.kubeConfig, 'envtest-restart');
    await cp.kubeConfig.makeApiClient(CoreV1Api).createNamespacedConfigMap({
      namespace,
      body: { metadata: { name: 'kept' }, data: { answer: '42' } },
    });
    const url = cp.apiServerUrl;
    const etcdPid = cp.etcdPid;

    await cp.stopApiServer();
    expect(cp.apiServerPid).to.equal(undefined);
    await cp.startApiServer();

    expect(cp.apiServerUrl).to.equal(url);
    expect(cp.etcdPid).to.equal(etcdPid);
    const cm = await cp.kubeConfig
      .makeApiClient(CoreV1Api)
      .readNamespacedConfigMap({ name: 'kept', namespace });
    expect(cm.data).to.deep.equal({ answer: '42' });
  });

  it('stop() removes its processes and temp folder', async function () {
    const cp = plane();
    const pids = [cp.etcdPid, cp.apiServerPid];
    expect(pids.every((p) => typeof p === 'number')).to.equal(true);

    await cp.stop();
    await cp.stop(); // idempotent

    for (const pid of pids as number[]) expect(processGone(pid), `pid ${pid} still exists`).to.equal(true);
    expect(fs.existsSync(cp.dir)).to.equal(false);
    expect(cp.etcdPid).to.equal(undefined);
    expect(cp.apiServerPid).to.equal(undefined);
  });
});
