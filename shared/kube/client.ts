/**
 * One client for every controller: typed client-node APIs and raw list/watch streams, all behind
 * one client-side QPS/burst limiter (like client-go's `--kube-api-qps/--kube-api-burst`), one user
 * agent, and `rest_client_requests_total{code,method,host}` /
 * `rest_client_request_duration_seconds{verb,host}`.
 *
 * Writes are fenced: when a `WriteFence` is set (leader election), every write of a fenced API is
 * checked just before it is sent, after the client-side rate limiter let it go, and refused with
 * `FencedError` when the replica can no longer be sure it leads. The Lease API is not fenced: the
 * elector guards its own writes. Every typed call can take an AbortSignal (`withSignal`), and the
 * rate limiter's wait and the request itself end when it aborts.
 *
 * Why raw list/watch and not client-node's `Watch`: its watch aborts after 30 s without a byte,
 * which is normal for a quiet resource between bookmarks, and it cannot be configured. Our watch
 * uses the same authentication and the same connection pool (auth.ts: one pool, not one per request).
 */
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import type { ConfigurationOptions, ResponseContext } from '@kubernetes/client-node';
import {
  type KubeConfig,
  type ApiType,
  createConfiguration,
  IsomorphicFetchHttpLibrary,
  RequestContext,
  ServerConfiguration,
  wrapHttpLibrary,
  CoreV1Api,
  CoordinationV1Api,
  DiscoveryV1Api,
  HttpMethod,
} from '@kubernetes/client-node';
import { Counter, Histogram, type Registry } from 'prom-client';
import { fetch } from 'undici';
import { type Clock, realClock } from '../clock.ts';
import { BucketRateLimiter } from '../workqueue/ratelimiter.ts';
import { SharedConnectionAuth } from './auth.ts';
import { FencedError, KubeApiError, parseStatus } from './errors.ts';

/** Decides whether a write may be sent now. */
export interface WriteFence {
  /** Throws `FencedError` when no write may be sent now; called synchronously just before each one. */
  check(): void;
}

export interface KubeClientOptions {
  qps: number;
  burst: number;
  userAgent: string;
  registry?: Registry;
  clock?: Clock;
}

export interface WatchEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: unknown;
}

export type Query = Record<string, string | number | boolean | undefined>;

interface RequestMetrics {
  requests: Counter<'code' | 'method' | 'host'>;
  latency: Histogram<'verb' | 'host'>;
  writes: Counter<'verb' | 'resource'>;
  fenced: Counter<'verb' | 'resource'>;
}

const WRITE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/**
 * The resource (with subresource) a request path names: /api/v1/namespaces/n/endpoints/x ->
 * "endpoints"; /apis/discovery.k8s.io/v1/namespaces/n/endpointslices -> "endpointslices";
 * /api/v1/namespaces/n/pods/x/status -> "pods/status"; /api/v1/namespaces/n -> "namespaces".
 */
/**
 * The API path of a namespaced collection, or of one object in it: `apiBase` is "/api/v1" or
 * "/apis/<group>/<version>", `resource` the plural ("endpoints").
 */
export function namespacedPath(apiBase: string, resource: string, namespace: string, name?: string): string {
  const collection = `${apiBase}/namespaces/${encodeURIComponent(namespace)}/${resource}`;
  return name === undefined ? collection : `${collection}/${encodeURIComponent(name)}`;
}

export function resourceOfPath(path: string): string {
  const segs = path.split('?')[0].split('/').filter(Boolean);
  let i = segs[0] === 'api' ? 2 : segs[0] === 'apis' ? 3 : -1;
  if (i < 0 || i >= segs.length) return 'other';
  const namespaceSubresource =
    segs.length === i + 3 && (segs[i + 2] === 'status' || segs[i + 2] === 'finalize');
  if (segs[i] === 'namespaces' && segs.length > i + 2 && !namespaceSubresource) i += 2;
  const resource = segs[i];
  const sub = segs[i + 2];
  return sub ? `${resource}/${sub}` : resource;
}

const metricsByRegistry = new WeakMap<Registry, RequestMetrics>();

function requestMetrics(registry: Registry): RequestMetrics {
  let m = metricsByRegistry.get(registry);
  if (!m) {
    m = {
      requests: new Counter({
        name: 'rest_client_requests_total',
        help: 'Number of HTTP requests to the API server, partitioned by status code, method, and host.',
        labelNames: ['code', 'method', 'host'],
        registers: [registry],
      }),
      latency: new Histogram({
        name: 'rest_client_request_duration_seconds',
        help: 'Request latency in seconds, partitioned by verb and host.',
        labelNames: ['verb', 'host'],
        buckets: [0.005, 0.025, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60],
        registers: [registry],
      }),
      writes: new Counter({
        name: 'service_controller_manager_api_writes_total',
        help: 'Write requests (POST, PUT, PATCH, DELETE) sent to the API server, by verb and resource.',
        labelNames: ['verb', 'resource'],
        registers: [registry],
      }),
      fenced: new Counter({
        name: 'service_controller_manager_fenced_writes_total',
        help: 'Writes not sent because this replica could no longer be sure it holds the leader Lease.',
        labelNames: ['verb', 'resource'],
        registers: [registry],
      }),
    };
    metricsByRegistry.set(registry, m);
  }
  return m;
}

/** What informers need of a client: a JSON GET and a watch stream. */
export interface ListWatchClient {
  getJson(path: string, query: Query, signal?: AbortSignal): Promise<unknown>;
  watch(path: string, query: Query, onEvent: (ev: WatchEvent) => void, signal: AbortSignal): Promise<void>;
}

export type ApiConstructor<T extends ApiType> = new (config: ReturnType<typeof createConfiguration>) => T;

export class KubeClient implements ListWatchClient {
  readonly kubeConfig: KubeConfig;
  readonly server: string;
  /** Fenced. */
  readonly core: CoreV1Api;
  /** Fenced. */
  readonly discovery: DiscoveryV1Api;
  /** Not fenced: leader election's own Lease reads and writes (it checks its lease itself). */
  readonly leases: CoordinationV1Api;
  private readonly limiter: BucketRateLimiter<string> | undefined;
  private readonly clock: Clock;
  private readonly userAgent: string;
  private readonly host: string;
  private readonly metrics: RequestMetrics | undefined;
  private readonly configuration: ReturnType<typeof createConfiguration>;
  private readonly unfencedConfiguration: ReturnType<typeof createConfiguration>;
  private fence: WriteFence | undefined;
  /** Authentication and the connection pool shared by typed APIs, lists and watches. */
  readonly auth: SharedConnectionAuth;

  constructor(kubeConfig: KubeConfig, opts: KubeClientOptions) {
    const cluster = kubeConfig.getCurrentCluster();
    if (!cluster) throw new Error('the kubeconfig has no current cluster');
    this.kubeConfig = kubeConfig;
    this.server = cluster.server.replace(/\/+$/, '');
    this.host = new URL(this.server).host;
    this.clock = opts.clock ?? realClock;
    this.userAgent = opts.userAgent;
    // qps <= 0 means no client-side limit, as in client-go.
    this.limiter =
      opts.qps > 0 ? new BucketRateLimiter<string>(opts.qps, Math.max(1, opts.burst), this.clock) : undefined;
    this.metrics = opts.registry ? requestMetrics(opts.registry) : undefined;
    const inner = new IsomorphicFetchHttpLibrary();
    this.auth = new SharedConnectionAuth(kubeConfig);
    const configuration = (fenced: boolean): ReturnType<typeof createConfiguration> =>
      createConfiguration({
        baseServer: new ServerConfiguration<Record<string, string>>(this.server, {}),
        authMethods: { default: this.auth },
        httpApi: wrapHttpLibrary({
          send: async (ctx: RequestContext): Promise<ResponseContext> => {
            await this.throttle(ctx.getSignal());
            ctx.setHeaderParam('User-Agent', this.userAgent);
            const method = String(ctx.getHttpMethod());
            this.admitWrite(method, new URL(ctx.getUrl()).pathname, fenced);
            const started = this.clock.now();
            try {
              const resp = await inner.send(ctx).toPromise();
              this.record(method, resp.httpStatusCode, started);
              return resp;
            } catch (err) {
              this.record(method, '<error>', started);
              throw err;
            }
          },
        }),
      });
    this.configuration = configuration(true);
    this.unfencedConfiguration = configuration(false);
    this.core = this.api(CoreV1Api);
    this.discovery = this.api(DiscoveryV1Api);
    this.leases = this.api(CoordinationV1Api, { fenced: false });
  }

  /**
   * A typed client-node API that goes through this client's limiter, user agent and metrics, and,
   * unless `fenced: false`, its write fence.
   */
  api<T extends ApiType>(ctor: ApiConstructor<T>, opts: { fenced?: boolean } = {}): T {
    return new ctor(opts.fenced === false ? this.unfencedConfiguration : this.configuration);
  }

  /** From now on, every write of a fenced API asks `fence` first (undefined: no fence). */
  setWriteFence(fence: WriteFence | undefined): void {
    this.fence = fence;
  }

  /**
   * Options for one typed call (`client.core.createX(params, client.withSignal(signal))`): the
   * call, its wait for the rate limiter included, ends with an AbortError when `signal` aborts.
   * The signal rides on the per-call auth method, the one per-call hook of client-node's
   * generated APIs that is typed for the promise API (its per-call middleware is typed for the
   * observable one); the auth itself is the client's.
   */
  withSignal(signal: AbortSignal | undefined): ConfigurationOptions | undefined {
    if (!signal) return undefined;
    const auth = this.auth;
    return {
      authMethods: {
        default: {
          getName: () => auth.getName(),
          applySecurityAuthentication: async (ctx: RequestContext): Promise<void> => {
            ctx.setSignal(signal);
            await auth.applySecurityAuthentication(ctx);
          },
        },
      },
    };
  }

  /** For a write: asks the fence (when `fenced`; throws FencedError) and counts it. */
  private admitWrite(method: string, pathname: string, fenced: boolean): void {
    if (!WRITE_METHODS.has(method)) return;
    const labels = { verb: method, resource: resourceOfPath(pathname) };
    if (fenced) this.checkFence(labels);
    this.metrics?.writes.inc(labels);
  }

  private checkFence(labels: { verb: string; resource: string }): void {
    try {
      this.fence?.check();
    } catch (err) {
      if (err instanceof FencedError) this.metrics?.fenced.inc(labels);
      throw err;
    }
  }

  /** GET a path and parse its JSON body; non-2xx throws `KubeApiError` with the server's Status. */
  async getJson(path: string, query: Query, signal?: AbortSignal): Promise<unknown> {
    const resp = await this.rawRequest(HttpMethod.GET, path, query, signal);
    const text = await resp.text();
    return JSON.parse(text) as unknown;
  }

  /**
   * POST or PUT `body` as JSON to a path and parse the object the server answers; non-2xx throws
   * `KubeApiError` with the server's Status. Fenced, limited and counted like the typed APIs'
   * writes. For the large objects the endpoint controllers write on every sync: the typed APIs
   * walk client-node's model of the body to serialise it and of the answer to parse it, which for
   * an Endpoints of 1,000 addresses was 8 % of a busy process's CPU (docs/PERFORMANCE.md
   * section 13). Our bodies are plain JSON already (a Date becomes its ISO text, as the models'
   * serialiser writes it); the answer is returned as parsed JSON, so its dates stay strings.
   */
  async writeJson<T>(method: 'POST' | 'PUT', path: string, body: unknown, signal?: AbortSignal): Promise<T> {
    const resp = await this.rawRequest(
      method === 'POST' ? HttpMethod.POST : HttpMethod.PUT,
      path,
      {},
      signal,
      body,
    );
    return JSON.parse(await resp.text()) as T;
  }

  /**
   * Streams a watch: calls `onEvent` for every event line until the server closes the stream
   * (resolves) or the connection fails / `signal` aborts (rejects). Non-2xx throws `KubeApiError`.
   */
  async watch(
    path: string,
    query: Query,
    onEvent: (ev: WatchEvent) => void,
    signal: AbortSignal,
  ): Promise<void> {
    const resp = await this.rawRequest(HttpMethod.GET, path, { ...query, watch: true }, signal);
    if (!resp.body) return;
    const body = Readable.fromWeb(resp.body);
    const lines = createInterface({ input: body, crlfDelay: Infinity });
    try {
      for await (const line of lines) {
        if (line.length === 0) continue;
        onEvent(JSON.parse(line) as WatchEvent);
      }
    } finally {
      lines.close();
      body.destroy();
    }
  }

  private async rawRequest(
    method: HttpMethod,
    path: string,
    query: Query,
    signal?: AbortSignal,
    body?: unknown,
  ) {
    const url = new URL(this.server + path);
    for (const [k, v] of Object.entries(query)) if (v !== undefined) url.searchParams.set(k, String(v));
    const ctx = new RequestContext(url.toString(), method);
    await this.auth.applySecurityAuthentication(ctx);
    ctx.setHeaderParam('User-Agent', this.userAgent);
    ctx.setHeaderParam('Accept', 'application/json');
    if (body !== undefined) ctx.setHeaderParam('Content-Type', 'application/json');
    await this.throttle(signal);
    this.admitWrite(String(method), url.pathname, true);
    const started = this.clock.now();
    let resp;
    try {
      resp = await fetch(url, {
        method,
        headers: ctx.getHeaders(),
        dispatcher: ctx.getDispatcher(),
        signal,
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
    } catch (err) {
      this.record(method, '<error>', started);
      throw err;
    }
    this.record(method, resp.status, started);
    if (resp.status < 200 || resp.status > 299) {
      const text = await resp.text().catch(() => '');
      const status = parseStatus(text);
      throw new KubeApiError(
        resp.status,
        status?.message ?? `${method} ${path}: HTTP ${resp.status}`,
        status,
      );
    }
    return resp;
  }

  private async throttle(signal?: AbortSignal): Promise<void> {
    if (!this.limiter) return;
    const delay = this.limiter.when('');
    if (delay > 0) await this.clock.sleep(delay, signal);
  }

  private record(method: string, code: number | string, startedMs: number): void {
    if (!this.metrics) return;
    this.metrics.requests.inc({ code: String(code), method, host: this.host });
    this.metrics.latency.observe({ verb: method, host: this.host }, (this.clock.now() - startedMs) / 1000);
  }
}
