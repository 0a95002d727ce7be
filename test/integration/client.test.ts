import { readdirSync, readlinkSync } from 'node:fs';
import { expect } from 'chai';
import { KubeClient } from '../../shared/kube/client.ts';
import { startControlPlane, type ControlPlane } from '../../shared/localcontrolplane/index.ts';
import { createNamespace } from './helpers/namespaces.ts';
import { inParallel } from './helpers/fixtures.ts';

/** Open sockets of this process (Linux /proc; undici unrefs idle sockets, so no handle list). */
function openSockets(): number {
  let sockets = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`).startsWith('socket:')) sockets++;
    } catch {
      // closed between readdir and readlink
    }
  }
  return sockets;
}

describe('KubeClient against a real API server', function () {
  let cp: ControlPlane | undefined;

  before(async function () {
    cp = await startControlPlane();
  });

  after(async function () {
    await cp?.stop();
  });

  // HTTP/1.1 (shared/kube/auth.ts): one connection per request in flight, up to twice that while
  // finished responses hand their connection back; the bug this guards against was one per request.
  it('200 writes, 10 at a time, then 200 more, reuse one pool of at most 20 connections', async function () {
    if (!cp) throw new Error('the control plane did not start');
    const namespace = await createNamespace(cp.kubeConfig, 'client');
    const before = openSockets();
    const client = new KubeClient(cp.kubeConfig, { qps: 0, burst: 0, userAgent: 'client-test' });
    try {
      const names = Array.from({ length: 200 }, (_, i) => `cm-${i}`);
      await inParallel(names, 10, async (name) => {
        await client.core.createNamespacedConfigMap({ namespace, body: { metadata: { name } } });
      });
      expect(client.auth.poolsCreated).to.equal(1);
      expect(openSockets() - before).to.be.within(1, 20);
      await inParallel(names, 10, async (name) => {
        await client.core.deleteNamespacedConfigMap({ name, namespace });
      });
      expect(openSockets() - before, 'the second 200 reuse the connections').to.be.within(1, 20);
      await inParallel(names, 10, async (name) => {
        await client.core.createNamespacedConfigMap({ namespace, body: { metadata: { name } } });
      });
      const listed = await client.core.listNamespacedConfigMap({ namespace });
      expect(listed.items.filter((c) => c.metadata?.name?.startsWith('cm-'))).to.have.length(200);
    } finally {
      await client.auth.close();
    }
  });
});
