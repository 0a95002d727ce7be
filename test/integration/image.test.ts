/**
 * The image holds the product only: the build the Dockerfile runs (tsc -p tsconfig.build.json)
 * leaves out the local control plane, `make run`'s entry point, the benchmarks and the tests, and
 * what it compiles imports only production dependencies.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { builtinModules } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';

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
        'package-lock.json',
        'package.json',
        'shared',
        'tsconfig.build.json',
        'tsconfig.json',
      ].sort(),
    );
  });
});
