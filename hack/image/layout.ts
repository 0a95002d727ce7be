/**
 * Builds the image's file system on the host, without a container engine, by interpreting the
 * Dockerfile (./dockerfile.ts): every stage gets a temp folder standing in for its root, WORKDIR
 * creates folders, COPY copies from the build context (honouring .dockerignore) or an earlier
 * stage's root, and RUN runs the line as written with `/bin/sh -c` in the stage's WORKDIR. The
 * final stage's root is what the image holds; it is made read-only, as the Deployment mounts it
 * (readOnlyRootFilesystem).
 *
 * What the host cannot reproduce: the base image itself. Its Node.js is stood in for by the one
 * running this process (the pinned Node 24; FROM node:<major> must agree with it) and its tools by
 * the system PATH. RUN lines see the stage root only as their working folder, so they must use
 * relative paths, as ours do, and they run as the current user whatever USER says.
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseDockerfile, type Instruction, type Stage } from './dockerfile.ts';
import { hasExceptions, isIgnored, parseDockerignore, type IgnoreRule } from './dockerignore.ts';

export interface LayOutOptions {
  /** The repository: the build context, and where the Dockerfile is. */
  repo: string;
  /** The Dockerfile, absolute or relative to `repo`; default `Dockerfile`. */
  dockerfile?: string;
  /**
   * Remove nothing unasked: neither the build stages' roots once the image is laid out, nor the
   * folders of a failed layout (the error names them), nor anything when the process exits.
   * remove() still deletes everything.
   */
  keep?: boolean;
  /** Told each instruction as it is interpreted, e.g. to show progress. */
  log?: (message: string) => void;
}

/** How to start a process from the image: pass to child_process.spawn. */
export interface ImageCommand {
  command: string;
  args: string[];
  /** The image's WORKDIR on the host. */
  cwd: string;
  /** The image's environment only (nothing inherited from this process); extend as needed. */
  env: Record<string, string>;
  /** The image's USER, when this process may switch to it (it runs as root). */
  uid?: number;
  gid?: number;
}

export interface ImageLayout {
  /** Host path of the image's root file system (read-only). */
  readonly root: string;
  /** Host path of the final WORKDIR. */
  readonly workdir: string;
  /** The final stage's ENV. */
  readonly env: Record<string, string>;
  /** The final stage's USER, as written. */
  readonly user?: string;
  /** The final stage's ENTRYPOINT, as written. */
  readonly entrypoint: string[];
  /**
   * The numeric USER to run the image's processes as, when this process is root: root ignores
   * file modes, so only as the image's user is the read-only root actually read-only.
   */
  readonly runAs?: { uid: number; gid: number };
  /**
   * The ENTRYPOINT followed by `args`, run from the WORKDIR with the image's ENV; an entrypoint of
   * `node` becomes this process's Node.js (the base image's stand-in) and an absolute path one
   * inside the root.
   */
  command(args?: readonly string[]): ImageCommand;
  /**
   * A new folder holding `files` (name to content), readable but not writable by the user the
   * image runs as, like a Secret or ConfigMap volume; returns its host path. remove() deletes it.
   */
  readOnlyVolume(files?: Readonly<Record<string, string | Uint8Array>>): string;
  /** Makes everything writable again and deletes every folder this layout made. Idempotent. */
  remove(): Promise<void>;
}

/** The base images' PATH (Docker's default), after the stand-in for their Node.js. */
const IMAGE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** Host settings a RUN line may need to reach the npm registry (Docker's predefined proxy args). */
const PASSED_THROUGH = ['HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY', 'http_proxy', 'https_proxy', 'no_proxy'];
const OUTPUT_TAIL_BYTES = 16 * 1024;

interface StageState {
  root: string;
  workdir: string;
  env: Record<string, string>;
  user: string | undefined;
  entrypoint: string[];
}

// Folders of layouts not yet removed, deleted when the process exits (also after a failed test).
const liveFolders = new Set<string>();
let exitHookInstalled = false;

function removeAtExit(dir: string): void {
  liveFolders.add(dir);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const d of liveFolders) removeTreeSync(d);
  });
}

/** Every entry under `dir` (symlinks not followed), `dir` first. */
function entriesUnder(dir: string): { path: string; isDir: boolean; isLink: boolean }[] {
  const out = [{ path: dir, isDir: true, isLink: false }];
  for (const e of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    out.push({ path: path.join(e.parentPath, e.name), isDir: e.isDirectory(), isLink: e.isSymbolicLink() });
  }
  return out;
}

/**
 * chmod -R a-w, and a+rX: the image's user (another uid) must still read and traverse what a
 * restrictive umask may have left private.
 */
function makeReadOnly(dir: string): void {
  for (const e of entriesUnder(dir)) {
    if (e.isLink) continue;
    const mode = fs.lstatSync(e.path).mode & 0o7777;
    const executable = e.isDir || (mode & 0o111) !== 0;
    fs.chmodSync(e.path, (mode & ~0o222) | 0o444 | (executable ? 0o111 : 0));
  }
}

/** Deleting needs write permission on folders only. */
function removeTreeSync(dir: string): void {
  if (!fs.existsSync(dir)) return;
  for (const e of entriesUnder(dir)) {
    if (e.isDir && !e.isLink) fs.chmodSync(e.path, (fs.lstatSync(e.path).mode & 0o7777) | 0o700);
  }
  fs.rmSync(dir, { recursive: true, force: true });
}

/** The host path of `imagePath` (absolute inside the image) under `root`. */
function hostPath(root: string, imagePath: string): string {
  return path.join(root, path.posix.resolve('/', imagePath));
}

/** The instruction as written (near enough), naming stages as the Dockerfile does. */
function describe(i: Instruction, stages: readonly Stage[]): string {
  switch (i.kind) {
    case 'WORKDIR':
      return `WORKDIR ${i.path}`;
    case 'COPY': {
      const from = i.fromStage === undefined ? '' : `--from=${stages[i.fromStage].name ?? i.fromStage} `;
      return `COPY ${from}${[...i.sources, i.dest].join(' ')}`;
    }
    case 'RUN':
      return `RUN ${i.command}`;
    case 'ENV':
      return `ENV ${Object.entries(i.vars)
        .map(([k, v]) => `${k}=${v}`)
        .join(' ')}`;
    case 'USER':
      return `USER ${i.user}`;
    case 'ENTRYPOINT':
      return `ENTRYPOINT ${JSON.stringify(i.args)}`;
  }
}

/** The stand-in for `FROM node:<major>...` must be that Node.js major. */
function checkBaseImage(stage: Stage): void {
  const major = /^(?:docker\.io\/)?(?:library\/)?node:(\d+)/.exec(stage.image)?.[1];
  const ours = process.versions.node.split('.')[0];
  if (major !== undefined && major !== ours) {
    throw new Error(
      `Dockerfile line ${stage.line}: FROM ${stage.image} wants Node.js ${major}, but the host stands in with ` +
        `${process.execPath} (v${process.versions.node}); run with the pinned Node.js`,
    );
  }
}

/** PATH for RUN lines: our Node.js, then the system's, without the repo's node_modules/.bin. */
function runPath(repo: string): string {
  const nodeDir = path.dirname(process.execPath);
  // A container does not see the repo's tools, and node_modules/.bin/node in particular must not
  // shadow the stand-in.
  const system = (process.env.PATH ?? '')
    .split(':')
    .filter((p) => p !== '' && p !== nodeDir && !`${path.resolve(p)}/`.startsWith(`${repo}/`));
  return [nodeDir, ...system].join(':');
}

/** The npm cache the user's own npm uses, so that npm ci with another HOME still hits it. */
function npmCache(pathEnv: string): string {
  try {
    const dir = execFileSync('npm', ['config', 'get', 'cache'], {
      env: { ...process.env, PATH: pathEnv },
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
    if (dir !== '') return dir;
  } catch {
    // no npm on PATH: RUN lines calling npm fail with their own message
  }
  return path.join(os.homedir(), '.npm');
}

async function runShell(
  line: number,
  command: string,
  cwd: string,
  env: Record<string, string>,
): Promise<void> {
  const child = spawn('/bin/sh', ['-c', command], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const collect = (d: Buffer): void => {
    output = (output + d.toString()).slice(-OUTPUT_TAIL_BYTES);
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  const { code, signal } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>(
    (resolve, reject) => {
      child.on('error', reject);
      child.on('close', (c, s) => resolve({ code: c, signal: s }));
    },
  );
  if (code !== 0) {
    throw new Error(
      `Dockerfile line ${line}: RUN ${command} failed (${signal ?? `exit ${code}`}) in ${cwd}:\n${output.trimEnd()}`,
    );
  }
}

interface CopySource {
  /** Host path of the source. */
  host: string;
  /** For build-context sources: decides what under a folder is copied. */
  filter?: (hostPath: string) => boolean;
}

function copy(
  i: Extract<Instruction, { kind: 'COPY' }>,
  state: StageState,
  from: (src: string) => CopySource,
): void {
  const destImagePath = path.posix.resolve(state.workdir, i.dest);
  const destHost = hostPath(state.root, destImagePath);
  const destIsDir =
    i.dest.endsWith('/') ||
    /(^|\/)\.$/.test(i.dest) ||
    i.sources.length > 1 ||
    (fs.existsSync(destHost) && fs.statSync(destHost).isDirectory());
  for (const src of i.sources) {
    const { host, filter } = from(src);
    const real = fs.realpathSync(host);
    const options: fs.CopySyncOptions = {
      recursive: true,
      // node_modules/.bin holds relative links; resolving them would point into a deleted stage.
      verbatimSymlinks: true,
      filter: filter ? (s) => filter(s === real ? host : path.join(host, path.relative(real, s))) : undefined,
    };
    if (fs.statSync(real).isDirectory()) {
      // Docker copies a folder's contents, not the folder itself.
      fs.mkdirSync(destHost, { recursive: true });
      fs.cpSync(real, destHost, options);
    } else {
      const target = destIsDir ? path.join(destHost, path.posix.basename(src)) : destHost;
      fs.mkdirSync(path.dirname(target), { recursive: true });
      fs.cpSync(real, target, options);
    }
  }
}

function contextSource(
  line: number,
  repo: string,
  rules: readonly IgnoreRule[],
): (src: string) => CopySource {
  const walkIgnored = hasExceptions(rules);
  const filter = (p: string): boolean => {
    const rel = path.relative(repo, p);
    if (rel === '' || !isIgnored(rules, rel)) return true;
    // An ignored folder is entered only when a `!` rule may bring something under it back.
    return walkIgnored && fs.lstatSync(p).isDirectory();
  };
  return (src) => {
    const rel = path.posix.normalize(src).replace(/^\/+/, '');
    if (rel === '..' || rel.startsWith('../'))
      throw new Error(`Dockerfile line ${line}: COPY ${src} is outside the build context`);
    const host = path.join(repo, rel);
    if ((rel !== '.' && isIgnored(rules, rel)) || !fs.existsSync(host))
      throw new Error(
        `Dockerfile line ${line}: COPY ${src}: not found in the build context or excluded by .dockerignore`,
      );
    const real = fs.realpathSync(host);
    if (real !== repo && !real.startsWith(`${repo}/`))
      throw new Error(`Dockerfile line ${line}: COPY ${src} leads outside the build context`);
    return { host, filter };
  };
}

function stageSource(line: number, index: number, root: string): (src: string) => CopySource {
  return (src) => {
    // --from paths are relative to the other stage's root, not its WORKDIR.
    const host = hostPath(root, src);
    if (!fs.existsSync(host))
      throw new Error(`Dockerfile line ${line}: COPY --from=${index} ${src}: not found in that stage`);
    return { host };
  };
}

interface BuildContext {
  repo: string;
  rules: readonly IgnoreRule[];
  /** The environment RUN lines start from (the stage's ENV goes on top). */
  env: Record<string, string>;
  /** The folder the stages' roots go in. */
  parent: string;
  log: (message: string) => void;
}

/** Interprets stage `index`, the earlier ones being laid out in `earlier`. */
async function layOutStage(
  build: BuildContext,
  stages: readonly Stage[],
  index: number,
  earlier: readonly StageState[],
): Promise<StageState> {
  const stage = stages[index];
  const log = (message: string): void => build.log(`[${stage.name ?? index}] ${message}`);
  const root = path.join(build.parent, `stage-${index}${stage.name ? `-${stage.name}` : ''}`);
  // FROM <an earlier stage> starts from a copy of that stage's root and settings.
  const baseIndex = stages.slice(0, index).findIndex((s) => s.name === stage.image.toLowerCase());
  const base = baseIndex < 0 ? undefined : earlier[baseIndex];
  let state: StageState;
  if (base) {
    fs.cpSync(base.root, root, { recursive: true, verbatimSymlinks: true });
    state = { ...base, root, env: { ...base.env }, entrypoint: [...base.entrypoint] };
  } else {
    checkBaseImage(stage);
    fs.mkdirSync(root);
    state = { root, workdir: '/', env: {}, user: undefined, entrypoint: [] };
  }
  log(`FROM ${stage.image}`);
  for (const i of stage.instructions) {
    log(describe(i, stages));
    switch (i.kind) {
      case 'WORKDIR':
        state.workdir = path.posix.resolve(state.workdir, i.path);
        fs.mkdirSync(hostPath(root, state.workdir), { recursive: true });
        break;
      case 'ENV':
        Object.assign(state.env, i.vars);
        break;
      case 'USER':
        state.user = i.user;
        break;
      case 'ENTRYPOINT':
        state.entrypoint = [...i.args];
        break;
      case 'COPY':
        copy(
          i,
          state,
          i.fromStage === undefined
            ? contextSource(i.line, build.repo, build.rules)
            : stageSource(i.line, i.fromStage, earlier[i.fromStage].root),
        );
        break;
      case 'RUN': {
        const cwd = hostPath(root, state.workdir);
        fs.mkdirSync(cwd, { recursive: true });
        await runShell(i.line, i.command, cwd, { ...build.env, ...state.env });
        break;
      }
    }
  }
  return state;
}

function parseUser(user: string): { uid: number; gid: number } {
  const m = /^(\d+)(?::(\d+))?$/.exec(user);
  if (!m) {
    throw new Error(
      `USER ${user}: only a numeric user can be switched to on the host (it has no /etc/passwd of the image)`,
    );
  }
  // Without a group and without the image's /etc/passwd, Docker uses group 0 too.
  return { uid: Number(m[1]), gid: Number(m[2] ?? '0') };
}

export async function layOutImage(opts: LayOutOptions): Promise<ImageLayout> {
  // Real, so that a COPY source's real path can be checked to stay inside it.
  const repo = fs.realpathSync(path.resolve(opts.repo));
  const dockerfilePath = path.resolve(repo, opts.dockerfile ?? 'Dockerfile');
  const dockerfile = parseDockerfile(fs.readFileSync(dockerfilePath, 'utf8'));
  const ignorePath = path.join(repo, '.dockerignore');
  const rules = fs.existsSync(ignorePath) ? parseDockerignore(fs.readFileSync(ignorePath, 'utf8')) : [];
  const log = opts.log ?? (() => {});

  const parent = fs.mkdtempSync(path.join(os.tmpdir(), 'scm-image-'));
  // mkdtemp makes it private; the image's user (another uid when we are root) must reach the root.
  fs.chmodSync(parent, 0o755);
  if (!opts.keep) removeAtExit(parent);
  const volumes = path.join(parent, 'volumes');
  const home = path.join(parent, 'build-home');
  fs.mkdirSync(home);
  const pathEnv = runPath(repo);
  const buildEnv: Record<string, string> = {
    PATH: pathEnv,
    HOME: home,
    npm_config_cache: npmCache(pathEnv),
    // The lockfile pins every tarball's integrity, so a cached copy is the same bytes; without this
    // npm revalidates each stale cache entry with the registry, which can cost minutes.
    npm_config_prefer_offline: 'true',
  };
  for (const name of PASSED_THROUGH) {
    const value = process.env[name];
    if (value !== undefined) buildEnv[name] = value;
  }
  const build: BuildContext = { repo, rules, env: buildEnv, parent, log };

  const states: StageState[] = [];
  let runAs: { uid: number; gid: number } | undefined;
  try {
    for (const index of dockerfile.stages.keys()) {
      states.push(await layOutStage(build, dockerfile.stages, index, states));
    }
    const last = states[states.length - 1];
    runAs = last.user !== undefined && process.getuid?.() === 0 ? parseUser(last.user) : undefined;
  } catch (err) {
    if (opts.keep) {
      const message = err instanceof Error ? err.message : String(err);
      throw new Error(`${message}\n(the stages' roots are kept in ${parent})`, { cause: err });
    }
    removeTreeSync(parent);
    liveFolders.delete(parent);
    throw err;
  }
  const final = states[states.length - 1];
  if (!opts.keep) {
    for (const s of states.slice(0, -1)) removeTreeSync(s.root);
    fs.rmSync(home, { recursive: true, force: true });
  }
  makeReadOnly(final.root);

  const workdir = hostPath(final.root, final.workdir);
  let volumeCount = 0;
  let removed = false;
  return {
    root: final.root,
    workdir,
    env: { ...final.env },
    ...(final.user === undefined ? {} : { user: final.user }),
    entrypoint: [...final.entrypoint],
    ...(runAs === undefined ? {} : { runAs }),
    command(args = []) {
      const [first, ...rest] = final.entrypoint;
      if (first === undefined) throw new Error('the image has no ENTRYPOINT');
      const command =
        first === 'node' || /^\/usr(\/local)?\/bin\/node$/.test(first)
          ? process.execPath
          : first.startsWith('/')
            ? hostPath(final.root, first)
            : first;
      return {
        command,
        args: [...rest, ...args],
        cwd: workdir,
        env: { PATH: `${path.dirname(process.execPath)}:${IMAGE_PATH}`, ...final.env },
        ...(runAs ?? {}),
      };
    },
    readOnlyVolume(files = {}) {
      if (removed) throw new Error('the image layout was removed');
      const dir = path.join(volumes, `volume-${++volumeCount}`);
      fs.mkdirSync(dir, { recursive: true });
      for (const [name, content] of Object.entries(files)) {
        if (name.includes('/') || name === '' || name === '.' || name === '..')
          throw new Error(`readOnlyVolume: "${name}" is not a file name`);
        fs.writeFileSync(path.join(dir, name), content, { mode: 0o444 });
      }
      fs.chmodSync(dir, 0o555);
      return dir;
    },
    remove() {
      if (!removed) {
        removed = true;
        removeTreeSync(parent);
        liveFolders.delete(parent);
      }
      return Promise.resolve();
    },
  };
}
