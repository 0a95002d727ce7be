/**
 * `make image-check`: what `make image` would prove, on a machine without a container engine. It
 * lays the Dockerfile out on the host (hack/image/layout.ts: npm ci, tsc, npm prune, the final
 * stage's COPYs), checks the image holds the product and nothing of the repo's tooling, then runs
 * its ENTRYPOINT from the read-only root the way the Deployment runs the container (the image's
 * user, no writable HOME or TMPDIR, no KUBECONFIG) against a local control plane, until /readyz is
 * 200 and the Endpoints of a Service with a ready Pod hold the Pod's IP.
 *
 * Exits 0 when everything held, 1 with what failed. Everything it started or made is stopped and
 * removed either way.
 */
import fs from 'node:fs';
import path from 'node:path';
import { checkImageContents } from './image/contents.ts';
import { layOutImage, type ImageLayout } from './image/layout.ts';
import { startImage, type ImageExit, type ImageProcess } from './image/run.ts';
import { freePorts, startControlPlane, type ControlPlane } from '../shared/localcontrolplane/index.ts';
import { core, createPod, createService } from '../test/integration/helpers/fixtures.ts';
import { setPodStatus } from '../test/integration/helpers/pods.ts';
import { waitFor } from '../test/integration/helpers/wait.ts';

const REPO = path.resolve(import.meta.dirname, '..');
const NAMESPACE = 'default';
const SERVICE = 'image-check';
const POD = 'image-check-0';
const POD_IP = '10.200.0.1';

class CheckFailed extends Error {}

const say = (line: string): void => void process.stdout.write(`image-check: ${line}\n`);
const ok = (line: string): void => void process.stdout.write(`  ok  ${line}\n`);
const secondsSince = (start: number): string => `${((performance.now() - start) / 1000).toFixed(1)} s`;
const describeExit = (e: ImageExit): string =>
  e.error ? `could not start: ${e.error.message}` : e.signal ? `killed by ${e.signal}` : `exit ${e.code}`;

function outputTail(manager: ImageProcess): string {
  return manager.output().trimEnd().split('\n').slice(-30).join('\n');
}

/** Polls `probe` while the manager runs; fails at once, with its output, if it exits. */
async function whileRunning(
  manager: ImageProcess,
  description: string,
  probe: () => Promise<boolean>,
): Promise<void> {
  const result = await waitFor(
    description,
    async () => (manager.exitStatus() ? 'exited' : (await probe()) && 'done'),
    { timeoutMs: 60_000, intervalMs: 100 },
  ).catch((err: Error) => {
    throw new CheckFailed(`${err.message}\nthe manager's output:\n${outputTail(manager)}`);
  });
  const exit = manager.exitStatus();
  if (result === 'exited' && exit) {
    throw new CheckFailed(
      `the manager ${describeExit(exit)} while waiting for ${description}; its output:\n${outputTail(manager)}`,
    );
  }
}

async function runManager(layout: ImageLayout, cp: ControlPlane): Promise<void> {
  const [healthPort, webhookPort] = await freePorts(2);
  // The image's user cannot read the control plane's private kubeconfig; it gets a copy the way a
  // Pod gets a Secret.
  const secret = layout.readOnlyVolume({ kubeconfig: fs.readFileSync(cp.kubeconfigPath) });
  const args = [
    `--kubeconfig=${path.join(secret, 'kubeconfig')}`,
    '--leader-elect=false',
    '--metrics-bind-address=0',
    `--health-probe-bind-address=127.0.0.1:${healthPort}`,
    // The default :9443 on every interface could collide with another run on this machine.
    `--webhook-bind-address=127.0.0.1:${webhookPort}`,
  ];
  const started = performance.now();
  const manager = startImage(layout, { args });
  try {
    const cmd = layout.command(args);
    const as = layout.runAs ? `as ${layout.runAs.uid}:${layout.runAs.gid}` : 'as this user';
    ok(
      `started ${layout.entrypoint.join(' ')} ${as} from /${path.relative(layout.root, cmd.cwd)}, ` +
        'HOME missing, TMPDIR read-only, no KUBECONFIG',
    );
    await whileRunning(
      manager,
      '/readyz to answer 200',
      async () => (await fetch(`http://127.0.0.1:${healthPort}/readyz`)).status === 200,
    );
    ok(`/readyz answered 200 after ${secondsSince(started)}`);

    const kc = cp.kubeConfig;
    await createService(kc, NAMESPACE, SERVICE);
    await createPod(kc, NAMESPACE, POD);
    await setPodStatus(kc, NAMESPACE, POD, { ip: POD_IP, ready: true });
    const synced = performance.now();
    await whileRunning(manager, `Endpoints ${NAMESPACE}/${SERVICE} to hold ${POD_IP}`, async () => {
      const ep = await core(kc).readNamespacedEndpoints({ namespace: NAMESPACE, name: SERVICE });
      return ep.subsets?.some((s) => s.addresses?.some((a) => a.ip === POD_IP)) ?? false;
    });
    ok(`Endpoints ${NAMESPACE}/${SERVICE} held the ready Pod's ${POD_IP} after ${secondsSince(synced)}`);

    const exit = await manager.stop();
    if (exit.code !== 0) {
      throw new CheckFailed(
        `on SIGTERM the manager ${describeExit(exit)}; its output:\n${outputTail(manager)}`,
      );
    }
    ok('on SIGTERM it exited 0');
  } finally {
    await manager.stop();
  }
}

async function main(): Promise<void> {
  const started = performance.now();
  say('laying out the Dockerfile on the host (npm ci, tsc, npm prune; no container engine needed)');
  const layout = await layOutImage({ repo: REPO, log: (step) => process.stdout.write(`      ${step}\n`) });
  try {
    say(`laid out in ${secondsSince(started)}: ${layout.root}`);
    const contents = checkImageContents(layout, REPO);
    contents.passed.forEach(ok);
    if (contents.problems.length > 0) throw new CheckFailed(contents.problems.join('\n'));

    const cpStarted = performance.now();
    const cp = await startControlPlane();
    try {
      say(`local control plane up in ${secondsSince(cpStarted)}`);
      await runManager(layout, cp);
    } finally {
      await cp.stop();
    }
  } finally {
    await layout.remove();
  }
  say(`the image holds what it needs (${secondsSince(started)} in all)`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    const message =
      err instanceof CheckFailed
        ? err.message
        : err instanceof Error
          ? (err.stack ?? err.message)
          : String(err);
    process.stderr.write(`image-check: FAILED: ${message}\n`);
    process.exit(1);
  },
);
