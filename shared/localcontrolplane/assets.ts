// Finds the kube-apiserver and etcd binaries the local control plane runs, the envtest way:
// KUBEBUILDER_ASSETS if set, else the per-user cache folder that `make envtest-assets`
// (hack/build-envtest-assets.sh) fills, keyed by the versions pinned in hack/versions.env.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface Assets {
  /** The folder the binaries were found in. */
  dir: string;
  kubeApiServer: string;
  etcd: string;
  /** Present only when that folder holds one (`make kube-controller-manager`). */
  kubeControllerManager?: string;
  /** Present only when that folder holds one (`make kubectl`). */
  kubectl?: string;
}

export interface PinnedVersions {
  kubernetes: string;
  etcd: string;
}

const versionsFile = path.resolve(import.meta.dirname, '../../hack/versions.env');

/** Reads KUBERNETES_VERSION and ETCD_VERSION from hack/versions.env (KEY=value lines, # comments). */
export function pinnedVersions(file: string = versionsFile): PinnedVersions {
  const values = new Map<string, string>();
  for (const raw of fs.readFileSync(file, 'utf8').split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (!m) continue;
    values.set(m[1], m[2].trim().replace(/^(['"])(.*)\1$/, '$2'));
  }
  const kubernetes = values.get('KUBERNETES_VERSION');
  const etcd = values.get('ETCD_VERSION');
  if (!kubernetes || !etcd) {
    throw new Error(`${file} must set KUBERNETES_VERSION and ETCD_VERSION`);
  }
  return { kubernetes, etcd };
}

/** The cache folder hack/build-envtest-assets.sh builds into, for the pinned versions. */
export function cacheAssetsDir(env: NodeJS.ProcessEnv = process.env): string {
  const { kubernetes, etcd } = pinnedVersions();
  const cacheHome = env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  const root = env.SCM_ENVTEST_CACHE || path.join(cacheHome, 'service-controller-manager', 'envtest');
  return path.join(root, `k8s-${kubernetes}-etcd-${etcd}`);
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

/**
 * Locates the binaries. Throws an error naming what is missing and how to get it:
 * with KUBEBUILDER_ASSETS set, that folder must hold kube-apiserver and etcd; otherwise the
 * cache folder must, and the error says to run `make envtest-assets`.
 */
export function findAssets(env: NodeJS.ProcessEnv = process.env): Assets {
  const fromEnv = env.KUBEBUILDER_ASSETS;
  const dir = fromEnv ? path.resolve(fromEnv) : cacheAssetsDir(env);
  const required = ['kube-apiserver', 'etcd'];
  const missing = required.filter((b) => !isExecutable(path.join(dir, b)));
  if (missing.length > 0) {
    const what = missing.join(' and ');
    if (fromEnv) {
      throw new Error(
        `KUBEBUILDER_ASSETS=${fromEnv} does not hold an executable ${what} ` +
          `(it must contain kube-apiserver and etcd); fix it or unset KUBEBUILDER_ASSETS ` +
          `to use the cache that \`make envtest-assets\` fills`,
      );
    }
    throw new Error(
      `no executable ${what} in ${dir}: run \`make envtest-assets\` to build them ` +
        `(or set KUBEBUILDER_ASSETS to a folder holding kube-apiserver and etcd)`,
    );
  }
  const assets: Assets = {
    dir,
    kubeApiServer: path.join(dir, 'kube-apiserver'),
    etcd: path.join(dir, 'etcd'),
  };
  const kcm = path.join(dir, 'kube-controller-manager');
  if (isExecutable(kcm)) assets.kubeControllerManager = kcm;
  const kubectl = path.join(dir, 'kubectl');
  if (isExecutable(kubectl)) assets.kubectl = kubectl;
  return assets;
}
