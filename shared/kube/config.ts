/**
 * Where the API server is and who we are to it, decided once at start like client-go's
 * BuildConfigFromFlags: `--kubeconfig` (or `KUBECONFIG`) wins, then in-cluster credentials,
 * then `~/.kube/config`. `--master` overrides the server address of whichever was chosen.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';

export const IN_CLUSTER_TOKEN_PATH = '/var/run/secrets/kubernetes.io/serviceaccount/token';

export type ConfigSource =
  'kubeconfig-flag' | 'KUBECONFIG' | 'in-cluster' | 'home-kubeconfig' | 'master-only';

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

function inClusterAvailable(e: ConfigEnvironment): boolean {
  return Boolean(e.env.KUBERNETES_SERVICE_HOST) && e.fileExists(IN_CLUSTER_TOKEN_PATH);
}

/** Which source `loadKubeConfig` would use, without loading it; undefined when none is configured. */
export function configuredSource(
  flags: { kubeconfig?: string; master?: string },
  e: ConfigEnvironment = defaultEnvironment(),
): ConfigSource | undefined {
  if (flags.kubeconfig) return 'kubeconfig-flag';
  if (e.env.KUBECONFIG) return 'KUBECONFIG';
  if (inClusterAvailable(e)) return 'in-cluster';
  if (e.fileExists(join(e.home, '.kube', 'config'))) return 'home-kubeconfig';
  if (flags.master) return 'master-only';
  return undefined;
}

export function loadKubeConfig(
  flags: { kubeconfig?: string; master?: string },
  e: ConfigEnvironment = defaultEnvironment(),
): LoadedConfig {
  const source = configuredSource(flags, e);
  const kc = new KubeConfig();
  switch (source) {
    case 'kubeconfig-flag':
      kc.loadFromFile(flags.kubeconfig as string);
      break;
    case 'KUBECONFIG':
      // client-node merges a colon-separated KUBECONFIG list the way kubectl does.
      kc.loadFromDefault();
      break;
    case 'in-cluster':
      kc.loadFromCluster();
      break;
    case 'home-kubeconfig':
      kc.loadFromFile(join(e.home, '.kube', 'config'));
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
  if (!kc.getCurrentCluster()) throw new Error(`the ${source} configuration has no current cluster`);
  return { kubeConfig: kc, source, inCluster: source === 'in-cluster' };
}
