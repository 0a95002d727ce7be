/**
 * Who may read /metrics, decided by the API server, as controller-runtime's
 * `filters.WithAuthenticationAndAuthorization` and kube-controller-manager's secure port do:
 * - the request's bearer token is checked with a TokenReview (no token: 401);
 * - the user it names is checked with a SubjectAccessReview for the non-resource URL (the path)
 *   and the lower-cased HTTP method as verb, so RBAC's
 *   `nonResourceURLs: [/metrics], verbs: [get]` grants a scraper access (denied: 403).
 * Both answers are cached for a short while (10 s, kube-apiserver's delegated-auth default), so a
 * scraper every 15 s costs at most two API calls per scrape and a burst of scrapes none. When the
 * API server cannot answer, the scrape gets 503 and the error is logged; no decision is cached.
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { AuthenticationV1Api, AuthorizationV1Api, type V1UserInfo } from '@kubernetes/client-node';
import type { CertSource } from './admission/certs.ts';
import { type CertKeyPem, generateCA, issueServingCert } from './admission/pki.ts';
import type { Clock } from './clock.ts';
import type { KubeClient } from './kube/client.ts';
import type { Logger } from './log.ts';

export type AccessDecision =
  { allowed: true; user: string } | { allowed: false; status: 401 | 403 | 503; message: string };

/** Decides whether `req` (for `path`) may be served. */
export type RequestAuthorizer = (req: IncomingMessage, path: string) => Promise<AccessDecision>;

/** What the two reviews need from the API server; `KubeReviewer` asks it, tests may fake it. */
export interface Reviewer {
  /** The user the token names, or undefined when the API server does not accept it. */
  authenticate(token: string): Promise<V1UserInfo | undefined>;
  /** Whether `user` may `verb` the non-resource URL `path`, and the authorizer's reason. */
  authorize(user: V1UserInfo, path: string, verb: string): Promise<{ allowed: boolean; reason: string }>;
}

export class KubeReviewer implements Reviewer {
  private readonly authn: AuthenticationV1Api;
  private readonly authz: AuthorizationV1Api;

  constructor(client: KubeClient) {
    // Not fenced: a standby replica answers scrapes too.
    this.authn = client.api(AuthenticationV1Api, { fenced: false });
    this.authz = client.api(AuthorizationV1Api, { fenced: false });
  }

  async authenticate(token: string): Promise<V1UserInfo | undefined> {
    const review = await this.authn.createTokenReview({ body: { spec: { token } } });
    return review.status?.authenticated ? (review.status.user ?? {}) : undefined;
  }

  async authorize(
    user: V1UserInfo,
    path: string,
    verb: string,
  ): Promise<{ allowed: boolean; reason: string }> {
    const review = await this.authz.createSubjectAccessReview({
      body: {
        spec: {
          user: user.username,
          uid: user.uid,
          groups: user.groups,
          extra: user.extra,
          nonResourceAttributes: { path, verb },
        },
      },
    });
    return { allowed: review.status?.allowed === true, reason: review.status?.reason ?? '' };
  }
}

/** A map whose entries expire, bounded in size (the oldest entry goes first). */
class ExpiringCache<V> {
  private readonly entries = new Map<string, { value: V; expiresAt: number }>();
  private readonly ttlMs: number;
  private readonly maxEntries: number;
  private readonly clock: Clock;

  constructor(ttlMs: number, maxEntries: number, clock: Clock) {
    this.ttlMs = ttlMs;
    this.maxEntries = maxEntries;
    this.clock = clock;
  }

  get(key: string): V | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= this.clock.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return entry.value;
  }

  set(key: string, value: V): void {
    this.entries.delete(key);
    if (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.entries.delete(oldest.value);
    }
    this.entries.set(key, { value, expiresAt: this.clock.now() + this.ttlMs });
  }
}

export interface DelegatedAuthOptions {
  reviewer: Reviewer;
  clock: Clock;
  log: Logger;
  /** How long a review's answer is reused; default 10 s. */
  cacheTtlMs?: number;
}

const CACHE_ENTRIES = 1024;

/** The bearer token of `Authorization: Bearer <token>`, or undefined. */
export function bearerToken(req: IncomingMessage): string | undefined {
  const header = req.headers.authorization;
  const m = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
  return m?.[1];
}

/** A `RequestAuthorizer` that asks the API server (TokenReview, then SubjectAccessReview). */
export function delegatedAuthorizer(opts: DelegatedAuthOptions): RequestAuthorizer {
  const ttl = opts.cacheTtlMs ?? 10_000;
  const users = new ExpiringCache<V1UserInfo | null>(ttl, CACHE_ENTRIES, opts.clock);
  const grants = new ExpiringCache<{ allowed: boolean; reason: string }>(ttl, CACHE_ENTRIES, opts.clock);
  const log = opts.log.child({ server: 'metrics' });
  return async (req, path) => {
    const token = bearerToken(req);
    if (!token) return { allowed: false, status: 401, message: 'Unauthorized: a bearer token is required' };
    // The cache key is the token's hash, so no token sits in memory longer than the request.
    const tokenKey = createHash('sha256').update(token).digest('base64');
    const verb = (req.method ?? 'GET').toLowerCase();
    try {
      let user = users.get(tokenKey);
      if (user === undefined) {
        user = (await opts.reviewer.authenticate(token)) ?? null;
        users.set(tokenKey, user);
      }
      if (user === null)
        return { allowed: false, status: 401, message: 'Unauthorized: the token was not accepted' };
      const name = user.username ?? '';
      const grantKey = JSON.stringify([name, user.uid ?? '', user.groups ?? [], path, verb]);
      let grant = grants.get(grantKey);
      if (!grant) {
        grant = await opts.reviewer.authorize(user, path, verb);
        grants.set(grantKey, grant);
      }
      if (!grant.allowed) {
        return {
          allowed: false,
          status: 403,
          message: `Forbidden: user "${name}" may not ${verb} path "${path}"${grant.reason ? `: ${grant.reason}` : ''}`,
        };
      }
      return { allowed: true, user: name };
    } catch (err) {
      log.error('cannot review a metrics request with the API server', err, { path });
      return {
        allowed: false,
        status: 503,
        message: 'cannot check the credentials with the API server; try again',
      };
    }
  };
}

/**
 * A serving certificate made at start, signed by a throwaway CA (controller-runtime does the same
 * when no certificate folder is given): the connection is encrypted, and a scraper that wants to
 * verify the server uses `--metrics-cert-dir` with a certificate its CA signed.
 */
export function selfSignedCertSource(hosts: readonly string[], clock: Clock): CertSource {
  let pair: CertKeyPem | undefined;
  return {
    start: async (signal) => {
      signal.throwIfAborted();
      const now = clock.wallTime();
      const validity = { notBefore: new Date(now - 60 * 60 * 1000), notAfter: new Date(now + 10 * YEAR_MS) };
      const ca = await generateCA({ commonName: 'service-controller-manager-metrics-ca', ...validity });
      pair = await issueServingCert(ca, {
        commonName: hosts[0] ?? 'localhost',
        hosts: [...hosts],
        ...validity,
      });
    },
    current: () => {
      if (!pair) throw new Error('no metrics certificate yet: start the certificate source first');
      return pair;
    },
    // Never changes.
    onChange: () => {},
  };
}

const YEAR_MS = 365 * 24 * 60 * 60 * 1000;
