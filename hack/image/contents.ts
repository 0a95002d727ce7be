/**
 * What a laid-out image (./layout.ts) must and must not hold: the product only (package.json,
 * production node_modules, dist without the local control plane or `make run`'s entry), nothing of
 * the repo's tooling, and a root nobody can write to.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { ImageLayout } from './layout.ts';

export interface ContentsReport {
  /** One line per check that passed, saying what it saw. */
  passed: string[];
  /** One line per check that failed, saying what is wrong. */
  problems: string[];
}

/** The WORKDIR's top-level entries, exactly. */
export const EXPECTED_WORKDIR_ENTRIES = ['dist', 'node_modules', 'package.json'];
/** Repo folders that must be neither in the root nor in the WORKDIR. */
const REPO_ONLY = ['test', 'bench', 'hack', '.git', 'docs'];
/** Compiled files that belong to the local control plane or `make run`, not the product. */
const DEV_ONLY_DIST = ['shared/localcontrolplane', 'cmd/run.js'];

interface LockEntry {
  dev?: boolean;
  dependencies?: Record<string, string>;
}

interface Lockfile {
  packages: Record<string, LockEntry>;
}

interface PackageJson {
  devDependencies?: Record<string, string>;
}

const readJson = <T>(file: string): T => JSON.parse(fs.readFileSync(file, 'utf8')) as T;

/**
 * The devDependencies an image may not hold: those the lockfile marks dev-only. The rest are
 * also needed by a production dependency, which are listed by who needs them.
 */
export function devOnlyDependencies(repo: string): {
  devOnly: string[];
  neededInProduction: Map<string, string[]>;
} {
  const pkg = readJson<PackageJson>(path.join(repo, 'package.json'));
  const lock = readJson<Lockfile>(path.join(repo, 'package-lock.json'));
  const devOnly: string[] = [];
  const neededInProduction = new Map<string, string[]>();
  for (const name of Object.keys(pkg.devDependencies ?? {})) {
    const entry = lock.packages[`node_modules/${name}`];
    if (entry === undefined || entry.dev === true) {
      devOnly.push(name);
      continue;
    }
    const dependents = Object.entries(lock.packages)
      .filter(([key, entry]) => key !== '' && !entry.dev && entry.dependencies?.[name] !== undefined)
      .map(([key]) => key.replace(/^.*node_modules\//, ''));
    neededInProduction.set(name, dependents);
  }
  return { devOnly, neededInProduction };
}

function entriesUnder(dir: string): string[] {
  return fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .map((e) => path.join(e.parentPath, e.name));
}

export function checkImageContents(layout: ImageLayout, repo: string): ContentsReport {
  const passed: string[] = [];
  const problems: string[] = [];
  const check = (ok: boolean, pass: string, problem: string): void => {
    (ok ? passed : problems).push(ok ? pass : problem);
  };
  const imagePath = (host: string): string => `/${path.relative(layout.root, host)}`;
  const workdir = imagePath(layout.workdir);

  const top = fs.readdirSync(layout.workdir).sort();
  check(
    JSON.stringify(top) === JSON.stringify(EXPECTED_WORKDIR_ENTRIES),
    `${workdir} holds exactly ${top.join(', ')}`,
    `${workdir} holds ${top.join(', ')}; expected exactly ${EXPECTED_WORKDIR_ENTRIES.join(', ')}`,
  );

  const repoOnly = [layout.root, layout.workdir].flatMap((dir) =>
    REPO_ONLY.filter((name) => fs.existsSync(path.join(dir, name))).map((name) =>
      imagePath(path.join(dir, name)),
    ),
  );
  check(
    repoOnly.length === 0,
    `no ${REPO_ONLY.join(', ')} in / or ${workdir}`,
    `the repo's ${repoOnly.join(', ')} got into the image`,
  );

  const { devOnly, neededInProduction } = devOnlyDependencies(repo);
  const modules = path.join(layout.workdir, 'node_modules');
  const present = devOnly.filter((name) => fs.existsSync(path.join(modules, name)));
  const why = [...neededInProduction].map(([name, by]) => `${name} (needed by ${by.join(', ') || '?'})`);
  check(
    present.length === 0,
    `none of the ${devOnly.length} dev-only devDependencies in node_modules` +
      (why.length > 0 ? `; there because production needs them: ${why.join(', ')}` : ''),
    `devDependencies in node_modules: ${present.join(', ')} (npm prune --omit=dev did not run?)`,
  );

  const lock = readJson<Lockfile>(path.join(repo, 'package-lock.json'));
  const devPackages = Object.entries(lock.packages).filter(([key, entry]) => key !== '' && entry.dev);
  const strays = devPackages
    .filter(([key]) => fs.existsSync(path.join(layout.workdir, key)))
    .map(([key]) => key);
  check(
    strays.length === 0,
    `none of the ${devPackages.length} packages the lockfile marks dev-only in node_modules`,
    `dev-only packages in the image: ${strays.slice(0, 10).join(', ')}${strays.length > 10 ? ', ...' : ''}`,
  );

  const dist = path.join(layout.workdir, 'dist');
  const script = layout.entrypoint.find((arg) => arg.endsWith('.js'));
  const scriptOk = script !== undefined && fs.existsSync(path.join(layout.workdir, script));
  const devDist = DEV_ONLY_DIST.filter((p) => fs.existsSync(path.join(dist, p)));
  check(
    scriptOk && devDist.length === 0,
    `the entrypoint's ${script} is there; dist/ has no ${DEV_ONLY_DIST.join(', ')}`,
    [
      scriptOk ? '' : `the entrypoint's script ${script ?? '(none)'} is missing`,
      devDist.length > 0 ? `dist/ holds ${devDist.join(', ')}` : '',
    ]
      .filter((s) => s !== '')
      .join('; '),
  );

  const all = [layout.root, ...entriesUnder(layout.root)];
  const writable = all.filter((p) => {
    const st = fs.lstatSync(p);
    return !st.isSymbolicLink() && (st.mode & 0o222) !== 0;
  });
  check(
    writable.length === 0,
    `the root is read-only: no write permission on any of its ${all.length} entries`,
    `writable in the root: ${writable.slice(0, 5).map(imagePath).join(', ')}${writable.length > 5 ? ', ...' : ''}`,
  );
  return { passed, problems };
}
