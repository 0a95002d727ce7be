import { expect } from 'chai';
import { configuredSource, IN_CLUSTER_TOKEN_PATH, type ConfigEnvironment } from '../../shared/kube/config.ts';

const HOME_CONFIG = '/home/u/.kube/config';

function environment(o: {
  kubeconfigEnv?: string;
  inCluster?: boolean;
  homeConfig?: boolean;
}): ConfigEnvironment {
  const files = new Set<string>();
  if (o.inCluster) files.add(IN_CLUSTER_TOKEN_PATH);
  if (o.homeConfig) files.add(HOME_CONFIG);
  return {
    env: {
      ...(o.kubeconfigEnv ? { KUBECONFIG: o.kubeconfigEnv } : {}),
      ...(o.inCluster ? { KUBERNETES_SERVICE_HOST: '10.96.0.1' } : {}),
    },
    home: '/home/u',
    fileExists: (path) => files.has(path),
  };
}

const EVERYTHING = { kubeconfigEnv: '/etc/kc', inCluster: true, homeConfig: true };

describe('configuredSource', () => {
  it('prefers --kubeconfig over every other source', () => {
    expect(configuredSource({ kubeconfig: '/tmp/kc' }, environment(EVERYTHING))).to.equal('kubeconfig-flag');
  });

  it('uses KUBECONFIG when no flag is given, before in-cluster credentials', () => {
    expect(configuredSource({}, environment(EVERYTHING))).to.equal('KUBECONFIG');
  });

  it('uses in-cluster credentials before ~/.kube/config', () => {
    expect(configuredSource({}, environment({ inCluster: true, homeConfig: true }))).to.equal('in-cluster');
  });

  it('needs both KUBERNETES_SERVICE_HOST and the token file for in-cluster', () => {
    const noToken: ConfigEnvironment = {
      ...environment({ homeConfig: true }),
      env: { KUBERNETES_SERVICE_HOST: 'x' },
    };
    expect(configuredSource({}, noToken)).to.equal('home-kubeconfig');
    expect(configuredSource({}, { ...environment({ inCluster: true }), env: {} })).to.equal(undefined);
  });

  it('falls back to ~/.kube/config', () => {
    expect(configuredSource({}, environment({ homeConfig: true }))).to.equal('home-kubeconfig');
  });

  it('returns undefined when nothing is configured', () => {
    expect(configuredSource({}, environment({}))).to.equal(undefined);
  });
});
