/**
 * kustomize for the manifest tests: the binary `make kustomize` (hack/build-kustomize.sh) builds
 * into the per-user cache, keyed by KUSTOMIZE_VERSION of hack/versions.env, or the one the
 * KUSTOMIZE env var names; and the third-party CRDs that script copies beside it, which the
 * cert-manager and monitoring manifests are validated against.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadAllYaml, type KubernetesObject, type V1CustomResourceDefinition } from '@kubernetes/client-node';

const VERSIONS_FILE = path.resolve(import.meta.dirname, '../../../hack/versions.env');

/** One KEY=value of hack/versions.env (the same format shared/localcontrolplane/assets.ts reads). */
function pinned(key: string): string {
  for (const raw of fs.readFileSync(VERSIONS_FILE, 'utf8').split('\n')) {
    const m = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(raw);
    if (m?.[1] === key) return m[2].trim().replace(/^(['"])(.*)\1$/, '$2');
  }
  throw new Error(`${VERSIONS_FILE} does not set ${key}`);
}

/** The folder hack/build-kustomize.sh caches into (it honours XDG_CACHE_HOME the same way). */
function cacheRoot(env: NodeJS.ProcessEnv): string {
  return path.join(env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'service-controller-manager');
}

/** KUSTOMIZE if set, else the cached build of the pinned version; throws saying how to get it. */
export function kustomizePath(env: NodeJS.ProcessEnv = process.env): string {
  const bin =
    env.KUSTOMIZE || path.join(cacheRoot(env), 'kustomize', pinned('KUSTOMIZE_VERSION'), 'kustomize');
  try {
    fs.accessSync(bin, fs.constants.X_OK);
  } catch {
    throw new Error(
      env.KUSTOMIZE
        ? `KUSTOMIZE=${env.KUSTOMIZE} is not an executable`
        : `no kustomize at ${bin}: run \`make kustomize\` (or set KUSTOMIZE to a kustomize binary)`,
    );
  }
  return bin;
}

/** `kustomize build dir`, parsed: the objects in kustomize's output order. */
export function kustomizeBuild(dir: string): KubernetesObject[] {
  // Synchronous: a build of these folders takes well under a second, and execFileSync leaves no
  // child behind (it is killed at the timeout).
  const out = execFileSync(kustomizePath(), ['build', dir], {
    encoding: 'utf8',
    timeout: 60_000,
    maxBuffer: 64 * 1024 * 1024,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return loadAllYaml(out) as KubernetesObject[];
}

export type ThirdParty = 'cert-manager' | 'prometheus-operator';

const VERSION_KEYS: Record<ThirdParty, string> = {
  'cert-manager': 'CERT_MANAGER_VERSION',
  'prometheus-operator': 'PROMETHEUS_OPERATOR_VERSION',
};

/** The CRDs of `project` at its pinned version that hack/build-kustomize.sh copied into the cache. */
export function thirdPartyCrds(
  project: ThirdParty,
  env: NodeJS.ProcessEnv = process.env,
): V1CustomResourceDefinition[] {
  const dir = path.join(cacheRoot(env), 'crds', `${project}-${pinned(VERSION_KEYS[project])}`);
  const files = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.yaml')) : [];
  if (files.length === 0) throw new Error(`no ${project} CRDs in ${dir}: run \`make kustomize\``);
  return files.flatMap(
    (f) => loadAllYaml(fs.readFileSync(path.join(dir, f), 'utf8')) as V1CustomResourceDefinition[],
  );
}
