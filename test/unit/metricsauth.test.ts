import type { IncomingMessage } from 'node:http';
import type { V1UserInfo } from '@kubernetes/client-node';
import { expect } from 'chai';
import { FakeClock } from '../../shared/clock.ts';
import { parseFlags } from '../../shared/config.ts';
import { nopLogger } from '../../shared/log.ts';
import { bearerToken, delegatedAuthorizer, type Reviewer } from '../../shared/metricsauth.ts';
import { flagError } from './helpers/flagerror.ts';

const log = nopLogger;

function request(headers: Record<string, string>, method = 'GET'): IncomingMessage {
  return { headers, method } as unknown as IncomingMessage;
}

/** A reviewer that knows one token per user and grants `/metrics` get to `allowed` users. */
class FakeReviewer implements Reviewer {
  authentications = 0;
  authorizations = 0;
  failing = false;
  readonly tokens: Record<string, string>;
  readonly allowed: Set<string>;
  constructor(tokens: Record<string, string>, allowed: Set<string>) {
    this.tokens = tokens;
    this.allowed = allowed;
  }
  authenticate(token: string): Promise<V1UserInfo | undefined> {
    this.authentications++;
    if (this.failing) return Promise.reject(new Error('connection refused'));
    const username = this.tokens[token];
    return Promise.resolve(username ? { username, groups: ['system:authenticated'] } : undefined);
  }
  async authorize(
    user: V1UserInfo,
    path: string,
    verb: string,
  ): Promise<{ allowed: boolean; reason: string }> {
    this.authorizations++;
    const allowed = path === '/metrics' && verb === 'get' && this.allowed.has(user.username ?? '');
    return Promise.resolve({ allowed, reason: allowed ? 'RBAC: allowed' : '' });
  }
}

describe('metrics authentication and authorization', () => {
  const reviewerFor = (): FakeReviewer =>
    new FakeReviewer(
      { 'scraper-token': 'system:serviceaccount:monitoring:prometheus', 'other-token': 'alice' },
      new Set(['system:serviceaccount:monitoring:prometheus']),
    );

  it('a request without a bearer token gets 401 and no review is asked', async () => {
    const reviewer = reviewerFor();
    const authorize = delegatedAuthorizer({ reviewer, clock: new FakeClock(), log });
    expect(await authorize(request({}), '/metrics')).to.deep.equal({
      allowed: false,
      status: 401,
      message: 'Unauthorized: a bearer token is required',
    });
    expect(await authorize(request({ authorization: 'Basic YTpi' }), '/metrics')).to.include({ status: 401 });
    expect(reviewer.authentications).to.equal(0);
  });

  it('a token the API server does not accept gets 401', async () => {
    const authorize = delegatedAuthorizer({ reviewer: reviewerFor(), clock: new FakeClock(), log });
    expect(await authorize(request({ authorization: 'Bearer forged' }), '/metrics')).to.deep.equal({
      allowed: false,
      status: 401,
      message: 'Unauthorized: the token was not accepted',
    });
  });

  it('an authenticated user without the nonResourceURL grant gets 403 naming user, verb and path', async () => {
    const authorize = delegatedAuthorizer({ reviewer: reviewerFor(), clock: new FakeClock(), log });
    expect(await authorize(request({ authorization: 'Bearer other-token' }), '/metrics')).to.deep.equal({
      allowed: false,
      status: 403,
      message: 'Forbidden: user "alice" may not get path "/metrics"',
    });
  });

  it('a granted scraper is allowed; the verb is the lower-cased method and the path is checked', async () => {
    const authorize = delegatedAuthorizer({ reviewer: reviewerFor(), clock: new FakeClock(), log });
    const scraper = { authorization: 'Bearer scraper-token' };
    expect(await authorize(request(scraper), '/metrics')).to.deep.equal({
      allowed: true,
      user: 'system:serviceaccount:monitoring:prometheus',
    });
    expect(await authorize(request(scraper, 'HEAD'), '/metrics')).to.include({ allowed: false, status: 403 });
    expect(await authorize(request(scraper), '/debug')).to.include({ allowed: false, status: 403 });
  });

  it('answers are reused for 10 s, then asked again', async () => {
    const reviewer = reviewerFor();
    const clock = new FakeClock();
    const authorize = delegatedAuthorizer({ reviewer, clock, log });
    const scraper = request({ authorization: 'Bearer scraper-token' });
    for (let i = 0; i < 5; i++) expect(await authorize(scraper, '/metrics')).to.include({ allowed: true });
    expect([reviewer.authentications, reviewer.authorizations]).to.deep.equal([1, 1]);
    clock.step(10_000);
    expect(await authorize(scraper, '/metrics')).to.include({ allowed: true });
    expect([reviewer.authentications, reviewer.authorizations]).to.deep.equal([2, 2]);
  });

  it('when the API server cannot answer the request gets 503 and nothing is cached', async () => {
    const reviewer = reviewerFor();
    reviewer.failing = true;
    const authorize = delegatedAuthorizer({ reviewer, clock: new FakeClock(), log });
    const scraper = request({ authorization: 'Bearer scraper-token' });
    expect(await authorize(scraper, '/metrics')).to.deep.equal({
      allowed: false,
      status: 503,
      message: 'cannot check the credentials with the API server; try again',
    });
    reviewer.failing = false;
    expect(await authorize(scraper, '/metrics')).to.include({ allowed: true });
  });

  it('bearerToken reads "Bearer <token>" case-insensitively and nothing else', () => {
    expect(bearerToken(request({ authorization: 'Bearer abc.def' }))).to.equal('abc.def');
    expect(bearerToken(request({ authorization: 'bearer abc' }))).to.equal('abc');
    expect(bearerToken(request({ authorization: 'Bearer' }))).to.equal(undefined);
    expect(bearerToken(request({ authorization: 'Bearer a b' }))).to.equal(undefined);
  });
});

describe('metrics serving flags', () => {
  it('defaults to HTTPS with authentication on :8443 and a self-signed certificate', () => {
    const { config } = parseFlags([]);
    expect([config.metricsBindAddress, config.metricsSecure, config.metricsCertDir]).to.deep.equal([
      ':8443',
      true,
      '',
    ]);
  });

  it('--metrics-secure=false is accepted on a loopback address only, naming the flag', () => {
    for (const address of ['127.0.0.1:8080', '[::1]:8080', 'localhost:0', '0']) {
      expect(
        parseFlags(['--metrics-secure=false', `--metrics-bind-address=${address}`]).config.metricsSecure,
      ).to.equal(false);
    }
    for (const address of [':8080', '0.0.0.0:8080', '10.0.0.1:8080', '[::]:8080']) {
      const err = flagError(() =>
        parseFlags(['--metrics-secure=false', `--metrics-bind-address=${address}`]),
      );
      expect(err.message)
        .to.include(`invalid value "${address}" for flag --metrics-bind-address`)
        .and.include('loopback');
    }
  });

  it('secure metrics cannot share the probes address; a bad address names its flag', () => {
    expect(
      flagError(() => parseFlags(['--metrics-bind-address=:9000', '--health-probe-bind-address=:9000']))
        .message,
    ).to.include('must differ with --metrics-secure');
    expect(flagError(() => parseFlags(['--metrics-bind-address=nope'])).message).to.include(
      '--metrics-bind-address',
    );
  });
});
