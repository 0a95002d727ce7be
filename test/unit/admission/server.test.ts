import { expect } from 'chai';
import https from 'node:https';
import { Registry } from 'prom-client';
import type { CertSource } from '../../../shared/admission/certs.ts';
import { type CertKeyPem, generateCA, issueServingCert } from '../../../shared/admission/pki.ts';
import {
  allow,
  deny,
  type AdmissionHandler,
  type AdmissionRequest,
  type AdmissionReviewResponse,
} from '../../../shared/admission/review.ts';
import { MAX_REVIEW_BYTES, WebhookServer } from '../../../shared/admission/server.ts';
import { FakeClock } from '../../../shared/clock.ts';
import { nopLogger } from '../../../shared/log.ts';

interface Reply {
  status: number;
  contentType: string | undefined;
  text: string;
}

interface RequestOptions {
  method?: string;
  path: string;
  /** Several chunks: sent without a Content-Length (chunked). */
  body?: string | Buffer | Buffer[];
  contentType?: string;
}

/** One request on a new connection (so every request sees the certificate served right now). */
function request(address: string, ca: string, opts: RequestOptions): Promise<Reply> {
  return new Promise<Reply>((resolve, reject) => {
    const [host, port] = [
      address.slice(0, address.lastIndexOf(':')),
      address.slice(address.lastIndexOf(':') + 1),
    ];
    const req = https.request(
      {
        host,
        port: Number(port),
        method: opts.method ?? 'POST',
        path: opts.path,
        ca,
        agent: false,
        headers: opts.body === undefined ? {} : { 'Content-Type': opts.contentType ?? 'application/json' },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            contentType: res.headers['content-type'],
            text: Buffer.concat(chunks).toString('utf8'),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    if (Array.isArray(opts.body)) {
      for (const chunk of opts.body) req.write(chunk);
      req.end();
    } else {
      req.end(opts.body);
    }
  });
}

function reviewBody(uid: string): string {
  return JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid,
      kind: { group: '', version: 'v1', kind: 'ConfigMap' },
      resource: { group: '', version: 'v1', resource: 'configmaps' },
      operation: 'CREATE',
      namespace: 'ns',
      name: 'cm',
      object: { metadata: { name: 'cm' } },
    },
  });
}

class StaticCerts implements CertSource {
  pair: CertKeyPem;
  private readonly listeners: (() => void)[] = [];

  constructor(pair: CertKeyPem) {
    this.pair = pair;
  }

  start(): Promise<void> {
    return Promise.resolve();
  }

  current(): CertKeyPem {
    return this.pair;
  }

  onChange(listener: () => void): void {
    this.listeners.push(listener);
  }

  replace(pair: CertKeyPem): void {
    this.pair = pair;
    for (const l of this.listeners) l();
  }
}

/** A handler that waits until released, and tells when it was called. */
function gate(): { handler: AdmissionHandler; called: Promise<AbortSignal>; release: () => void } {
  let onCalled: (signal: AbortSignal) => void = () => {};
  let release: () => void = () => {};
  const called = new Promise<AbortSignal>((resolve) => (onCalled = resolve));
  const released = new Promise<void>((resolve) => (release = resolve));
  return {
    handler: async (_req, signal) => {
      onCalled(signal);
      await released;
      return allow();
    },
    called,
    release,
  };
}

async function metric(registry: Registry, name: string, labels: Record<string, string>): Promise<number> {
  const found = (await registry.getSingleMetric(name)?.get())?.values ?? [];
  return found
    .filter((v) => Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want))
    .reduce((sum, v) => sum + v.value, 0);
}

describe('WebhookServer', () => {
  const now = Date.now();
  const validity = { notBefore: new Date(now - 60_000), notAfter: new Date(now + 3600_000) };
  let ca: CertKeyPem;
  let certs: StaticCerts;
  let servers: WebhookServer[] = [];

  before(async () => {
    ca = await generateCA({ commonName: 'server-test-ca', ...validity });
    certs = new StaticCerts(
      await issueServingCert(ca, { commonName: 'w', hosts: ['127.0.0.1'], ...validity }),
    );
  });

  afterEach(async () => {
    await Promise.all(servers.map((s) => s.close()));
    servers = [];
  });

  async function serve(
    handlers: Record<string, AdmissionHandler>,
    opts: { clock?: FakeClock; requestTimeoutMs?: number; registry?: Registry } = {},
  ): Promise<{ address: string; registry: Registry; server: WebhookServer }> {
    const registry = opts.registry ?? new Registry();
    const server = new WebhookServer({
      bindAddress: '127.0.0.1:0',
      certs,
      log: nopLogger,
      registry,
      handlers: new Map(Object.entries(handlers)),
      requestTimeoutMs: opts.requestTimeoutMs,
      clock: opts.clock,
    });
    servers.push(server);
    return { address: await server.start(), registry, server };
  }

  it('answers an AdmissionReview with the handler’s patch for the request’s uid', async () => {
    let seen: AdmissionRequest | undefined;
    const { address, registry } = await serve({
      '/mutate': (req) => {
        seen = req;
        return Promise.resolve(allow([{ op: 'add', path: '/metadata/labels', value: { a: 'b' } }]));
      },
    });
    const reply = await request(address, ca.certPem, { path: '/mutate', body: reviewBody('u-1') });
    expect(reply.status).to.equal(200);
    expect(reply.contentType).to.equal('application/json');
    expect(JSON.parse(reply.text)).to.deep.equal({
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      response: {
        uid: 'u-1',
        allowed: true,
        patchType: 'JSONPatch',
        patch: Buffer.from('[{"op":"add","path":"/metadata/labels","value":{"a":"b"}}]').toString('base64'),
      },
    });
    expect(seen?.name).to.equal('cm');
    expect(
      await metric(registry, 'controller_runtime_webhook_requests_total', {
        webhook: '/mutate',
        code: '200',
      }),
    ).to.equal(1);
    expect(
      await metric(registry, 'controller_runtime_webhook_latency_seconds', { webhook: '/mutate' }),
    ).to.be.greaterThan(0);
    expect(
      await metric(registry, 'controller_runtime_webhook_requests_in_flight', { webhook: '/mutate' }),
    ).to.equal(0);
    expect(await metric(registry, 'service_controller_manager_webhook_tls_connections_total', {})).to.equal(
      1,
    );
  });

  it('a denial is answered as an AdmissionReview and counted under its code', async () => {
    const { address, registry } = await serve({
      '/validate': () => Promise.resolve(deny(403, 'Forbidden', 'not today')),
    });
    const reply = await request(address, ca.certPem, { path: '/validate', body: reviewBody('u-2') });
    expect(reply.status).to.equal(200);
    expect((JSON.parse(reply.text) as AdmissionReviewResponse).response).to.deep.equal({
      uid: 'u-2',
      allowed: false,
      status: { code: 403, reason: 'Forbidden', message: 'not today', metadata: {} },
    });
    expect(
      await metric(registry, 'controller_runtime_webhook_requests_total', {
        webhook: '/validate',
        code: '403',
      }),
    ).to.equal(1);
  });

  it('a handler that throws is answered with a 500 denial carrying the error message', async () => {
    const { address, registry } = await serve({
      '/boom': () => Promise.reject(new Error('the cache is not synced')),
    });
    const reply = await request(address, ca.certPem, { path: '/boom', body: reviewBody('u-3') });
    expect((JSON.parse(reply.text) as AdmissionReviewResponse).response).to.deep.equal({
      uid: 'u-3',
      allowed: false,
      status: { code: 500, reason: 'InternalError', message: 'the cache is not synced', metadata: {} },
    });
    expect(
      await metric(registry, 'controller_runtime_webhook_requests_total', { webhook: '/boom', code: '500' }),
    ).to.equal(1);
  });

  it('a handler that throws synchronously is answered the same way', async () => {
    const { address } = await serve({
      '/sync': () => {
        throw new Error('not a promise');
      },
    });
    const reply = await request(address, ca.certPem, { path: '/sync', body: reviewBody('u-3b') });
    expect((JSON.parse(reply.text) as AdmissionReviewResponse).response.status).to.deep.equal({
      code: 500,
      reason: 'InternalError',
      message: 'not a promise',
      metadata: {},
    });
  });

  it('a handler that exceeds the request timeout has its signal aborted and is answered with a 500 denial', async () => {
    const clock = new FakeClock();
    const slow = gate();
    const { address, registry } = await serve({ '/slow': slow.handler }, { clock, requestTimeoutMs: 2000 });
    const replied = request(address, ca.certPem, { path: '/slow', body: reviewBody('u-4') });
    const signal = await slow.called;
    expect(
      await metric(registry, 'controller_runtime_webhook_requests_in_flight', { webhook: '/slow' }),
    ).to.equal(1);
    clock.step(1999);
    expect(signal.aborted, String(signal.reason)).to.equal(false);
    clock.step(1);
    expect(signal.aborted).to.equal(true);
    const reply = await replied;
    expect((JSON.parse(reply.text) as AdmissionReviewResponse).response).to.deep.equal({
      uid: 'u-4',
      allowed: false,
      status: {
        code: 500,
        reason: 'Timeout',
        message: 'the /slow webhook did not answer within 2000 ms',
        metadata: {},
      },
    });
    slow.release();
    expect(
      await metric(registry, 'controller_runtime_webhook_requests_in_flight', { webhook: '/slow' }),
    ).to.equal(0);
  });

  const refused: [string, RequestOptions, number, string][] = [
    ['an unknown path', { path: '/nope', body: reviewBody('u') }, 404, 'no webhook at /nope\n'],
    ['a GET', { method: 'GET', path: '/mutate' }, 405, 'method GET not allowed: want POST\n'],
    [
      'another content type',
      { path: '/mutate', body: reviewBody('u'), contentType: 'application/yaml' },
      415,
      'content type "application/yaml" not supported: want application/json\n',
    ],
    ['a body that is not JSON', { path: '/mutate', body: '{"apiVersion":' }, 400, 'the body is not JSON: '],
    [
      'JSON that is not an AdmissionReview',
      { path: '/mutate', body: '{"kind":"Status"}' },
      400,
      'not an admission.k8s.io/v1 AdmissionReview request: want apiVersion admission.k8s.io/v1 and kind ' +
        'AdmissionReview, got undefined and "Status"\n',
    ],
    [
      'a chunked body over 3 MiB',
      { path: '/mutate', body: [Buffer.alloc(MAX_REVIEW_BYTES, 0x20), Buffer.from(' ')] },
      413,
      `request body larger than ${MAX_REVIEW_BYTES} bytes\n`,
    ],
    [
      'a body over 3 MiB',
      { path: '/mutate', body: Buffer.alloc(MAX_REVIEW_BYTES + 1, 0x20) },
      413,
      `request body larger than ${MAX_REVIEW_BYTES} bytes\n`,
    ],
  ];
  for (const [what, req, status, text] of refused) {
    it(`refuses ${what} with HTTP ${status} and a message, without calling the handler`, async () => {
      let calls = 0;
      const { address, registry } = await serve({
        '/mutate': () => {
          calls++;
          return Promise.resolve(allow());
        },
      });
      const reply = await request(address, ca.certPem, req);
      expect(reply.status).to.equal(status);
      expect(reply.contentType).to.equal('text/plain; charset=utf-8');
      if (text.endsWith('\n')) expect(reply.text).to.equal(text);
      else expect(reply.text.startsWith(text), reply.text).to.equal(true);
      expect(calls).to.equal(0);
      const counted = status === 404 ? 0 : 1;
      expect(
        await metric(registry, 'controller_runtime_webhook_requests_total', { code: String(status) }),
      ).to.equal(counted);
    });
  }

  it('serves /healthz and /readyz', async () => {
    const { address } = await serve({});
    for (const path of ['/healthz', '/readyz']) {
      const reply = await request(address, ca.certPem, { method: 'GET', path });
      expect([reply.status, reply.text]).to.deep.equal([200, 'ok']);
    }
  });

  it('serves a new certificate to new connections after the source changed, without a restart', async () => {
    const source = new StaticCerts(certs.pair);
    const registry = new Registry();
    const server = new WebhookServer({
      bindAddress: '127.0.0.1:0',
      certs: source,
      log: nopLogger,
      registry,
      handlers: new Map([['/mutate', () => Promise.resolve(allow())]]),
    });
    servers.push(server);
    const address = await server.start();
    const otherCa = await generateCA({ commonName: 'other-ca', ...validity });
    source.replace(await issueServingCert(otherCa, { commonName: 'w', hosts: ['127.0.0.1'], ...validity }));
    const reply = await request(address, otherCa.certPem, { path: '/mutate', body: reviewBody('u-5') });
    expect(reply.status).to.equal(200);
    const error = await request(address, ca.certPem, { path: '/mutate', body: reviewBody('u-6') }).then(
      () => 'accepted',
      (err: NodeJS.ErrnoException) => err.code,
    );
    expect(error).to.equal('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
  });

  it('keeps serving the old certificate when the new pair does not match', async () => {
    const source = new StaticCerts(certs.pair);
    const server = new WebhookServer({
      bindAddress: '127.0.0.1:0',
      certs: source,
      log: nopLogger,
      registry: new Registry(),
      handlers: new Map([['/mutate', () => Promise.resolve(allow())]]),
    });
    servers.push(server);
    const address = await server.start();
    const otherCa = await generateCA({ commonName: 'other-ca', ...validity });
    const other = await issueServingCert(otherCa, { commonName: 'w', hosts: ['127.0.0.1'], ...validity });
    source.replace({ certPem: other.certPem, keyPem: certs.pair.keyPem });
    const reply = await request(address, ca.certPem, { path: '/mutate', body: reviewBody('u-7') });
    expect(reply.status).to.equal(200);
  });

  it('close() lets a request in flight finish, then resolves', async () => {
    const slow = gate();
    const { address, server } = await serve({ '/slow': slow.handler });
    const replied = request(address, ca.certPem, { path: '/slow', body: reviewBody('u-8') });
    const signal = await slow.called;
    let closed = false;
    const closing = server.close().then(() => (closed = true));
    await new Promise((resolve) => setImmediate(resolve));
    expect(closed).to.equal(false);
    slow.release();
    const reply = await replied;
    await closing;
    expect(reply.status).to.equal(200);
    expect((JSON.parse(reply.text) as AdmissionReviewResponse).response.allowed).to.equal(true);
    expect(signal.aborted, String(signal.reason)).to.equal(false);
    const after = await request(address, ca.certPem, { path: '/slow', body: reviewBody('u-9') }).then(
      () => 'accepted',
      (err: NodeJS.ErrnoException) => err.code,
    );
    expect(after).to.equal('ECONNREFUSED');
  });

  it('close() stops waiting after the shutdown timeout and aborts the handler', async () => {
    const clock = new FakeClock();
    const slow = gate();
    const registry = new Registry();
    const server = new WebhookServer({
      bindAddress: '127.0.0.1:0',
      certs,
      log: nopLogger,
      registry,
      handlers: new Map([['/slow', slow.handler]]),
      clock,
      shutdownTimeoutMs: 5000,
      requestTimeoutMs: 60_000,
    });
    servers.push(server);
    const address = await server.start();
    const replied = request(address, ca.certPem, { path: '/slow', body: reviewBody('u-10') });
    const signal = await slow.called;
    const closing = server.close();
    clock.step(5000);
    await closing;
    expect(signal.aborted).to.equal(true);
    expect((JSON.parse((await replied).text) as AdmissionReviewResponse).response).to.deep.equal({
      uid: 'u-10',
      allowed: false,
      status: { code: 500, reason: 'Timeout', message: 'the webhook server is shutting down', metadata: {} },
    });
    slow.release();
  });

  it('refuses a bind address it cannot parse', async () => {
    const server = new WebhookServer({
      bindAddress: 'nope',
      certs,
      log: nopLogger,
      registry: new Registry(),
      handlers: new Map(),
    });
    let message = '';
    await server.start().catch((err: Error) => (message = err.message));
    expect(message).to.match(/^invalid --webhook-bind-address "nope": not host:port/);
  });
});
