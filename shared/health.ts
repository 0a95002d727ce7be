/**
 * The metrics and health-probe HTTP servers (controller-runtime's `--metrics-bind-address` and
 * `--health-probe-bind-address`).
 *
 * - `/metrics`: the registry in Prometheus text format.
 * - `/healthz`, `/readyz`: 200 `ok` when every check passes, else 500 with one line per check
 *   (`[+]name ok`, `[-]name failed: reason`) and `<path> check failed`, like kube-apiserver.
 *   `?verbose` lists the checks on success too; `?exclude=name` (repeatable) skips a check;
 *   `/readyz/<name>` runs one check.
 * - An address of "0" (or "") disables a server. When both addresses are the same, one server
 *   serves every path. Port 0 binds a random free port; the bound addresses are returned.
 * - With `metricsSecurity` (`--metrics-secure`) the metrics server speaks HTTPS with a certificate
 *   that may change while it runs, and every request on it must pass `authorize` first (401/403/503
 *   otherwise), as controller-runtime's secure metrics serving does. It then shares no address
 *   with the probes: the kubelet probes plain HTTP without a token.
 * - `close()` stops accepting, closes open connections and resolves when the servers are closed.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { CertSource } from './admission/certs.ts';
import type { RequestAuthorizer } from './metricsauth.ts';

/** One named check; `error` set means it failed. */
export interface NamedCheck {
  name: string;
  error?: string;
}

export type CheckResult = readonly NamedCheck[];
export type CheckFn = () => CheckResult | Promise<CheckResult>;

export interface ServersOptions {
  metricsBindAddress: string;
  healthProbeBindAddress: string;
  registry: Registry;
  checks: { healthz: CheckFn; readyz: CheckFn };
  /**
   * The /metrics body, when more than `registry` answers it (the webhook worker's registry, merged
   * in); default `registry.metrics()`.
   */
  metrics?: () => Promise<string>;
  /** Serve /metrics over HTTPS to authorized callers only (`--metrics-secure`). */
  metricsSecurity?: MetricsSecurity;
}

export interface MetricsSecurity {
  /** The serving certificate, already started; a change is served to new connections. */
  certs: CertSource;
  authorize: RequestAuthorizer;
}

export interface RunningServers {
  /** `host:port` actually bound, e.g. `127.0.0.1:40123` or `[::]:8080`; undefined when disabled. */
  metricsAddress?: string;
  healthAddress?: string;
  close(): Promise<void>;
}

export interface BindAddress {
  /** '' means every interface. */
  host: string;
  port: number;
}

export class BindAddressError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BindAddressError';
  }
}

/**
 * Parses `:8080`, `0.0.0.0:8080`, `127.0.0.1:0`, `[::]:8080`, `localhost:8080`; returns undefined
 * for "0" or "" (disabled). Anything else throws a `BindAddressError` naming the flag.
 */
export function parseBindAddress(value: string, flagName: string): BindAddress | undefined {
  const v = value.trim();
  if (v === '' || v === '0') return undefined;
  const flag = flagName.startsWith('-') ? flagName : `--${flagName}`;
  const fail = (why: string): never => {
    throw new BindAddressError(
      `invalid ${flag} ${JSON.stringify(value)}: ${why}; want host:port (":8080", "127.0.0.1:8080", ` +
        `"[::]:8080"), port 0 for a random port, or "0" to disable`,
    );
  };
  const m = /^(?:\[([0-9a-fA-F:.%\w]*)\]|([^:[\]]*)):([^:]*)$/.exec(v);
  if (!m) return fail('not host:port');
  const host = m[1] ?? m[2] ?? '';
  if (m[1] !== undefined && !m[1].includes(':')) fail('brackets are only for IPv6 addresses');
  if (m[2] !== undefined && m[2] !== '' && !/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(m[2])) {
    fail(`bad host ${JSON.stringify(m[2])}`);
  }
  const portText = m[3] ?? '';
  if (!/^\d{1,5}$/.test(portText) || Number(portText) > 65535) fail(`bad port ${JSON.stringify(portText)}`);
  return { host, port: Number(portText) };
}

type Route = (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<boolean>;

interface Listener {
  routes: Route[];
  flag: string;
  security?: MetricsSecurity;
}

export async function startServers(opts: ServersOptions): Promise<RunningServers> {
  const metricsAt = parseBindAddress(opts.metricsBindAddress, 'metrics-bind-address');
  const healthAt = parseBindAddress(opts.healthProbeBindAddress, 'health-probe-bind-address');
  const metricsRoute = metricsHandler(opts.registry, opts.metrics);
  const healthRoute = healthHandler(opts.checks);

  const started: Server[] = [];
  const closeAll = async (): Promise<void> => {
    await Promise.all(started.map(closeServer));
  };
  try {
    const result: RunningServers = { close: closeAll };
    if (metricsAt && healthAt && sameAddress(metricsAt, healthAt)) {
      if (opts.metricsSecurity) {
        throw new BindAddressError(
          '--metrics-bind-address and --health-probe-bind-address must differ with --metrics-secure: ' +
            'metrics are served over HTTPS with authentication, probes over plain HTTP',
        );
      }
      const server = await listen(metricsAt, {
        routes: [metricsRoute, healthRoute],
        flag: '--metrics-bind-address',
      });
      started.push(server);
      result.metricsAddress = result.healthAddress = boundAddress(server);
      return result;
    }
    if (metricsAt) {
      const server = await listen(metricsAt, {
        routes: [metricsRoute],
        flag: '--metrics-bind-address',
        security: opts.metricsSecurity,
      });
      started.push(server);
      result.metricsAddress = boundAddress(server);
    }
    if (healthAt) {
      const server = await listen(healthAt, { routes: [healthRoute], flag: '--health-probe-bind-address' });
      started.push(server);
      result.healthAddress = boundAddress(server);
    }
    return result;
  } catch (err) {
    await closeAll();
    throw err;
  }
}

function sameAddress(a: BindAddress, b: BindAddress): boolean {
  return a.host === b.host && a.port === b.port;
}

function listen(at: BindAddress, listener: Listener): Promise<Server> {
  const { routes, flag, security } = listener;
  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    void handle(req, res, routes, security?.authorize);
  };
  let server: Server;
  if (security) {
    const tls = (): { cert: string; key: string } => {
      const pair = security.certs.current();
      return { cert: pair.certPem, key: pair.keyPem };
    };
    const https = createHttpsServer({ ...tls(), minVersion: 'TLSv1.2' }, onRequest);
    security.certs.onChange(() => https.setSecureContext({ ...tls(), minVersion: 'TLSv1.2' }));
    server = https;
  } else {
    server = createServer(onRequest);
  }
  return new Promise<Server>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      const where = `${at.host.includes(':') ? `[${at.host}]` : at.host}:${at.port}`;
      reject(new Error(`${flag}: cannot listen on ${where}: ${err.code ?? err.message}`, { cause: err }));
    };
    server.once('error', onError);
    server.listen({ host: at.host === '' ? undefined : at.host, port: at.port }, () => {
      server.off('error', onError);
      // A server never keeps the process alive on its own: shutdown is driven by signals.
      server.unref();
      resolve(server);
    });
  });
}

function boundAddress(server: Server): string {
  const addr = server.address() as AddressInfo;
  return addr.family === 'IPv6' ? `[${addr.address}]:${addr.port}` : `${addr.address}:${addr.port}`;
}

function closeServer(server: Server): Promise<void> {
  return new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

async function handle(
  req: IncomingMessage,
  res: ServerResponse,
  routes: Route[],
  authorize?: RequestAuthorizer,
): Promise<void> {
  try {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (authorize) {
      const decision = await authorize(req, url.pathname);
      if (!decision.allowed) {
        reply(
          res,
          decision.status,
          `${decision.message}\n`,
          decision.status === 401 ? { 'WWW-Authenticate': 'Bearer' } : {},
        );
        return;
      }
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      reply(res, 405, 'method not allowed\n', { Allow: 'GET, HEAD' });
      return;
    }
    for (const route of routes) if (await route(req, res, url)) return;
    reply(res, 404, '404 page not found\n');
  } catch (err) {
    if (!res.headersSent)
      reply(res, 500, `internal error: ${err instanceof Error ? err.message : String(err)}\n`);
    else res.destroy();
  }
}

function reply(res: ServerResponse, code: number, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(code, {
    'Content-Type': 'text/plain; charset=utf-8',
    'X-Content-Type-Options': 'nosniff',
    ...headers,
  });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

function metricsHandler(registry: Registry, metrics?: () => Promise<string>): Route {
  return async (_req, res, url) => {
    if (url.pathname !== '/metrics') return false;
    const body = await (metrics ? metrics() : registry.metrics());
    reply(res, 200, body, { 'Content-Type': registry.contentType });
    return true;
  };
}

function healthHandler(checks: ServersOptions['checks']): Route {
  return async (_req, res, url) => {
    const m = /^\/(healthz|readyz)(?:\/([^/]+))?\/?$/.exec(url.pathname);
    if (!m) return false;
    const path = m[1] as 'healthz' | 'readyz';
    const only = m[2];
    const excluded = new Set(url.searchParams.getAll('exclude'));
    let results = (await checks[path]()).filter((c) => !excluded.has(c.name));
    if (only !== undefined) {
      results = results.filter((c) => c.name === only);
      if (results.length === 0) {
        reply(res, 404, `no check named ${JSON.stringify(only)}\n`);
        return true;
      }
    }
    const failed = results.some((c) => c.error !== undefined);
    if (!failed && !url.searchParams.has('verbose')) {
      reply(res, 200, 'ok');
      return true;
    }
    const lines = results.map((c) =>
      c.error === undefined ? `[+]${c.name} ok` : `[-]${c.name} failed: ${c.error}`,
    );
    for (const name of excluded) lines.push(`[+]${name} excluded: ok`);
    lines.push(failed ? `${path} check failed` : `${path} check passed`);
    reply(res, failed ? 500 : 200, lines.join('\n') + '\n');
    return true;
  };
}
