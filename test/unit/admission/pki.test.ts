import { expect } from 'chai';
import { X509Certificate } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import {
  type CertKeyPem,
  certMatchesKey,
  generateCA,
  isSignedBy,
  issueClientCert,
  issueServingCert,
  readCert,
} from '../../../shared/admission/pki.ts';

const notBefore = new Date('2030-01-01T00:00:00Z');
const notAfter = new Date('2031-01-01T00:00:00Z');
// Certificates valid now, for the TLS handshakes.
const now = Date.now();
const current = { notBefore: new Date(now - 60_000), notAfter: new Date(now + 24 * 3600_000) };

/** A TLS handshake with a server presenting `serving`: 'ok', or the client's error code. */
async function handshake(serving: CertKeyPem, client: { ca: string; servername?: string }): Promise<string> {
  const server = tls.createServer({ cert: serving.certPem, key: serving.keyPem }, (socket) => socket.end());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const { port } = server.address() as AddressInfo;
    return await new Promise<string>((resolve) => {
      const socket = tls.connect({ host: '127.0.0.1', port, ca: client.ca, servername: client.servername });
      socket.once('secureConnect', () => {
        socket.destroy();
        resolve('ok');
      });
      socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    });
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

describe('pki', () => {
  let ca: CertKeyPem;
  let serving: CertKeyPem;

  before(async () => {
    ca = await generateCA({ commonName: 'test-ca', ...current });
    serving = await issueServingCert(ca, {
      commonName: 'webhook',
      hosts: ['127.0.0.1', 'webhook.system.svc', '::1', 'Webhook.System.Svc.Cluster.Local'],
      ...current,
    });
  });

  it('a CA reads back as a CA with its name and dates and no hosts', async () => {
    const info = readCert((await generateCA({ commonName: 'my-ca', notBefore, notAfter })).certPem);
    expect(info).to.deep.equal({ subject: 'CN=my-ca', notBefore, notAfter, hosts: [], isCA: true });
  });

  it('a serving certificate reads back with its hosts, IPs canonical and DNS names in lower case', async () => {
    const cert = await issueServingCert(ca, {
      commonName: 'svc',
      hosts: ['10.0.0.1', '0:0:0:0:0:0:0:1', 'Svc.NS.svc', '::1', 'svc.ns.svc'],
      notBefore,
      notAfter,
    });
    expect(readCert(cert.certPem)).to.deep.equal({
      subject: 'CN=svc',
      notBefore,
      notAfter,
      hosts: ['10.0.0.1', '::1', 'svc.ns.svc'],
      isCA: false,
    });
    expect(new X509Certificate(cert.certPem).subjectAltName).to.equal(
      'IP Address:10.0.0.1, IP Address:0:0:0:0:0:0:0:1, DNS:svc.ns.svc',
    );
  });

  it('a serving certificate is signed by its CA, matches its key, and is for serverAuth', () => {
    expect(isSignedBy(serving.certPem, ca.certPem)).to.equal(true);
    expect(certMatchesKey(serving.certPem, serving.keyPem)).to.equal(true);
    expect(certMatchesKey(serving.certPem, ca.keyPem)).to.equal(false);
    expect(new X509Certificate(serving.certPem).keyUsage).to.deep.equal(['1.3.6.1.5.5.7.3.1']);
  });

  it('a certificate from another CA is not signed by this one', async () => {
    const other = await generateCA({ commonName: 'test-ca', ...current });
    expect(isSignedBy(serving.certPem, other.certPem)).to.equal(false);
  });

  it('the checks answer false for garbage instead of throwing', () => {
    expect(certMatchesKey('not a cert', serving.keyPem)).to.equal(false);
    expect(certMatchesKey(serving.certPem, 'not a key')).to.equal(false);
    expect(isSignedBy('garbage', ca.certPem)).to.equal(false);
    expect(() => readCert('garbage')).to.throw();
  });

  it('a TLS client trusting the CA accepts the served certificate for an IP host', async () => {
    expect(await handshake(serving, { ca: ca.certPem })).to.equal('ok');
  });

  it('a TLS client trusting the CA accepts the served certificate for each DNS host', async () => {
    // The last one was issued as 'Webhook.System.Svc.Cluster.Local': DNS names are case-insensitive.
    expect(await handshake(serving, { ca: ca.certPem, servername: 'webhook.system.svc' })).to.equal('ok');
    expect(
      await handshake(serving, { ca: ca.certPem, servername: 'webhook.system.svc.cluster.local' }),
    ).to.equal('ok');
  });

  it('a TLS client refuses a host the certificate does not cover', async () => {
    expect(await handshake(serving, { ca: ca.certPem, servername: 'other.system.svc' })).to.equal(
      'ERR_TLS_CERT_ALTNAME_INVALID',
    );
  });

  it('a TLS client trusting another CA refuses the served certificate', async () => {
    const other = await generateCA({ commonName: 'other-ca', ...current });
    expect(await handshake(serving, { ca: other.certPem })).to.equal('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
  });

  it('a client certificate names the user as CN and each group as its own O', async () => {
    const client = await issueClientCert(ca, {
      commonName: 'system:kube-scheduler',
      organizations: ['system:masters', 'team-a'],
      ...current,
    });
    const cert = new X509Certificate(client.certPem);
    expect(cert.subject).to.equal('CN=system:kube-scheduler\nO=system:masters\nO=team-a');
    expect(cert.keyUsage).to.deep.equal(['1.3.6.1.5.5.7.3.2']);
    expect(isSignedBy(client.certPem, ca.certPem)).to.equal(true);
  });
});
