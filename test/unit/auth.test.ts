import { HttpMethod, KubeConfig, RequestContext } from '@kubernetes/client-node';
import { expect } from 'chai';
import { SharedConnectionAuth } from '../../shared/kube/auth.ts';

const b64 = (s: string): string => Buffer.from(s).toString('base64');

function kubeConfig(user: {
  token?: string;
  certData?: string;
  username?: string;
  password?: string;
}): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: 'https://127.0.0.1:6443', caData: b64('ca'), skipTLSVerify: false }],
    users: [{ name: 'u', keyData: user.certData ? b64('key') : undefined, ...user }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return kc;
}

async function apply(auth: SharedConnectionAuth): Promise<RequestContext> {
  const ctx = new RequestContext('https://127.0.0.1:6443/api/v1/pods', HttpMethod.GET);
  await auth.applySecurityAuthentication(ctx);
  return ctx;
}

describe('SharedConnectionAuth', () => {
  it('gives 100 requests one connection pool and each its bearer token', async () => {
    const auth = new SharedConnectionAuth(kubeConfig({ token: 't1' }));
    const contexts = await Promise.all(Array.from({ length: 100 }, () => apply(auth)));
    const pools = new Set(contexts.map((c) => c.getDispatcher()));
    expect(pools.size).to.equal(1);
    expect(auth.poolsCreated).to.equal(1);
    expect(contexts[99].getHeaders().Authorization).to.equal('Bearer t1');
    await auth.close();
  });

  it('keeps the pool when the token changes and puts the new token on the next request', async () => {
    const kc = kubeConfig({ token: 't1' });
    const auth = new SharedConnectionAuth(kc);
    const first = await apply(auth);
    kc.users[0] = { ...kc.users[0], token: 't2' };
    const second = await apply(auth);
    expect(second.getHeaders().Authorization).to.equal('Bearer t2');
    expect(second.getDispatcher()).to.equal(first.getDispatcher());
    expect(auth.poolsCreated).to.equal(1);
    await auth.close();
  });

  it('makes a new pool when the client certificate changes', async () => {
    const kc = kubeConfig({ certData: b64('cert-1') });
    const auth = new SharedConnectionAuth(kc);
    const first = await apply(auth);
    kc.users[0] = { ...kc.users[0], certData: b64('cert-2') };
    const second = await apply(auth);
    expect(second.getDispatcher()).to.not.equal(first.getDispatcher());
    expect(auth.poolsCreated).to.equal(2);
    await auth.close();
  });

  it('sends basic auth when the kubeconfig has a username and password', async () => {
    const auth = new SharedConnectionAuth(kubeConfig({ username: 'admin', password: 'secret' }));
    const ctx = await apply(auth);
    expect(ctx.getHeaders().Authorization).to.equal(`Basic ${b64('admin:secret')}`);
    await auth.close();
  });
});
