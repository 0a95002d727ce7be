/**
 * Where the webhook's serving certificate comes from.
 *
 * Contract of a `CertSource`: `start(signal)` resolves once a first certificate is available (or
 * rejects: a folder without a usable pair, or `signal` aborted first) and keeps the source running
 * (polling, renewal) until `signal` aborts; `current()` is then always a matching certificate and
 * key; `onChange` listeners run after `current()` changed. A source never swaps its last good pair
 * for a bad one.
 *
 * - `DirCertSource` (`--webhook-cert-dir`): `tls.crt` and `tls.key` written by cert-manager or any
 *   other issuer, typically a Secret volume.
 * - `SelfManagedCertSource`: a CA and a serving certificate this program issues, kept in a Secret
 *   so that every replica serves the same one, and the CA injected into the webhook configuration.
 *   What to do with the Secret's contents is decided by the pure `planCerts`.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import {
  AdmissionregistrationV1Api,
  CoreV1Api,
  type V1MutatingWebhookConfiguration,
  type V1Secret,
} from '@kubernetes/client-node';
import type { Clock } from '../clock.ts';
import type { KubeClient } from '../kube/client.ts';
import { isAlreadyExists, isConflict, isNotFound } from '../kube/errors.ts';
import { kref, type Logger } from '../log.ts';
import {
  type CertInfo,
  type CertKeyPem,
  canonicalHost,
  certMatchesKey,
  generateCA,
  isSignedBy,
  issueServingCert,
  readCert,
} from './pki.ts';
import { jsonPointer, type JsonPatchOperation } from './review.ts';

export interface CertSource {
  /** Resolves when a first certificate is available; keeps running until `signal` aborts. */
  start(signal: AbortSignal): Promise<void>;
  /** The certificate to serve; throws before `start` resolved. */
  current(): CertKeyPem;
  /** `listener` runs (synchronously; an error is logged and ignored) after `current()` changed. */
  onChange(listener: () => void): void;
}

/** The listeners and the current pair every source keeps. */
class CertHolder {
  private pair: CertKeyPem | undefined;
  private readonly listeners: (() => void)[] = [];
  private readonly log: Logger;

  constructor(log: Logger) {
    this.log = log;
  }

  current(): CertKeyPem {
    if (!this.pair) throw new Error('no webhook certificate yet: start the certificate source first');
    return this.pair;
  }

  has(): boolean {
    return this.pair !== undefined;
  }

  onChange(listener: () => void): void {
    this.listeners.push(listener);
  }

  /** Sets the pair; listeners run when it replaced a different one. */
  set(pair: CertKeyPem): void {
    const previous = this.pair;
    this.pair = pair;
    if (!previous || (previous.certPem === pair.certPem && previous.keyPem === pair.keyPem)) return;
    for (const listener of this.listeners) {
      try {
        listener();
      } catch (err) {
        this.log.error('a webhook certificate change listener failed', err);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// A folder

export const CERT_FILE = 'tls.crt';
export const KEY_FILE = 'tls.key';

export interface DirCertSourceOptions {
  /** Holds `tls.crt` (the certificate, optionally followed by intermediates) and `tls.key`. */
  dir: string;
  clock: Clock;
  log: Logger;
  /** How often the files are re-read; default 10 s (the kubelet updates Secret volumes in ~1 min). */
  pollIntervalMs?: number;
}

export class DirCertSource implements CertSource {
  private readonly dir: string;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly pollIntervalMs: number;
  private readonly holder: CertHolder;
  /** The last reload error logged, so a problem that stays is logged once, not every poll. */
  private lastError: string | undefined;

  constructor(opts: DirCertSourceOptions) {
    this.dir = opts.dir;
    this.clock = opts.clock;
    this.log = opts.log.child({ certDir: opts.dir });
    this.pollIntervalMs = opts.pollIntervalMs ?? 10_000;
    this.holder = new CertHolder(this.log);
  }

  async start(signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    let pair: CertKeyPem;
    try {
      pair = await this.read();
    } catch (err) {
      throw new Error(
        `webhook certificate folder ${this.dir}: cannot use ${CERT_FILE} and ${KEY_FILE}: ` +
          (err instanceof Error ? err.message : String(err)),
        { cause: err },
      );
    }
    this.holder.set(pair);
    void this.poll(signal);
  }

  current(): CertKeyPem {
    return this.holder.current();
  }

  onChange(listener: () => void): void {
    this.holder.onChange(listener);
  }

  /**
   * Content is compared, not watched: a Secret volume changes by swapping its `..data` symlink,
   * which fs.watch on the files does not report reliably.
   */
  private async poll(signal: AbortSignal): Promise<void> {
    for (;;) {
      try {
        await this.clock.sleep(this.pollIntervalMs, signal);
      } catch {
        return; // aborted
      }
      let pair: CertKeyPem;
      try {
        pair = await this.read();
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        if (message !== this.lastError) {
          this.log.error('cannot reload the webhook certificate; still serving the previous one', err);
        }
        this.lastError = message;
        continue;
      }
      this.lastError = undefined;
      const current = this.holder.current();
      if (pair.certPem === current.certPem && pair.keyPem === current.keyPem) continue;
      this.holder.set(pair);
      this.log.info('reloaded the webhook certificate', {
        notAfter: readCert(pair.certPem).notAfter.toISOString(),
      });
    }
  }

  /** The pair in the folder; throws when a file is unreadable or the key is not the certificate's. */
  private async read(): Promise<CertKeyPem> {
    const [certPem, keyPem] = await Promise.all([
      fs.readFile(path.join(this.dir, CERT_FILE), 'utf8'),
      fs.readFile(path.join(this.dir, KEY_FILE), 'utf8'),
    ]);
    if (!certMatchesKey(certPem, keyPem)) {
      throw new Error(`${KEY_FILE} is not the private key of the certificate in ${CERT_FILE}`);
    }
    return { certPem, keyPem };
  }
}

// ---------------------------------------------------------------------------------------------
// What the Secret holds and what to do about it (pure)

/** The Secret's keys. `tls.crt`/`tls.key` make it a valid `kubernetes.io/tls` Secret. */
export const SECRET_KEYS = {
  cert: 'tls.crt',
  key: 'tls.key',
  caCert: 'ca.crt',
  caKey: 'ca.key',
  previousCaCert: 'ca-previous.crt',
} as const;

/** The Secret's contents as PEM text; any of it may be missing. */
export interface StoredCerts {
  certPem?: string;
  keyPem?: string;
  caCertPem?: string;
  caKeyPem?: string;
  previousCaCertPem?: string;
}

/** A complete set, as written to the Secret. */
export interface WebhookCerts {
  ca: CertKeyPem;
  serving: CertKeyPem;
  /** A former CA still trusted next to `ca` while certificates it signed may be in use. */
  previousCaCertPem: string | undefined;
}

export interface CertPlan {
  /** The stored CA to keep, or 'new'. */
  ca: CertKeyPem | 'new';
  /** The stored serving certificate to keep, or 'new'; always 'new' when the CA is. */
  serving: CertKeyPem | 'new';
  /** What `ca-previous.crt` will hold; undefined: nothing. */
  previousCaCertPem: string | undefined;
  /** True when the Secret must be written (something above differs from what is stored). */
  write: boolean;
  /** Why, for the log; empty when nothing changes. */
  reasons: string[];
}

/** True when less than a third of the certificate's validity is left (cert-manager's default). */
function renewalDue(cert: { notBefore: Date; notAfter: Date }, nowMs: number): boolean {
  const total = cert.notAfter.getTime() - cert.notBefore.getTime();
  return cert.notAfter.getTime() - nowMs < total / 3;
}

/** Why `caCertPem`/`caKeyPem` cannot sign, or undefined when they can. */
function caProblem(stored: StoredCerts, nowMs: number): string | undefined {
  if (stored.caCertPem === undefined || stored.caKeyPem === undefined) return 'there is no CA';
  let info: CertInfo;
  try {
    info = readCert(stored.caCertPem);
  } catch (err) {
    return `the CA certificate does not parse (${err instanceof Error ? err.message : String(err)})`;
  }
  if (!info.isCA) return 'the CA certificate is not a CA';
  if (!certMatchesKey(stored.caCertPem, stored.caKeyPem)) return 'the CA key does not match its certificate';
  if (renewalDue(info, nowMs)) return `the CA expires at ${info.notAfter.toISOString()}`;
  return undefined;
}

/** Why the serving pair cannot be kept with CA `ca`, or undefined when it can. */
function servingProblem(
  stored: StoredCerts,
  ca: CertKeyPem,
  hosts: readonly string[],
  nowMs: number,
): string | undefined {
  if (stored.certPem === undefined || stored.keyPem === undefined) return 'there is no serving certificate';
  let info: CertInfo;
  try {
    info = readCert(stored.certPem);
  } catch (err) {
    return `the serving certificate does not parse (${err instanceof Error ? err.message : String(err)})`;
  }
  if (!certMatchesKey(stored.certPem, stored.keyPem)) return 'the serving key does not match its certificate';
  if (!isSignedBy(stored.certPem, ca.certPem)) return 'the serving certificate is not signed by the CA';
  if (renewalDue(info, nowMs)) return `the serving certificate expires at ${info.notAfter.toISOString()}`;
  const covered = new Set(info.hosts);
  const missing = hosts.map(canonicalHost).filter((h) => !covered.has(h));
  if (missing.length > 0) return `the serving certificate does not cover ${missing.join(', ')}`;
  return undefined;
}

/** True when `pem` is a CA certificate that has not expired at `nowMs`. */
function stillTrusted(pem: string | undefined, nowMs: number): pem is string {
  if (pem === undefined) return false;
  try {
    const info = readCert(pem);
    return info.isCA && info.notAfter.getTime() > nowMs;
  } catch {
    return false;
  }
}

/**
 * What to do with the Secret's contents (`undefined`: no Secret) so that it holds a CA and a
 * serving certificate for `hosts` that are good at `nowMs`:
 * - a CA that is missing, unparsable, not matching its key or within a third of its validity is
 *   replaced; the replaced CA's certificate, when it is still unexpired, is kept as
 *   `ca-previous.crt` so certificates it signed (other replicas may serve one until their next
 *   check) stay trusted during the swap;
 * - a serving certificate is reissued with a new CA, or when it is missing, unparsable, not
 *   matching its key, not signed by the CA, within a third of its validity, or missing a host;
 * - a kept CA keeps `ca-previous.crt` until that expires.
 */
export function planCerts(
  stored: StoredCerts | undefined,
  hosts: readonly string[],
  nowMs: number,
): CertPlan {
  const have = stored ?? {};
  const reasons: string[] = [];
  if (!stored) reasons.push('there is no Secret');
  const badCa = caProblem(have, nowMs);
  let ca: CertKeyPem | 'new' = 'new';
  let previousCaCertPem: string | undefined;
  if (badCa === undefined && have.caCertPem !== undefined && have.caKeyPem !== undefined) {
    ca = { certPem: have.caCertPem, keyPem: have.caKeyPem };
    if (stillTrusted(have.previousCaCertPem, nowMs)) previousCaCertPem = have.previousCaCertPem;
    else if (have.previousCaCertPem !== undefined) reasons.push('the previous CA expired');
  } else {
    if (stored) reasons.push(badCa ?? 'there is no CA');
    if (stillTrusted(have.caCertPem, nowMs)) previousCaCertPem = have.caCertPem;
  }
  let serving: CertKeyPem | 'new' = 'new';
  if (ca !== 'new') {
    const badServing = servingProblem(have, ca, hosts, nowMs);
    if (badServing === undefined && have.certPem !== undefined && have.keyPem !== undefined) {
      serving = { certPem: have.certPem, keyPem: have.keyPem };
    } else {
      reasons.push(badServing ?? 'there is no serving certificate');
    }
  }
  const write = ca === 'new' || serving === 'new' || previousCaCertPem !== have.previousCaCertPem;
  return { ca, serving, previousCaCertPem, write, reasons };
}

export interface IssueOptions {
  hosts: readonly string[];
  nowMs: number;
  caValidityMs: number;
  certValidityMs: number;
}

/**
 * Carries out `plan`. New certificates start an hour back, so replicas and an API server whose
 * clocks are a little behind accept them; a serving certificate never outlives its CA.
 */
export async function issueCerts(plan: CertPlan, opts: IssueOptions): Promise<WebhookCerts> {
  const notBefore = new Date(opts.nowMs - 60 * 60 * 1000);
  const ca =
    plan.ca !== 'new'
      ? plan.ca
      : await generateCA({
          // A distinct name per CA, like kube's self-signed `host@timestamp`, tells the two apart in a bundle.
          commonName: `service-controller-manager-webhook-ca@${Math.floor(opts.nowMs / 1000)}`,
          notBefore,
          notAfter: new Date(opts.nowMs + opts.caValidityMs),
        });
  const caNotAfter = readCert(ca.certPem).notAfter.getTime();
  const serving =
    plan.serving !== 'new'
      ? plan.serving
      : await issueServingCert(ca, {
          commonName: opts.hosts[0] ?? 'service-controller-manager-webhook',
          hosts: opts.hosts,
          notBefore,
          notAfter: new Date(Math.min(opts.nowMs + opts.certValidityMs, caNotAfter)),
        });
  return { ca, serving, previousCaCertPem: plan.previousCaCertPem };
}

/** The PEM bundle the API server should trust: the CA, then the previous one if any. */
export function caBundle(certs: WebhookCerts): string {
  return certs.ca.certPem + (certs.previousCaCertPem ?? '');
}

const fromBase64 = (value: string | undefined): string | undefined =>
  value === undefined ? undefined : Buffer.from(value, 'base64').toString('utf8');
const toBase64 = (value: string): string => Buffer.from(value, 'utf8').toString('base64');

/** The Secret's `data` (base64 values, as the API returns them) as PEM text. */
export function decodeSecretCerts(data: Record<string, string> | undefined): StoredCerts {
  const d = data ?? {};
  return {
    certPem: fromBase64(d[SECRET_KEYS.cert]),
    keyPem: fromBase64(d[SECRET_KEYS.key]),
    caCertPem: fromBase64(d[SECRET_KEYS.caCert]),
    caKeyPem: fromBase64(d[SECRET_KEYS.caKey]),
    previousCaCertPem: fromBase64(d[SECRET_KEYS.previousCaCert]),
  };
}

export function encodeSecretCerts(certs: WebhookCerts): Record<string, string> {
  const data: Record<string, string> = {
    [SECRET_KEYS.cert]: toBase64(certs.serving.certPem),
    [SECRET_KEYS.key]: toBase64(certs.serving.keyPem),
    [SECRET_KEYS.caCert]: toBase64(certs.ca.certPem),
    [SECRET_KEYS.caKey]: toBase64(certs.ca.keyPem),
  };
  if (certs.previousCaCertPem !== undefined)
    data[SECRET_KEYS.previousCaCert] = toBase64(certs.previousCaCertPem);
  return data;
}

// ---------------------------------------------------------------------------------------------
// Self-managed: a Secret shared by the replicas

export interface SelfManagedCertSourceOptions {
  client: KubeClient;
  namespace: string;
  secretName: string;
  /** The MutatingWebhookConfiguration whose every webhook gets the CA bundle. */
  webhookConfigurationName: string;
  /** DNS names and IPs the serving certificate must cover, e.g. `<service>.<namespace>.svc`. */
  hosts: string[];
  /** Wall time dates the certificates; its timers schedule the checks. */
  clock: Clock;
  log: Logger;
  /** Default 10 years. */
  caValidityMs?: number;
  /** Default 1 year. */
  certValidityMs?: number;
  /** How often the Secret and the webhook configuration are checked; default 1 h. */
  checkIntervalMs?: number;
}

const YEAR_MS = 365 * 24 * 60 * 60 * 1000;
/** The one early re-check when the webhook configuration did not exist at start (it is often applied just after). */
const MISSING_CONFIG_RECHECK_MS = 10_000;
const FIRST_BACKOFF_MS = 1000;
const MAX_BACKOFF_MS = 60_000;
/** Write attempts per check when other replicas keep winning the compare-and-swap. */
const MAX_CONFLICTS = 5;

type InjectOutcome = 'injected' | 'unchanged' | 'missing';

/**
 * Keeps a CA and a serving certificate in a `kubernetes.io/tls` Secret and the CA bundle in the
 * webhook configuration, on every replica at once (the webhook needs no leader):
 * - Every write is a compare-and-swap (create, or replace with the resourceVersion read); the
 *   loser of a race re-reads and re-decides, so replicas converge on one certificate.
 * - A check re-reads the Secret, so a rotation by another replica is served here by the next
 *   check. The CA bundle is injected before `onChange` fires, so the API server trusts a new CA
 *   before this replica serves a certificate it signed.
 * - API errors never end the source: they are logged and retried with backoff (1 s doubling to
 *   1 min, at most the check interval), and the last good certificate keeps being served.
 * Writes use the unfenced API: every replica serves the webhook, leader or not.
 */
export class SelfManagedCertSource implements CertSource {
  private readonly opts: SelfManagedCertSourceOptions;
  private readonly core: CoreV1Api;
  private readonly admission: AdmissionregistrationV1Api;
  private readonly log: Logger;
  private readonly holder: CertHolder;
  private readonly checkIntervalMs: number;
  /** The certificates last read or written; undefined until the first check succeeded. */
  private certs: WebhookCerts | undefined;

  constructor(opts: SelfManagedCertSourceOptions) {
    this.opts = opts;
    this.core = opts.client.api(CoreV1Api, { fenced: false });
    this.admission = opts.client.api(AdmissionregistrationV1Api, { fenced: false });
    this.log = opts.log.child({
      secret: kref(opts.namespace, opts.secretName),
      webhookConfiguration: opts.webhookConfigurationName,
    });
    this.holder = new CertHolder(this.log);
    this.checkIntervalMs = opts.checkIntervalMs ?? 60 * 60 * 1000;
  }

  /** Resolves after the first successful Secret check and one attempt at injecting the CA bundle. */
  async start(signal: AbortSignal): Promise<void> {
    for (let failures = 1; ; failures++) {
      try {
        await this.syncSecret(signal);
        break;
      } catch (err) {
        if (signal.aborted) throw signal.reason;
        this.log.error('cannot get the webhook certificate from its Secret; retrying', err);
        await this.opts.clock.sleep(this.backoff(failures), signal);
      }
    }
    let firstDelayMs = this.checkIntervalMs;
    let failures = 0;
    try {
      if ((await this.injectCaBundle(signal)) === 'missing') {
        firstDelayMs = Math.min(MISSING_CONFIG_RECHECK_MS, this.checkIntervalMs);
      }
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      failures = 1;
      firstDelayMs = this.backoff(failures);
      this.log.error('cannot inject the CA bundle into the webhook configuration; retrying', err, {
        retryInMs: firstDelayMs,
      });
    }
    void this.keepChecking(signal, firstDelayMs, failures);
  }

  current(): CertKeyPem {
    return this.holder.current();
  }

  onChange(listener: () => void): void {
    this.holder.onChange(listener);
  }

  private backoff(failures: number): number {
    return Math.min(FIRST_BACKOFF_MS * 2 ** Math.min(failures - 1, 16), MAX_BACKOFF_MS, this.checkIntervalMs);
  }

  /** Checks after `firstDelayMs`, then every check interval, or with backoff after `failures` failed. */
  private async keepChecking(signal: AbortSignal, firstDelayMs: number, failures: number): Promise<void> {
    let delay = firstDelayMs;
    for (;;) {
      try {
        await this.opts.clock.sleep(delay, signal);
      } catch {
        return; // aborted
      }
      try {
        await this.syncSecret(signal);
        await this.injectCaBundle(signal);
        failures = 0;
        delay = this.checkIntervalMs;
      } catch (err) {
        if (signal.aborted) return;
        failures++;
        delay = this.backoff(failures);
        this.log.error('webhook certificate check failed; retrying', err, { retryInMs: delay });
      }
    }
  }

  private async readSecret(signal: AbortSignal): Promise<V1Secret | undefined> {
    try {
      return await this.core.readNamespacedSecret(
        { name: this.opts.secretName, namespace: this.opts.namespace },
        this.opts.client.withSignal(signal),
      );
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** Reads the Secret, writes it when the plan says so, and adopts what it holds. */
  private async syncSecret(signal: AbortSignal): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const secret = await this.readSecret(signal);
      const nowMs = this.opts.clock.wallTime();
      const plan = planCerts(secret ? decodeSecretCerts(secret.data) : undefined, this.opts.hosts, nowMs);
      const certs = await issueCerts(plan, {
        hosts: this.opts.hosts,
        nowMs,
        caValidityMs: this.opts.caValidityMs ?? 10 * YEAR_MS,
        certValidityMs: this.opts.certValidityMs ?? YEAR_MS,
      });
      if (plan.write) {
        try {
          await this.writeSecret(secret, certs, signal);
        } catch (err) {
          if ((isAlreadyExists(err) || isConflict(err)) && attempt < MAX_CONFLICTS) {
            this.log.v(1).info('another replica wrote the webhook certificate Secret first; re-reading');
            continue;
          }
          throw err;
        }
        this.log.info('wrote the webhook certificate Secret', {
          reasons: plan.reasons,
          newCa: plan.ca === 'new',
          notAfter: readCert(certs.serving.certPem).notAfter.toISOString(),
        });
      }
      this.certs = certs;
      // The bundle goes in before the new certificate is served (see the class comment).
      if (this.holder.has() && certs.serving.certPem !== this.holder.current().certPem) {
        await this.injectCaBundle(signal).catch((err: unknown) => {
          this.log.error('cannot inject the CA bundle before serving the new certificate', err);
        });
      }
      this.holder.set(certs.serving);
      return;
    }
  }

  private async writeSecret(
    existing: V1Secret | undefined,
    certs: WebhookCerts,
    signal: AbortSignal,
  ): Promise<void> {
    const data = encodeSecretCerts(certs);
    const options = this.opts.client.withSignal(signal);
    if (!existing) {
      await this.core.createNamespacedSecret(
        {
          namespace: this.opts.namespace,
          body: {
            apiVersion: 'v1',
            kind: 'Secret',
            metadata: { name: this.opts.secretName, namespace: this.opts.namespace },
            type: 'kubernetes.io/tls',
            data,
          },
        },
        options,
      );
      return;
    }
    // The resourceVersion read rides along: a replica that wrote in between makes this a 409.
    await this.core.replaceNamespacedSecret(
      { name: this.opts.secretName, namespace: this.opts.namespace, body: { ...existing, data } },
      options,
    );
  }

  /** Sets the CA bundle of every webhook in the configuration that does not have it yet. */
  private async injectCaBundle(signal: AbortSignal): Promise<InjectOutcome> {
    if (!this.certs) return 'unchanged';
    const want = toBase64(caBundle(this.certs));
    const name = this.opts.webhookConfigurationName;
    for (let attempt = 1; ; attempt++) {
      let config: V1MutatingWebhookConfiguration;
      try {
        config = await this.admission.readMutatingWebhookConfiguration(
          { name },
          this.opts.client.withSignal(signal),
        );
      } catch (err) {
        if (!isNotFound(err)) throw err;
        this.log.info('the webhook configuration does not exist yet; will inject the CA bundle when it does');
        return 'missing';
      }
      const patch: JsonPatchOperation[] = [];
      (config.webhooks ?? []).forEach((webhook, i) => {
        if (webhook.clientConfig.caBundle === want) return;
        patch.push({ op: 'add', path: jsonPointer('webhooks', i, 'clientConfig', 'caBundle'), value: want });
      });
      if (patch.length === 0) return 'unchanged';
      // The resourceVersion in the patch makes it conditional: the webhook indexes are the ones read.
      patch.unshift({
        op: 'replace',
        path: jsonPointer('metadata', 'resourceVersion'),
        value: config.metadata?.resourceVersion,
      });
      try {
        await this.admission.patchMutatingWebhookConfiguration(
          { name, body: patch },
          this.opts.client.withSignal(signal),
        );
      } catch (err) {
        if (isConflict(err) && attempt < MAX_CONFLICTS) continue;
        throw err;
      }
      this.log.info('injected the CA bundle into the webhook configuration', { webhooks: patch.length - 1 });
      return 'injected';
    }
  }
}
