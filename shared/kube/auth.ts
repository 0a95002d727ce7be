/**
 * Authentication for every request, with one connection pool per TLS identity.
 *
 * Why not hand the KubeConfig to client-node as its auth method: its `applySecurityAuthentication`
 * builds a new undici Agent on every call, so every request opened its own TLS connection and left
 * it open until the keep-alive timeout. Under the S2 benchmark (10,000 pod writes in seconds) that
 * was ~500 open sockets, ~100 MiB of native TLS state, and a TLS handshake per request on both ends.
 * client-go keeps one transport per TLS configuration; so do we. Headers (bearer tokens, exec
 * plugins, impersonation) are still applied per request by client-node, so rotated tokens work;
 * rotated client certificates (files re-read, exec plugins) give a new pool, and the old one is
 * closed once its requests (watches included) finish.
 *
 * HTTP/1.1 only. undici 8 negotiates HTTP/2 by default, so every request and watch shared one
 * connection; when it was reset (a load balancer's cut, a network blip), the watches renewed at
 * once after the reset were sometimes dispatched onto the dead session and hung until undici's
 * PING check closed it two minutes later: in 2 of 5 runs of `make bench` C1 the manager went deaf
 * for that long (docs/PERFORMANCE.md section 7). Over HTTP/1.1 each watch has its own connection
 * and a reset fails only the requests on it, at once.
 */
import type { RequestOptions } from 'node:https';
import { isDeepStrictEqual } from 'node:util';
import {
  HttpMethod,
  type KubeConfig,
  RequestContext,
  type SecurityAuthentication,
} from '@kubernetes/client-node';
import type { Dispatcher } from 'undici';

/** What decides the TLS connection: any change needs a new pool. */
type TlsMaterial = readonly unknown[];

function tlsMaterialOf(opts: RequestOptions, kubeConfig: KubeConfig): TlsMaterial {
  const cluster = kubeConfig.getCurrentCluster();
  return [
    cluster?.server,
    cluster?.proxyUrl,
    opts.ca,
    opts.cert,
    opts.key,
    opts.pfx,
    opts.passphrase,
    opts.rejectUnauthorized,
    opts.servername,
  ];
}

/** Dispatches every request as HTTP/1.1 (undici's Agent keeps a separate HTTP/1.1-only pool). */
const http1Only =
  (dispatch: Dispatcher['dispatch']): Dispatcher['dispatch'] =>
  (opts, handler) =>
    dispatch({ ...opts, allowH2: false } as Dispatcher.DispatchOptions, handler);

export class SharedConnectionAuth implements SecurityAuthentication {
  private readonly kubeConfig: KubeConfig;
  private pool: { material: TlsMaterial; dispatcher: Dispatcher | undefined } | undefined;
  /** How many pools were made: 1 for the life of a process unless certificates rotate. */
  poolsCreated = 0;

  constructor(kubeConfig: KubeConfig) {
    this.kubeConfig = kubeConfig;
  }

  getName(): string {
    return 'kubeconfig';
  }

  async applySecurityAuthentication(ctx: RequestContext): Promise<void> {
    const opts: RequestOptions = {};
    await this.kubeConfig.applyToHTTPSOptions(opts);
    // Same order as client-node: basic auth first, then headers (a bearer token wins).
    if (opts.auth) ctx.setHeaderParam('Authorization', `Basic ${Buffer.from(opts.auth).toString('base64')}`);
    for (const [name, value] of Object.entries(opts.headers ?? {})) {
      if (value !== undefined) ctx.setHeaderParam(name, String(value));
    }
    const dispatcher = await this.dispatcherFor(tlsMaterialOf(opts, this.kubeConfig));
    if (dispatcher !== undefined) ctx.setDispatcher(dispatcher);
  }

  private async dispatcherFor(material: TlsMaterial): Promise<Dispatcher | undefined> {
    if (this.pool && isDeepStrictEqual(this.pool.material, material)) return this.pool.dispatcher;
    // client-node builds the dispatcher (agent, proxy or socks) from the same kubeconfig.
    const probe = new RequestContext(this.kubeConfig.getCurrentCluster()?.server ?? '', HttpMethod.GET);
    await this.kubeConfig.applySecurityAuthentication(probe);
    // Another request may have made the pool while we awaited.
    if (this.pool && isDeepStrictEqual(this.pool.material, material)) {
      void probe.getDispatcher()?.close();
      return this.pool.dispatcher;
    }
    const previous = this.pool?.dispatcher;
    this.pool = { material, dispatcher: probe.getDispatcher()?.compose(http1Only) };
    this.poolsCreated++;
    // Resolves when its in-flight requests end; new requests already use the new pool.
    void previous?.close().catch(() => undefined);
    return this.pool.dispatcher;
  }

  /** Closes the pool (tests, shutdown). */
  async close(): Promise<void> {
    const dispatcher = this.pool?.dispatcher;
    this.pool = undefined;
    await dispatcher?.destroy();
  }
}
