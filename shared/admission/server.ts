/**
 * The HTTPS server kube-apiserver calls admission webhooks on (controller-runtime's webhook
 * server).
 *
 * Guarantees:
 * - Every AdmissionReview POSTed to a registered path gets an AdmissionReview back (HTTP 200):
 *   the handler's result; a denial with code 500 and the error's message when the handler
 *   throws; a denial with code 500 when it has not answered within `requestTimeoutMs` (its
 *   signal aborts then, and also when the caller hangs up).
 * - Anything that is not an AdmissionReview is refused with a plain-text HTTP error naming the
 *   problem: 404 unknown path, 405 not POST, 415 not JSON, 413 over 3 MiB (kube-apiserver's
 *   request limit), 400 not JSON or not an admission.k8s.io/v1 AdmissionReview.
 * - A new certificate from the `CertSource` is served to every new TLS connection without a
 *   restart (`setSecureContext`); a bad one is logged and the old one kept.
 * - `close()` stops accepting, lets requests in flight finish for up to `shutdownTimeoutMs`
 *   (then aborts their handlers), and closes idle keep-alive connections.
 * - GET `/healthz` and `/readyz` answer 200 `ok`: the port accepts TLS and routes requests.
 *
 * Metrics (controller-runtime's names): `controller_runtime_webhook_requests_total{webhook,code}`
 * where code is 200 for an allowed request, the denial's code for a denied one and the HTTP
 * status for a refused one; `controller_runtime_webhook_latency_seconds{webhook}`;
 * `controller_runtime_webhook_requests_in_flight{webhook}`. `webhook` is the path; requests to
 * unknown paths are not counted, so a scanner cannot grow the label set.
 */
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { whenAborted } from '../abort.ts';
import { type Clock, realClock } from '../clock.ts';
import { parseBindAddress } from '../health.ts';
import type { Logger } from '../log.ts';
import type { CertSource } from './certs.ts';
import {
  type AdmissionHandler,
  type AdmissionRequest,
  type AdmissionResult,
  deny,
  InvalidReviewError,
  parseReview,
  toReviewResponse,
} from './review.ts';

export interface WebhookServerOptions {
  /** host:port; ':9443' is every interface, port 0 picks a free port. */
  bindAddress: string;
  /** Must have started: its current certificate is served from the first connection on. */
  certs: CertSource;
  log: Logger;
  registry: Registry;
  /** By path, e.g. '/mutate-v1-service'. */
  handlers: ReadonlyMap<string, AdmissionHandler>;
  /**
   * How long a handler may take; default 10 s, the API server's default `timeoutSeconds`. Set it
   * below the webhook's `timeoutSeconds` for the denial to reach the API server in time.
   */
  requestTimeoutMs?: number;
  /** How long `close()` waits for requests in flight; default 10 s. */
  shutdownTimeoutMs?: number;
  /** Times the request timeout and the shutdown wait; default the real clock. */
  clock?: Clock;
}

/** kube-apiserver refuses requests over 3 MiB, so no review of a valid object is larger. */
export const MAX_REVIEW_BYTES = 3 * 1024 * 1024;
/**
 * Longer than the idle timeout of kube-apiserver's webhook client (90 s, Go's default), so the
 * client closes an idle connection first and never sends a request on one the server is closing.
 */
const KEEP_ALIVE_TIMEOUT_MS = 120_000;
/** How long `close()` waits for the answers of the requests it aborted. */
const ABORT_GRACE_MS = 1000;
/** Time to receive a whole request (headers and body), against slow senders. */
const RECEIVE_TIMEOUT_MS = 30_000;

interface WebhookMetrics {
  requests: Counter<'webhook' | 'code'>;
  latency: Histogram<'webhook'>;
  inFlight: Gauge<'webhook'>;
  connections: Counter;
}

const metricsByRegistry = new WeakMap<Registry, WebhookMetrics>();

function webhookMetrics(registry: Registry): WebhookMetrics {
  let m = metricsByRegistry.get(registry);
  if (!m) {
    m = {
      requests: new Counter({
        name: 'controller_runtime_webhook_requests_total',
        help: 'Total number of admission requests by HTTP status code.',
        labelNames: ['webhook', 'code'],
        registers: [registry],
      }),
      latency: new Histogram({
        name: 'controller_runtime_webhook_latency_seconds',
        help: 'Histogram of the latency of processing admission requests',
        labelNames: ['webhook'],
        registers: [registry],
      }),
      inFlight: new Gauge({
        name: 'controller_runtime_webhook_requests_in_flight',
        help: 'Current number of admission requests being served.',
        labelNames: ['webhook'],
        registers: [registry],
      }),
      connections: new Counter({
        name: 'service_controller_manager_webhook_tls_connections_total',
        help: 'TLS connections the webhook server accepted (a handshake each; the API server reuses idle ones).',
        registers: [registry],
      }),
    };
    metricsByRegistry.set(registry, m);
  }
  return m;
}

/** A request refused before any handler ran: an HTTP status and a plain-text reason. */
class RefusedError extends Error {
  readonly status: number;

  constructor(status: number, message: string) {
    super(message);
    this.name = 'RefusedError';
    this.status = status;
  }
}

export class WebhookServer {
  private readonly opts: WebhookServerOptions;
  private readonly log: Logger;
  private readonly metrics: WebhookMetrics;
  private readonly requestTimeoutMs: number;
  private readonly clock: Clock;
  private server: Server | undefined;
  /** Requests being served; `close()` waits for it to reach 0. */
  private inFlight = 0;
  private readonly drainWaiters: (() => void)[] = [];
  /** Aborts every handler still running when `close()` stops waiting. */
  private readonly stopping = new AbortController();
  private closing = false;

  constructor(opts: WebhookServerOptions) {
    this.opts = opts;
    this.log = opts.log.child({ component: 'webhook-server' });
    this.metrics = webhookMetrics(opts.registry);
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 10_000;
    this.clock = opts.clock ?? realClock;
  }

  /** Listens; resolves with the bound `host:port` (`[::]:9443` for every interface). */
  async start(): Promise<string> {
    if (this.server) throw new Error('the webhook server is already started');
    const at = parseBindAddress(this.opts.bindAddress, 'webhook-bind-address');
    if (!at) {
      throw new Error(`the webhook server needs an address, got ${JSON.stringify(this.opts.bindAddress)}`);
    }
    const { certPem, keyPem } = this.opts.certs.current();
    const server = createServer(
      {
        cert: certPem,
        key: keyPem,
        minVersion: 'TLSv1.2',
        keepAlive: true,
        requestTimeout: RECEIVE_TIMEOUT_MS,
      },
      (req, res) => {
        this.handle(req, res).catch((err: unknown) => {
          // Nothing above should throw; if it did, the request gets an answer and the process lives on.
          this.log.error('webhook request failed', err, { path: req.url });
          if (!res.headersSent) replyText(res, 500, 'internal error\n');
          else res.destroy();
        });
      },
    );
    server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
    server.on('secureConnection', () => this.metrics.connections.inc());
    server.on('tlsClientError', (err) => {
      // A client that does not trust the certificate (yet) shows up here; not an error of ours.
      this.log.v(2).info('TLS handshake failed', { err: err.message });
    });
    this.opts.certs.onChange(() => this.reloadCertificate());
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: at.host === '' ? undefined : at.host, port: at.port }, () => {
        server.off('error', reject);
        resolve();
      });
    }).catch((err: unknown) => {
      const code = (err as NodeJS.ErrnoException).code;
      throw new Error(`webhook server: cannot listen on ${this.opts.bindAddress}: ${code ?? String(err)}`, {
        cause: err,
      });
    });
    // Like the metrics and probe servers, it never keeps the process alive on its own.
    server.unref();
    this.server = server;
    const addr = server.address() as AddressInfo;
    const bound = addr.family === 'IPv6' ? `[${addr.address}]:${addr.port}` : `${addr.address}:${addr.port}`;
    this.log.info('serving admission webhooks', { address: bound, paths: [...this.opts.handlers.keys()] });
    return bound;
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server || this.closing) return;
    this.closing = true;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    await this.drained(this.opts.shutdownTimeoutMs ?? 10_000);
    if (this.inFlight > 0) {
      // An aborted request is answered at once (a 500 denial): give those answers a moment to go out.
      this.stopping.abort(new Error('the webhook server is shutting down'));
      await this.drained(ABORT_GRACE_MS);
    }
    server.closeAllConnections();
    await closed;
  }

  private reloadCertificate(): void {
    if (!this.server || this.closing) return;
    try {
      const { certPem, keyPem } = this.opts.certs.current();
      this.server.setSecureContext({ cert: certPem, key: keyPem, minVersion: 'TLSv1.2' });
      this.log.info('serving a new webhook certificate');
    } catch (err) {
      this.log.error('cannot use the new webhook certificate; still serving the previous one', err);
    }
  }

  /** Resolves when no request is in flight, or after `timeoutMs`. */
  private drained(timeoutMs: number): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = this.clock.setTimer(resolve, timeoutMs);
      this.drainWaiters.push(() => {
        timer.cancel();
        resolve();
      });
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // While closing, each response ends its keep-alive connection.
    if (this.closing) res.setHeader('Connection', 'close');
    const url = new URL(req.url ?? '/', 'https://webhook');
    const handler = this.opts.handlers.get(url.pathname);
    if (!handler) {
      if ((url.pathname === '/healthz' || url.pathname === '/readyz') && req.method === 'GET') {
        replyText(res, 200, 'ok');
      } else {
        replyText(res, 404, `no webhook at ${url.pathname}\n`);
      }
      return;
    }
    const webhook = url.pathname;
    this.inFlight++;
    this.metrics.inFlight.inc({ webhook });
    const endTimer = this.metrics.latency.startTimer({ webhook });
    let code = 500;
    try {
      code = await this.review(webhook, handler, req, res);
    } catch (err) {
      // Only a failure to write the response gets here: the connection is unusable.
      this.log.error('cannot answer an admission request', err, { webhook });
      res.destroy();
    } finally {
      endTimer();
      this.metrics.inFlight.dec({ webhook });
      this.metrics.requests.inc({ webhook, code: String(code) });
      this.inFlight--;
      if (this.inFlight === 0) for (const wake of this.drainWaiters.splice(0)) wake();
    }
  }

  /** Answers one request to `webhook`; returns the code it is counted under. */
  private async review(
    webhook: string,
    handler: AdmissionHandler,
    req: IncomingMessage,
    res: ServerResponse,
  ): Promise<number> {
    let body: unknown;
    try {
      body = await readJson(req);
    } catch (err) {
      if (!(err instanceof RefusedError)) throw err;
      // The rest of a refused body is not read: the connection cannot be reused.
      if (err.status === 413) res.setHeader('Connection', 'close');
      replyText(res, err.status, `${err.message}\n`);
      return err.status;
    }
    let request: AdmissionRequest;
    try {
      request = parseReview(body).request;
    } catch (err) {
      if (!(err instanceof InvalidReviewError)) throw err;
      replyText(res, 400, `not an admission.k8s.io/v1 AdmissionReview request: ${err.message}\n`);
      return 400;
    }
    /** Set once answered: a later abort (the server closing, the connection ending) is not this request's. */
    let settled = false;
    const hungUp = new AbortController();
    res.once('close', () => {
      if (!settled) hungUp.abort(new Error('the API server closed the connection'));
    });
    const deadline = new AbortController();
    const timer = this.clock.setTimer(
      () =>
        deadline.abort(new Error(`the ${webhook} webhook did not answer within ${this.requestTimeoutMs} ms`)),
      this.requestTimeoutMs,
    );
    const signal = AbortSignal.any([deadline.signal, hungUp.signal, this.stopping.signal]);
    const fields = {
      webhook,
      uid: request.uid,
      operation: request.operation,
      resource: request.resource.resource,
      namespace: request.namespace,
      name: request.name,
    };
    let result: AdmissionResult;
    try {
      result = await Promise.race([
        // Called inside an async function, so a handler that throws synchronously is caught too.
        (async () => handler(request, signal))().catch((err: unknown): AdmissionResult => {
          if (!signal.aborted) this.log.error('admission handler failed', err, fields);
          return deny(500, 'InternalError', err instanceof Error ? err.message : String(err));
        }),
        whenAborted(signal).then((): AdmissionResult => {
          const why = signal.reason instanceof Error ? signal.reason.message : String(signal.reason);
          if (!settled) this.log.error('admission handler aborted', undefined, { ...fields, why });
          return deny(500, 'Timeout', why);
        }),
      ]);
    } finally {
      settled = true;
      timer.cancel();
    }
    this.log.v(4).info('admission request', {
      ...fields,
      allowed: result.allowed,
      code: result.allowed ? 200 : result.code,
    });
    const text = JSON.stringify(toReviewResponse(request.uid, result));
    res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
    res.end(text);
    return result.allowed ? 200 : result.code;
  }
}

/** The request's JSON body; throws `RefusedError` for the wrong method, type or size, or bad JSON. */
async function readJson(req: IncomingMessage): Promise<unknown> {
  if (req.method !== 'POST') throw new RefusedError(405, `method ${req.method} not allowed: want POST`);
  const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
  if (type !== 'application/json') {
    throw new RefusedError(415, `content type ${JSON.stringify(type)} not supported: want application/json`);
  }
  const tooLarge = (): RefusedError =>
    new RefusedError(413, `request body larger than ${MAX_REVIEW_BYTES} bytes`);
  if (Number(req.headers['content-length'] ?? 0) > MAX_REVIEW_BYTES) throw tooLarge();
  // Events, not `for await`: leaving an async iterator early destroys the socket, and the 413
  // could not be sent.
  const body = await new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size <= MAX_REVIEW_BYTES) {
        chunks.push(chunk);
        return;
      }
      req.off('data', onData);
      req.pause();
      reject(tooLarge());
    };
    req.on('data', onData);
    req.once('end', () => resolve(Buffer.concat(chunks)));
    req.once('error', reject);
    // A caller that hangs up mid-body emits neither 'end' nor always 'error'; after 'end' this is a no-op.
    req.once('close', () =>
      reject(new Error('the caller closed the connection before sending the whole body')),
    );
  });
  try {
    return JSON.parse(body.toString('utf8')) as unknown;
  } catch (err) {
    throw new RefusedError(400, `the body is not JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
}

function replyText(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, {
    'Content-Type': 'text/plain; charset=utf-8',
    'X-Content-Type-Options': 'nosniff',
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(body);
}
