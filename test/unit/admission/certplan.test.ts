import { expect } from 'chai';
import {
  caBundle,
  decodeSecretCerts,
  encodeSecretCerts,
  issueCerts,
  planCerts,
  type StoredCerts,
  type WebhookCerts,
} from '../../../shared/admission/certs.ts';
import { generateCA, isSignedBy, issueServingCert, readCert } from '../../../shared/admission/pki.ts';

const DAY = 24 * 60 * 60 * 1000;
const YEAR = 365 * DAY;
const HOUR = 60 * 60 * 1000;
const T0 = Date.parse('2030-01-01T00:00:00Z');
const HOSTS = ['webhook.system.svc', '127.0.0.1'];
const VALIDITY = { caValidityMs: 10 * YEAR, certValidityMs: YEAR };

async function freshCerts(nowMs = T0, hosts: readonly string[] = HOSTS): Promise<WebhookCerts> {
  return issueCerts(planCerts(undefined, hosts, nowMs), { hosts, nowMs, ...VALIDITY });
}

function stored(certs: WebhookCerts): StoredCerts {
  return decodeSecretCerts(encodeSecretCerts(certs));
}

describe('planCerts', () => {
  let fresh: WebhookCerts;

  before(async () => {
    fresh = await freshCerts();
  });

  it('a missing Secret gets a new CA and serving certificate and nothing previous', () => {
    expect(planCerts(undefined, HOSTS, T0)).to.deep.equal({
      ca: 'new',
      serving: 'new',
      previousCaCertPem: undefined,
      write: true,
      reasons: ['there is no Secret'],
    });
  });

  it('a Secret without data gets a new CA and serving certificate', () => {
    expect(planCerts({}, HOSTS, T0)).to.deep.equal({
      ca: 'new',
      serving: 'new',
      previousCaCertPem: undefined,
      write: true,
      reasons: ['there is no CA'],
    });
  });

  it('fresh certificates for the wanted hosts are kept without a write', () => {
    expect(planCerts(stored(fresh), HOSTS, T0 + DAY)).to.deep.equal({
      ca: fresh.ca,
      serving: fresh.serving,
      previousCaCertPem: undefined,
      write: false,
      reasons: [],
    });
  });

  it('hosts are compared in canonical form: another spelling of a covered IP or name is covered', () => {
    const plan = planCerts(stored(fresh), ['WEBHOOK.system.svc', '127.0.0.1'], T0);
    expect(plan.write).to.equal(false);
  });

  it('a serving certificate with more than a third of its validity left is kept', () => {
    // Valid from T0 - 1 h for a year: a third is ~121.7 days, so day 240 still has ~125 left.
    expect(planCerts(stored(fresh), HOSTS, T0 + 240 * DAY).write).to.equal(false);
  });

  it('a serving certificate with less than a third of its validity left is reissued by the same CA', () => {
    const plan = planCerts(stored(fresh), HOSTS, T0 + 250 * DAY);
    expect(plan).to.deep.equal({
      ca: fresh.ca,
      serving: 'new',
      previousCaCertPem: undefined,
      write: true,
      reasons: [`the serving certificate expires at ${new Date(T0 + YEAR).toISOString()}`],
    });
  });

  it('a serving certificate that does not cover every wanted host is reissued by the same CA', () => {
    const plan = planCerts(stored(fresh), [...HOSTS, 'webhook.system.svc.cluster.local', '::1'], T0);
    expect(plan.ca).to.deep.equal(fresh.ca);
    expect(plan.serving).to.equal('new');
    expect(plan.reasons).to.deep.equal([
      'the serving certificate does not cover webhook.system.svc.cluster.local, ::1',
    ]);
  });

  it('an unparsable serving certificate is reissued by the same CA', () => {
    const plan = planCerts({ ...stored(fresh), certPem: 'garbage' }, HOSTS, T0);
    expect(plan.ca).to.deep.equal(fresh.ca);
    expect(plan.serving).to.equal('new');
    expect(plan.reasons).to.have.length(1);
    expect(plan.reasons[0]).to.match(/^the serving certificate does not parse \(.+\)$/);
  });

  it('a serving key that is not the certificate’s is reissued', async () => {
    const other = await freshCerts();
    const plan = planCerts({ ...stored(fresh), keyPem: other.serving.keyPem }, HOSTS, T0);
    expect(plan.serving).to.equal('new');
    expect(plan.reasons).to.deep.equal(['the serving key does not match its certificate']);
  });

  it('a serving certificate signed by another CA is reissued by the stored CA', async () => {
    const other = await freshCerts();
    const plan = planCerts(
      { ...stored(fresh), certPem: other.serving.certPem, keyPem: other.serving.keyPem },
      HOSTS,
      T0,
    );
    expect(plan.ca).to.deep.equal(fresh.ca);
    expect(plan.serving).to.equal('new');
    expect(plan.reasons).to.deep.equal(['the serving certificate is not signed by the CA']);
  });

  it('a missing serving key is reissued', () => {
    const plan = planCerts({ ...stored(fresh), keyPem: undefined }, HOSTS, T0);
    expect(plan.serving).to.equal('new');
    expect(plan.reasons).to.deep.equal(['there is no serving certificate']);
  });

  it('an unparsable CA is replaced with nothing kept as previous', () => {
    const plan = planCerts({ ...stored(fresh), caCertPem: 'garbage' }, HOSTS, T0);
    expect(plan.ca).to.equal('new');
    expect(plan.serving).to.equal('new');
    expect(plan.previousCaCertPem).to.equal(undefined);
    expect(plan.reasons[0]).to.match(/^the CA certificate does not parse \(.+\)$/);
  });

  it('a CA certificate that is not a CA is replaced', () => {
    const plan = planCerts({ ...stored(fresh), caCertPem: fresh.serving.certPem }, HOSTS, T0);
    expect(plan.ca).to.equal('new');
    expect(plan.reasons).to.deep.equal(['the CA certificate is not a CA']);
  });

  it('a CA whose key does not match is replaced, its still-valid certificate kept as previous', async () => {
    const other = await freshCerts();
    const plan = planCerts({ ...stored(fresh), caKeyPem: other.ca.keyPem }, HOSTS, T0);
    expect(plan.ca).to.equal('new');
    expect(plan.serving).to.equal('new');
    expect(plan.previousCaCertPem).to.equal(fresh.ca.certPem);
    expect(plan.reasons).to.deep.equal(['the CA key does not match its certificate']);
  });

  it('a CA with more than a third of its validity left is kept', async () => {
    // Six years in, the serving certificate has long been renewed; only the CA is under test.
    const at = T0 + 6 * YEAR;
    const serving = await issueServingCert(fresh.ca, {
      commonName: 'w',
      hosts: HOSTS,
      notBefore: new Date(at - HOUR),
      notAfter: new Date(at + YEAR),
    });
    const plan = planCerts({ ...stored(fresh), ...serving }, HOSTS, at);
    expect(plan.write).to.equal(false);
  });

  it('a CA with less than a third of its validity left is rotated: new CA, the old one kept as previous', () => {
    const plan = planCerts(stored(fresh), HOSTS, T0 + 7 * YEAR);
    expect(plan).to.deep.equal({
      ca: 'new',
      serving: 'new',
      previousCaCertPem: fresh.ca.certPem,
      write: true,
      reasons: [`the CA expires at ${new Date(T0 + 10 * YEAR).toISOString()}`],
    });
  });

  it('after a rotation the previous CA is kept, without a write, while it has not expired', async () => {
    const at = T0 + 7 * YEAR;
    const rotated = await issueCerts(planCerts(stored(fresh), HOSTS, at), {
      hosts: HOSTS,
      nowMs: at,
      ...VALIDITY,
    });
    expect(rotated.previousCaCertPem).to.equal(fresh.ca.certPem);
    expect(isSignedBy(rotated.serving.certPem, rotated.ca.certPem)).to.equal(true);
    expect(planCerts(stored(rotated), HOSTS, at + DAY)).to.deep.equal({
      ca: rotated.ca,
      serving: rotated.serving,
      previousCaCertPem: fresh.ca.certPem,
      write: false,
      reasons: [],
    });
  });

  it('an expired previous CA is dropped', async () => {
    const expired = await generateCA({
      commonName: 'old',
      notBefore: new Date(T0 - 2 * YEAR),
      notAfter: new Date(T0 - DAY),
    });
    expect(planCerts({ ...stored(fresh), previousCaCertPem: expired.certPem }, HOSTS, T0)).to.deep.equal({
      ca: fresh.ca,
      serving: fresh.serving,
      previousCaCertPem: undefined,
      write: true,
      reasons: ['the previous CA expired'],
    });
  });

  it('an expired CA is replaced and not kept as previous', () => {
    const plan = planCerts(stored(fresh), HOSTS, T0 + 11 * YEAR);
    expect(plan.ca).to.equal('new');
    expect(plan.previousCaCertPem).to.equal(undefined);
  });
});

describe('issueCerts', () => {
  it('new certificates start an hour back and last the configured validity', async () => {
    const certs = await freshCerts(T0);
    const ca = readCert(certs.ca.certPem);
    const serving = readCert(certs.serving.certPem);
    expect(ca.isCA).to.equal(true);
    expect(ca.subject).to.equal(`CN=service-controller-manager-webhook-ca@${T0 / 1000}`);
    expect([ca.notBefore.getTime(), ca.notAfter.getTime()]).to.deep.equal([T0 - HOUR, T0 + 10 * YEAR]);
    expect([serving.notBefore.getTime(), serving.notAfter.getTime()]).to.deep.equal([T0 - HOUR, T0 + YEAR]);
    expect(serving.hosts).to.deep.equal(HOSTS);
    expect(serving.subject).to.equal('CN=webhook.system.svc');
    expect(isSignedBy(certs.serving.certPem, certs.ca.certPem)).to.equal(true);
  });

  it('a serving certificate never outlives its CA', async () => {
    const ca = await generateCA({
      commonName: 'short',
      notBefore: new Date(T0 - HOUR),
      notAfter: new Date(T0 + 30 * DAY),
    });
    const certs = await issueCerts(
      { ca, serving: 'new', previousCaCertPem: undefined, write: true, reasons: [] },
      { hosts: HOSTS, nowMs: T0, ...VALIDITY },
    );
    expect(readCert(certs.serving.certPem).notAfter.getTime()).to.equal(T0 + 30 * DAY);
  });
});

describe('the Secret encoding', () => {
  it('round-trips through base64 data under the kubernetes.io/tls keys plus the CA keys', async () => {
    const certs = await freshCerts();
    const withPrevious: WebhookCerts = { ...certs, previousCaCertPem: certs.ca.certPem };
    const data = encodeSecretCerts(withPrevious);
    expect(Object.keys(data).sort()).to.deep.equal([
      'ca-previous.crt',
      'ca.crt',
      'ca.key',
      'tls.crt',
      'tls.key',
    ]);
    expect(Buffer.from(data['tls.crt'], 'base64').toString('utf8')).to.equal(certs.serving.certPem);
    expect(decodeSecretCerts(data)).to.deep.equal({
      certPem: certs.serving.certPem,
      keyPem: certs.serving.keyPem,
      caCertPem: certs.ca.certPem,
      caKeyPem: certs.ca.keyPem,
      previousCaCertPem: certs.ca.certPem,
    });
    expect(Object.keys(encodeSecretCerts(certs))).to.not.include('ca-previous.crt');
  });

  it('the CA bundle is the CA followed by the previous CA', async () => {
    const certs = await freshCerts();
    expect(caBundle(certs)).to.equal(certs.ca.certPem);
    expect(caBundle({ ...certs, previousCaCertPem: 'PREVIOUS\n' })).to.equal(`${certs.ca.certPem}PREVIOUS\n`);
  });
});
