/**
 * `make run` with no cluster configured (cmd/run.ts): it starts a local control plane, runs the
 * manager against it, and owns Ctrl-C. Run as a terminal runs a foreground job: in a process group
 * of its own, signalled as a group.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { KubeConfig } from '@kubernetes/client-node';
import { findAssets } from '../../shared/localcontrolplane/index.ts';
import { IPRange, PortRange } from '../../shared/allocator/ranges.ts';
import { mapValues, readMap } from './helpers/allocation.ts';
import { core, createService } from './helpers/fixtures.ts';
import { waitFor } from './helpers/wait.ts';

const REPO = new URL('../..', import.meta.url).pathname;

interface Run {
  proc: ChildProcess;
  exit: Promise<number | null>;
  output: () => string;
  home: string;
}

/** Processes (other than ourselves) whose command line mentions `text`. */
function processesMentioning(text: string): number[] {
  const pids: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(text)) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

describe('make run without a cluster (cmd/run.ts)', function () {
  this.timeout(120_000);
  const runs: Run[] = [];

  after(async () => {
    for (const r of runs) {
      if (r.proc.exitCode === null && r.proc.signalCode === null) process.kill(-r.proc.pid!, 'SIGKILL');
      await r.exit;
      fs.rmSync(r.home, { recursive: true, force: true });
    }
  });

  function start(): Run {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'scm-run-home-'));
    // A HOME without ~/.kube/config; the binaries stay where they are.
    const env: NodeJS.ProcessEnv = { ...process.env, HOME: home, KUBEBUILDER_ASSETS: findAssets().dir };
    delete env.KUBECONFIG;
    delete env.KUBERNETES_SERVICE_HOST;
    const proc = spawn(
      process.execPath,
      ['cmd/run.ts', '--metrics-bind-address=0', '--health-probe-bind-address=0', '--log-format=json'],
      { cwd: REPO, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true },
    );
    let out = '';
    proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    const exit = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
    const run = { proc, exit, output: () => out, home };
    runs.push(run);
    return run;
  }

  /** Waits for the manager to run against the local control plane; returns the plane's folder. */
  async function ready(run: Run): Promise<string> {
    const kubeconfig = await waitFor(
      'the local control plane',
      () => /export KUBECONFIG=(\S+)/.exec(run.output())?.[1],
      { timeoutMs: 90_000 },
    );
    await waitFor('the manager to start its controllers', () =>
      run.output().includes('"msg":"starting workers"'),
    );
    return path.dirname(kubeconfig);
  }

  it('Ctrl-C stops the manager, then the local control plane, then exits 0', async () => {
    const run = start();
    const dir = await ready(run);
    expect(processesMentioning(dir), 'etcd and kube-apiserver run').to.have.length(2);
    // A newcomer's Service gets its ClusterIP and nodePort from our maps, through our webhook.
    const kc = new KubeConfig();
    kc.loadFromFile(path.join(dir, 'kubeconfig'));
    const svc = await waitFor('a Service created through our webhook', async () => {
      try {
        return await createService(kc, 'default', 'web', { type: 'NodePort' });
      } catch {
        return undefined;
      }
    });
    const ipMap = (await readMap(kc, 'serviceips-ipv4'))!;
    expect(mapValues(ipMap, new IPRange(ipMap.range))).to.include(svc.spec!.clusterIP);
    const portMap = (await readMap(kc, 'servicenodeports'))!;
    expect(mapValues(portMap, new PortRange(portMap.range))).to.include(svc.spec!.ports![0].nodePort);
    // And a LoadBalancer Service an address from the sample pool (avoidBuggyIPs: not 192.0.2.0).
    await createService(kc, 'default', 'lb', { type: 'LoadBalancer' });
    const lb = await waitFor('an address for the LoadBalancer Service', async () => {
      const got = await core(kc).readNamespacedService({ namespace: 'default', name: 'lb' });
      return got?.status?.loadBalancer?.ingress?.length ? got : undefined;
    });
    expect(lb.status?.loadBalancer?.ingress).to.deep.equal([
      { ip: '192.0.2.1', ipMode: 'VIP', ports: [{ port: 80, protocol: 'TCP' }] },
    ]);
    process.kill(-run.proc.pid!, 'SIGINT');
    expect(await run.exit, run.output().slice(-3000)).to.equal(0);
    const out = run.output();
    const order = [
      'SIGINT: stopping the manager',
      '"msg":"stopped"',
      'Stopping the local control plane',
      'Local control plane stopped.',
    ].map((text) => out.indexOf(text));
    expect(
      order.every((i) => i >= 0),
      out.slice(-3000),
    ).to.equal(true);
    expect(order).to.deep.equal([...order].sort((a, b) => a - b));
    // The control plane was still serving while the manager stopped: no failed request in its logs.
    expect(out.slice(order[0], order[1])).to.not.match(/ECONNREFUSED|connection refused/);
    expect(fs.existsSync(dir), 'the control plane folder is removed').to.equal(false);
    expect(processesMentioning(dir)).to.deep.equal([]);
  });

  it('a second Ctrl-C stops everything at once and exits 130', async () => {
    const run = start();
    const dir = await ready(run);
    process.kill(-run.proc.pid!, 'SIGINT');
    await waitFor('the first Ctrl-C to be taken', () =>
      run.output().includes('SIGINT: stopping the manager'),
    );
    process.kill(-run.proc.pid!, 'SIGINT');
    expect(await run.exit).to.equal(130);
    expect(run.output()).to.include('SIGINT again: stopping everything at once');
    expect(fs.existsSync(dir)).to.equal(false);
    await waitFor('no process of the control plane left', () => processesMentioning(dir).length === 0);
  });
});
