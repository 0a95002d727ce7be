/**
 * The image holds the product only: the build the Dockerfile runs (tsc -p tsconfig.build.json)
 * leaves out the local control plane, `make run`'s entry point, the benchmarks and the tests, and
 * what it compiles imports only production dependencies. And the image the Dockerfile lays out
 * (hack/image/layout.ts, what `make image-check` runs) holds what the manager needs: its entrypoint,
 * started from the read-only root the way the Deployment runs it, gets ready and syncs.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { builtinModules } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { checkImageContents, devOnlyDependencies } from '../../hack/image/contents.ts';
import { layOutImage, type ImageLayout } from '../../hack/image/layout.ts';
import { startImage, type ImageProcess } from '../../hack/image/run.ts';
import { freePorts, startControlPlane, type ControlPlane } from '../../shared/localcontrolplane/index.ts';
import { core, createPod, createService } from './helpers/fixtures.ts';
import { setPodStatus } from './helpers/pods.ts';
import { waitFor } from './helpers/wait.ts';

const REPO = new URL('../..', import.meta.url).pathname;

function filesUnder(dir: string): string[] {
  return fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)));
}

describe('the image build', function () {
  this.timeout(120_000);
  let out: string;

  before(() => {
    out = fs.mkdtempSync(path.join(os.tmpdir(), 'scm-image-dist-'));
    execFileSync(
      process.execPath,
      [path.join(REPO, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json', '--outDir', out],
      {
        cwd: REPO,
        stdio: 'pipe',
      },
    );
  });
  after(() => fs.rmSync(out, { recursive: true, force: true }));

  it("dist/ holds cmd/manager.js and neither the local control plane, make run's entry, bench nor tests", () => {
    const js = filesUnder(out).filter((f) => f.endsWith('.js'));
    expect(js).to.include('cmd/manager.js');
    expect(new Set(js.map((f) => f.split('/')[0]))).to.deep.equal(new Set(['cmd', 'controllers', 'shared']));
    expect(js.filter((f) => f.startsWith('shared/localcontrolplane/') || f === 'cmd/run.js')).to.deep.equal(
      [],
    );
  });

  it('what dist/ imports is node built-ins and production dependencies, never a devDependency', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
      devDependencies: Record<string, string>;
    };
    const imported = new Set<string>();
    for (const file of filesUnder(out).filter((f) => f.endsWith('.js'))) {
      const text = fs.readFileSync(path.join(out, file), 'utf8');
      for (const m of text.matchAll(
        /(?:^|\s)(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|import\s+['"]([^'"]+)['"]/g,
      )) {
        const spec = m[1] ?? m[2];
        if (spec.startsWith('.') || spec.startsWith('node:')) continue;
        const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0];
        if (!builtinModules.includes(name)) imported.add(name);
      }
    }
    expect([...imported].filter((name) => !(name in pkg.dependencies))).to.deep.equal([]);
    expect([...imported].filter((name) => name in pkg.devDependencies)).to.deep.equal([]);
    expect(imported.size, 'imports were found at all').to.be.above(3);
  });

  it('the Dockerfile copies only what the build needs into the build stage', () => {
    const copies = fs
      .readFileSync(path.join(REPO, 'Dockerfile'), 'utf8')
      .split('\n')
      .filter((line) => /^COPY\s/.test(line) && !line.includes('--from='))
      .map((line) =>
        line
          .replace(/^COPY\s+/, '')
          .split(/\s+/)
          .slice(0, -1),
      )
      .flat();
    expect(copies.sort()).to.deep.equal(
      [
        'cmd',
        'controllers',
        'hack/bundle.ts',
        'package-lock.json',
        'package.json',
        'shared',
        'tsconfig.build.json',
        'tsconfig.json',
      ].sort(),
    );
  });
});

describe('the image laid out from the Dockerfile on the host', function () {
  // npm ci from a warm cache, tsc and npm prune take about 20 s of it.
  this.timeout(120_000);
  let layout: ImageLayout | undefined;
  let cp: ControlPlane | undefined;
  const managers: ImageProcess[] = [];

  before(async () => {
    layout = await layOutImage({ repo: REPO });
    cp = await startControlPlane();
  });
  after(async () => {
    await Promise.all(managers.map((m) => m.stop()));
    await cp?.stop();
    await layout?.remove();
  });

  /** Whether the user the image runs as may write to `p` (root ignores modes, so ask as that user). */
  function writableForImageUser(p: string): boolean {
    const runAs = layout!.runAs;
    if (!runAs) {
      try {
        fs.accessSync(p, fs.constants.W_OK);
        return true;
      } catch {
        return false;
      }
    }
    const probe = `require('node:fs').accessSync(${JSON.stringify(p)}, require('node:fs').constants.W_OK)`;
    return spawnSync(process.execPath, ['-e', probe], { ...runAs, stdio: 'ignore' }).status === 0;
  }

  it('the WORKDIR holds exactly package.json, node_modules and dist, and the root only the WORKDIR', () => {
    expect(fs.readdirSync(layout!.workdir).sort()).to.deep.equal(['dist', 'node_modules', 'package.json']);
    expect(fs.readdirSync(layout!.root)).to.deep.equal(['app']);
    expect(layout!.entrypoint).to.deep.equal([
      'node',
      '--max-old-space-size=256',
      '--max-semi-space-size=16',
      'dist/cmd/manager.js',
    ]);
    expect(layout!.env).to.deep.equal({ NODE_ENV: 'production' });
    expect(layout!.user).to.equal('65532:65532');
  });

  it('node_modules holds no dev-only devDependency, and those left are needed by production ones', () => {
    const { devOnly, neededInProduction } = devOnlyDependencies(REPO);
    expect(devOnly).to.include.members(['typescript', 'mocha', 'chai', 'eslint', 'node']);
    const modules = path.join(layout!.workdir, 'node_modules');
    expect(devOnly.filter((name) => fs.existsSync(path.join(modules, name)))).to.deep.equal([]);
    for (const [name, dependents] of neededInProduction) expect(dependents, name).to.not.deep.equal([]);
  });

  it('checkImageContents (make image-check) finds nothing wrong', () => {
    expect(checkImageContents(layout!, REPO).problems).to.deep.equal([]);
  });

  it("the image's user can write nowhere in the root", () => {
    expect(writableForImageUser(os.tmpdir()), 'the probe can tell a writable folder').to.equal(true);
    for (const p of [layout!.root, layout!.workdir, path.join(layout!.workdir, 'dist/cmd/manager.js')]) {
      expect(writableForImageUser(p), p).to.equal(false);
    }
    if (!layout!.runAs) expect(() => fs.accessSync(layout!.workdir, fs.constants.W_OK)).to.throw();
  });

  it('its entrypoint, run from the read-only root with no writable HOME or TMPDIR, gets ready and fills Endpoints', async () => {
    const [healthPort, webhookPort] = await freePorts(2);
    const secret = layout!.readOnlyVolume({ kubeconfig: fs.readFileSync(cp!.kubeconfigPath) });
    const manager = startImage(layout!, {
      args: [
        `--kubeconfig=${path.join(secret, 'kubeconfig')}`,
        '--leader-elect=false',
        '--metrics-bind-address=0',
        `--health-probe-bind-address=127.0.0.1:${healthPort}`,
        `--webhook-bind-address=127.0.0.1:${webhookPort}`,
      ],
    });
    managers.push(manager);
    expect(fs.existsSync(manager.env.HOME), 'HOME exists').to.equal(false);
    expect(writableForImageUser(manager.env.TMPDIR), 'TMPDIR is writable').to.equal(false);
    expect(manager.env.KUBECONFIG).to.equal(undefined);
    const failIfExited = (): void => {
      const exit = manager.exitStatus();
      if (exit)
        throw new Error(`the manager exited (${JSON.stringify(exit)}):\n${manager.output().slice(-3000)}`);
    };
    // Polls while the manager runs: if it exits, fail at once with its output.
    const waitWhileRunning = async (description: string, probe: () => Promise<boolean>): Promise<void> => {
      const probeOrExit = async (): Promise<string | false> =>
        manager.exitStatus() ? 'exited' : (await probe()) && 'ok';
      await waitFor(description, probeOrExit, { timeoutMs: 30_000, intervalMs: 100 });
      failIfExited();
    };

    await waitWhileRunning(
      '/readyz to be 200',
      async () => (await fetch(`http://127.0.0.1:${healthPort}/readyz`)).status === 200,
    );
    const kc = cp!.kubeConfig;
    await createService(kc, 'default', 'image');
    await createPod(kc, 'default', 'image-0');
    await setPodStatus(kc, 'default', 'image-0', { ip: '10.200.0.9', ready: true });
    await waitWhileRunning('Endpoints with the pod', async () => {
      const ep = await core(kc).readNamespacedEndpoints({ namespace: 'default', name: 'image' });
      return ep.subsets?.[0]?.addresses?.[0]?.ip === '10.200.0.9';
    });
    const exit = await manager.stop();
    expect(exit, manager.output().slice(-3000)).to.deep.equal({ code: 0, signal: null });
  });
});
