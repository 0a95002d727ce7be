/**
 * Where the API server is and who we are to it, decided once at start like client-go's
 * BuildConfigFromFlags: `--kubeconfig` (or `KUBECONFIG`) wins, then in-cluster credentials (read
 * from `--service-account-dir`), then `~/.kube/config`. `--context` picks a kubeconfig context
 * other than its current one; `--master` overrides the server address of whichever was chosen.
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import { isIPv6 } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { DEFAULT_SERVICE_ACCOUNT_DIR, FlagError } from '../config.ts';

export { DEFAULT_SERVICE_ACCOUNT_DIR };
export const IN_CLUSTER_TOKEN_PATH = join(DEFAULT_SERVICE_ACCOUNT_DIR, 'token');

export type ConfigSource =
  'kubeconfig-flag' | 'KUBECONFIG' | 'in-cluster' | 'home-kubeconfig' | 'master-only';

export interface KubeConfigFlags {
  kubeconfig?: string;
  master?: string;
  /** A kubeconfig context to use instead of the current one. */
  context?: string;
  /** The folder holding the in-cluster token, ca.crt and namespace; default DEFAULT_SERVICE_ACCOUNT_DIR. */
  serviceAccountDir?: string;
}

export interface LoadedConfig {
  kubeConfig: KubeConfig;
  source: ConfigSource;
  inCluster: boolean;
}

export interface ConfigEnvironment {
  env: NodeJS.ProcessEnv;
  home: string;
  fileExists: (path: string) => boolean;
}

const defaultEnvironment = (): ConfigEnvironment => ({
  env: process.env,
  home: homedir(),
  fileExists: existsSync,
});

const serviceAccountDir = (flags: KubeConfigFlags): string =>
  flags.serviceAccountDir || DEFAULT_SERVICE_ACCOUNT_DIR;

function inClusterAvailable(flags: KubeConfigFlags, e: ConfigEnvironment): boolean {
  return Boolean(e.env.KUBERNETES_SERVICE_HOST) && e.fileExists(join(serviceAccountDir(flags), 'token'));
}

/** Which source `loadKubeConfig` would use, without loading it; undefined when none is configured. */
export function configuredSource(
  flags: KubeConfigFlags,
  e: ConfigEnvironment = defaultEnvironment(),
): ConfigSource | undefined {
  if (flags.kubeconfig) return 'kubeconfig-flag';
  if (e.env.KUBECONFIG) return 'KUBECONFIG';
  if (inClusterAvailable(flags, e)) return 'in-cluster';
  if (e.fileExists(join(e.home, '.kube', 'config'))) return 'home-kubeconfig';
  if (flags.master) return 'master-only';
  return undefined;
}

/**
 * client-node's `loadFromCluster`, but with the files under `dir` (its `pathPrefix` is prepended
 * to the full default paths, so it cannot name another folder) and the address from `env`.
 */
function loadInCluster(kc: KubeConfig, dir: string, e: ConfigEnvironment): void {
  const host = e.env.KUBERNETES_SERVICE_HOST as string;
  const port = e.env.KUBERNETES_SERVICE_PORT;
  if (!port) throw new Error('in-cluster: KUBERNETES_SERVICE_HOST is set but KUBERNETES_SERVICE_PORT is not');
  const scheme = port === '80' || port === '8080' || port === '8001' ? 'http' : 'https';
  const namespaceFile = join(dir, 'namespace');
  const namespace = e.fileExists(namespaceFile) ? readFileSync(namespaceFile, 'utf8').trim() : undefined;
  kc.loadFromOptions({
    clusters: [
      {
        name: 'inCluster',
        server: `${scheme}://${isIPv6(host) ? `[${host}]` : host}:${port}`,
        caFile: join(dir, 'ca.crt'),
        skipTLSVerify: false,
      },
    ],
    users: [
      {
        name: 'inClusterUser',
        authProvider: { name: 'tokenFile', config: { tokenFile: join(dir, 'token') } },
      },
    ],
    contexts: [{ name: 'inClusterContext', cluster: 'inCluster', user: 'inClusterUser', namespace }],
    currentContext: 'inClusterContext',
  });
}

/** Merges a colon-separated KUBECONFIG list the way kubectl does (client-node's loadFromDefault). */
function loadFromKubeconfigEnv(kc: KubeConfig, list: string): void {
  const files = list.split(delimiter).filter((f) => f);
  if (files.length === 0) throw new Error(`KUBECONFIG="${list}" names no file`);
  kc.loadFromFile(files[0]);
  for (const file of files.slice(1)) {
    const more = new KubeConfig();
    more.loadFromFile(file);
    kc.mergeConfig(more, false);
  }
}

export function loadKubeConfig(
  flags: KubeConfigFlags,
  e: ConfigEnvironment = defaultEnvironment(),
): LoadedConfig {
  const source = configuredSource(flags, e);
  const kc = new KubeConfig();
  let kubeconfigName: string | undefined; // the file(s) a kubeconfig source read, for errors
  switch (source) {
    case 'kubeconfig-flag':
      kc.loadFromFile(flags.kubeconfig as string);
      kubeconfigName = flags.kubeconfig;
      break;
    case 'KUBECONFIG':
      loadFromKubeconfigEnv(kc, e.env.KUBECONFIG as string);
      kubeconfigName = e.env.KUBECONFIG;
      break;
    case 'in-cluster':
      loadInCluster(kc, serviceAccountDir(flags), e);
      break;
    case 'home-kubeconfig':
      kubeconfigName = join(e.home, '.kube', 'config');
      kc.loadFromFile(kubeconfigName);
      break;
    case 'master-only':
      kc.loadFromClusterAndUser(
        { name: 'master', server: flags.master as string, skipTLSVerify: false },
        {
          name: 'anonymous',
        },
      );
      break;
    case undefined:
      throw new Error(
        'no cluster configured: pass --kubeconfig, set KUBECONFIG, run in a cluster, or create ~/.kube/config',
      );
  }
  if (flags.context) {
    if (kubeconfigName === undefined) {
      throw new FlagError(
        `invalid value "${flags.context}" for flag --context: the ${source} configuration is not a kubeconfig; --context applies to --kubeconfig, KUBECONFIG or ~/.kube/config`,
      );
    }
    if (!kc.getContextObject(flags.context)) {
      const known = kc.getContexts().map((c) => c.name);
      throw new FlagError(
        `invalid value "${flags.context}" for flag --context: the kubeconfig ${kubeconfigName} ` +
          (known.length > 0 ? `has the contexts ${known.join(', ')}` : 'has no contexts'),
      );
    }
    kc.setCurrentContext(flags.context);
  }
  if (flags.master && source !== 'master-only') {
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new Error('--master: the kubeconfig has no current cluster to override');
    const clusters = kc.clusters.map((c) =>
      c.name === cluster.name ? { ...c, server: flags.master as string } : c,
    );
    kc.loadFromOptions({
      clusters,
      users: kc.users,
      contexts: kc.contexts,
      currentContext: kc.currentContext,
    });
  }
  if (!kc.getCurrentCluster()) {
    const context = flags.context ? ` (context ${flags.context})` : '';
    throw new Error(`the ${source} configuration${context} has no current cluster`);
  }
  return { kubeConfig: kc, source, inCluster: source === 'in-cluster' };
}
