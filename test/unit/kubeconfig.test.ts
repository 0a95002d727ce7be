import { expect } from 'chai';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { OutgoingHttpHeaders } from 'node:http';
import type https from 'node:https';
import { main } from '../../cmd/manager.ts';
import { DEFAULT_SERVICE_ACCOUNT_DIR } from '../../shared/config.ts';
import {
  configuredSource,
  IN_CLUSTER_TOKEN_PATH,
  loadKubeConfig,
  type ConfigEnvironment,
} from '../../shared/kube/config.ts';
import { flagError } from './helpers/flagerror.ts';

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

  it('looks for the token under --service-account-dir', () => {
    expect(IN_CLUSTER_TOKEN_PATH).to.equal(join(DEFAULT_SERVICE_ACCOUNT_DIR, 'token'));
    const e: ConfigEnvironment = {
      env: { KUBERNETES_SERVICE_HOST: '10.96.0.1' },
      home: '/home/u',
      fileExists: (path) => path === '/tmp/sa/token',
    };
    expect(configuredSource({ serviceAccountDir: '/tmp/sa' }, e)).to.equal('in-cluster');
    expect(configuredSource({ serviceAccountDir: '/tmp/sa/' }, e)).to.equal('in-cluster');
    expect(configuredSource({}, e)).to.equal(undefined);
    // The default folder's token does not count once another folder is named.
    expect(configuredSource({ serviceAccountDir: '/tmp/other' }, environment({ inCluster: true }))).to.equal(
      undefined,
    );
  });

  it('falls back to ~/.kube/config', () => {
    expect(configuredSource({}, environment({ homeConfig: true }))).to.equal('home-kubeconfig');
  });

  it('returns undefined when nothing is configured', () => {
    expect(configuredSource({}, environment({}))).to.equal(undefined);
  });
});

const TWO_CONTEXTS = `apiVersion: v1
kind: Config
clusters:
- name: alpha
  cluster:
    server: https://alpha.example:6443
- name: beta
  cluster:
    server: https://beta.example:6443
users:
- name: alice
  user:
    token: alice-token
- name: bob
  user:
    token: bob-token
contexts:
- name: a
  context:
    cluster: alpha
    user: alice
- name: b
  context:
    cluster: beta
    user: bob
    namespace: team-b
current-context: a
`;

describe('loadKubeConfig', () => {
  let dir: string;
  let kubeconfig: string;
  /** Real files; the environment has no KUBECONFIG, no in-cluster address and an empty HOME. */
  let e: ConfigEnvironment;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'scm-kubeconfig-'));
    kubeconfig = join(dir, 'kubeconfig');
    writeFileSync(kubeconfig, TWO_CONTEXTS);
    e = { env: {}, home: join(dir, 'home'), fileExists: existsSync };
  });

  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("uses the kubeconfig's current context without --context", () => {
    const loaded = loadKubeConfig({ kubeconfig }, e);
    expect(loaded.source).to.equal('kubeconfig-flag');
    expect(loaded.kubeConfig.getCurrentCluster()?.server).to.equal('https://alpha.example:6443');
    expect(loaded.kubeConfig.getCurrentUser()?.name).to.equal('alice');
  });

  it("--context picks that context's cluster and user", () => {
    const loaded = loadKubeConfig({ kubeconfig, context: 'b' }, e);
    expect(loaded.kubeConfig.currentContext).to.equal('b');
    expect(loaded.kubeConfig.getCurrentCluster()?.server).to.equal('https://beta.example:6443');
    expect(loaded.kubeConfig.getCurrentUser()?.token).to.equal('bob-token');
    expect(loaded.kubeConfig.getContextObject('b')?.namespace).to.equal('team-b');
    expect(loaded.inCluster).to.equal(false);
  });

  it('--context applies to KUBECONFIG and ~/.kube/config too', () => {
    const viaEnv = loadKubeConfig({ context: 'b' }, { ...e, env: { KUBECONFIG: kubeconfig } });
    expect(viaEnv.source).to.equal('KUBECONFIG');
    expect(viaEnv.kubeConfig.getCurrentCluster()?.name).to.equal('beta');

    mkdirSync(join(e.home, '.kube'), { recursive: true });
    writeFileSync(join(e.home, '.kube', 'config'), TWO_CONTEXTS);
    const viaHome = loadKubeConfig({ context: 'b' }, e);
    expect(viaHome.source).to.equal('home-kubeconfig');
    expect(viaHome.kubeConfig.getCurrentCluster()?.name).to.equal('beta');
  });

  it('--context with --master overrides the server of the chosen context', () => {
    const loaded = loadKubeConfig({ kubeconfig, context: 'b', master: 'https://lb.example:443' }, e);
    expect(loaded.kubeConfig.getCurrentCluster()?.server).to.equal('https://lb.example:443');
    expect(loaded.kubeConfig.getCurrentUser()?.name).to.equal('bob');
    expect(loaded.kubeConfig.clusters.find((c) => c.name === 'alpha')?.server).to.equal(
      'https://alpha.example:6443',
    );
  });

  it('an unknown --context is a FlagError naming the flag and the known contexts', () => {
    const err = flagError(() => loadKubeConfig({ kubeconfig, context: 'nope' }, e));
    expect(err.message).to.equal(
      `invalid value "nope" for flag --context: the kubeconfig ${kubeconfig} has the contexts a, b`,
    );
    writeFileSync(kubeconfig, 'apiVersion: v1\nkind: Config\n');
    expect(flagError(() => loadKubeConfig({ kubeconfig, context: 'nope' }, e)).message).to.equal(
      `invalid value "nope" for flag --context: the kubeconfig ${kubeconfig} has no contexts`,
    );
  });

  it('main exits 2 on an unknown --context, before connecting anywhere', async () => {
    const written: string[] = [];
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = (chunk: string | Uint8Array): boolean => {
      written.push(String(chunk));
      return true;
    };
    let code: number;
    try {
      code = await main({
        argv: [`--kubeconfig=${kubeconfig}`, '--context=nope', '--log-format=json'],
        signal: new AbortController().signal,
      });
    } finally {
      process.stderr.write = write;
    }
    expect(code).to.equal(2);
    expect(written.join('')).to.include('for flag --context: the kubeconfig').and.include('a, b');
  });

  describe('in cluster', () => {
    let sa: string;
    const env = { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' };

    /** A folder shaped like the kubelet's service account mount. */
    beforeEach(() => {
      sa = join(dir, 'serviceaccount');
      mkdirSync(sa);
      writeFileSync(join(sa, 'token'), 'pod-token');
      writeFileSync(join(sa, 'ca.crt'), 'CLUSTER CA');
      writeFileSync(join(sa, 'namespace'), 'our-ns');
    });

    it('reads the token, ca.crt and namespace from --service-account-dir', async () => {
      const loaded = loadKubeConfig({ serviceAccountDir: sa }, { ...e, env });
      expect(loaded.source).to.equal('in-cluster');
      expect(loaded.inCluster).to.equal(true);
      const kc = loaded.kubeConfig;
      expect(kc.getCurrentCluster()).to.include({
        server: 'https://10.96.0.1:443',
        caFile: join(sa, 'ca.crt'),
        skipTLSVerify: false,
      });
      expect(kc.getContextObject(kc.currentContext)?.namespace).to.equal('our-ns');
      const headers: OutgoingHttpHeaders = {};
      const opts: https.RequestOptions = { headers };
      await kc.applyToHTTPSOptions(opts);
      expect(String(opts.ca)).to.equal('CLUSTER CA');
      expect(headers.Authorization).to.equal('Bearer pod-token');
    });

    it('is not chosen when the folder has no token, and then falls back to ~/.kube/config', () => {
      rmSync(join(sa, 'token'));
      expect(configuredSource({ serviceAccountDir: sa }, { ...e, env })).to.equal(undefined);
      mkdirSync(join(e.home, '.kube'), { recursive: true });
      writeFileSync(join(e.home, '.kube', 'config'), TWO_CONTEXTS);
      expect(loadKubeConfig({ serviceAccountDir: sa }, { ...e, env }).source).to.equal('home-kubeconfig');
    });

    it('brackets an IPv6 address, uses http on the insecure ports, and needs the port', () => {
      const v6 = loadKubeConfig(
        { serviceAccountDir: sa },
        { ...e, env: { KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '8080' } },
      );
      expect(v6.kubeConfig.getCurrentCluster()?.server).to.equal('http://[fd00::1]:8080');
      expect(() =>
        loadKubeConfig({ serviceAccountDir: sa }, { ...e, env: { KUBERNETES_SERVICE_HOST: '10.96.0.1' } }),
      ).to.throw('KUBERNETES_SERVICE_PORT is not');
    });

    it('--context is refused: in-cluster credentials are not a kubeconfig', () => {
      const err = flagError(() => loadKubeConfig({ serviceAccountDir: sa, context: 'b' }, { ...e, env }));
      expect(err.message).to.equal(
        'invalid value "b" for flag --context: the in-cluster configuration is not a kubeconfig; --context applies to --kubeconfig, KUBECONFIG or ~/.kube/config',
      );
    });

    it('--master overrides the in-cluster address', () => {
      const loaded = loadKubeConfig(
        { serviceAccountDir: sa, master: 'https://api.example:6443' },
        { ...e, env },
      );
      expect(loaded.kubeConfig.getCurrentCluster()?.server).to.equal('https://api.example:6443');
      expect(loaded.kubeConfig.getCurrentCluster()?.caFile).to.equal(join(sa, 'ca.crt'));
    });
  });
});
