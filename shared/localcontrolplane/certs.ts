// The PKI of the local control plane: a CA, kube-apiserver's serving certificate, an admin client
// certificate (system:masters) and the service-account signing key pair, as PEM files.
// All keys are ECDSA P-256; private keys are PKCS#8 PEM written with mode 0600.
//
// @peculiar/x509 resolves its ASN.1 helpers through tsyringe, which needs the Reflect metadata
// API at import time: the polyfill must be evaluated before @peculiar/x509, so it is imported first.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { webcrypto } from 'node:crypto';
import ipaddr from 'ipaddr.js';

x509.cryptoProvider.set(webcrypto);

const keyAlgorithm = { name: 'ECDSA', namedCurve: 'P-256' };
const signingAlgorithm = { name: 'ECDSA', hash: 'SHA-256' };

export interface CertFiles {
  caCert: string;
  servingCert: string;
  servingKey: string;
  adminCert: string;
  adminKey: string;
  /** PKCS#8 private key kube-apiserver signs service-account tokens with. */
  serviceAccountKey: string;
  /** SPKI public key kube-apiserver verifies service-account tokens with. */
  serviceAccountPublicKey: string;
}

export interface ControlPlaneCerts {
  dir: string;
  files: CertFiles;
  caCertPem: string;
  adminCertPem: string;
  adminKeyPem: string;
  /**
   * A client certificate from the same CA for user `user` in `groups` (the API server reads the
   * CN as the user name and each O as a group): a distinct identity, e.g. one per manager
   * process, that the audit log tells apart.
   */
  issueClientCert(user: string, groups: readonly string[]): Promise<{ certPem: string; keyPem: string }>;
}

export interface CertOptions {
  /**
   * IP addresses of the in-cluster `kubernetes` Service (the first address of each
   * --service-cluster-ip-range family), added to the serving certificate's SANs.
   */
  serviceIps?: string[];
  /** Extra DNS names or IP addresses for the serving certificate. */
  extraSans?: string[];
}

/**
 * The first usable address of each CIDR in a (possibly dual-stack, comma separated)
 * --service-cluster-ip-range: the address kube-apiserver gives the `kubernetes` Service.
 */
export function firstServiceIps(serviceClusterIpRange: string): string[] {
  return serviceClusterIpRange
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map((cidr) => {
      const [addr] = ipaddr.parseCIDR(cidr);
      const network =
        addr.kind() === 'ipv4'
          ? ipaddr.IPv4.networkAddressFromCIDR(cidr)
          : ipaddr.IPv6.networkAddressFromCIDR(cidr);
      const bytes = network.toByteArray();
      for (let i = bytes.length - 1; i >= 0; i--) {
        bytes[i] = (bytes[i] + 1) & 0xff;
        if (bytes[i] !== 0) break;
      }
      return ipaddr.fromByteArray(bytes).toString();
    });
}

async function generateKeys(): Promise<webcrypto.CryptoKeyPair> {
  return webcrypto.subtle.generateKey(keyAlgorithm, true, ['sign', 'verify']);
}

async function privateKeyPem(key: webcrypto.CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key);
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

async function publicKeyPem(key: webcrypto.CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('spki', key);
  return x509.PemConverter.encode(der, 'PUBLIC KEY');
}

function validity(): { notBefore: Date; notAfter: Date } {
  const now = Date.now();
  // An hour back tolerates clock skew; a year ahead outlives any test run or local session.
  return { notBefore: new Date(now - 60 * 60 * 1000), notAfter: new Date(now + 365 * 24 * 60 * 60 * 1000) };
}

function sanEntries(names: string[]): x509.JsonGeneralName[] {
  const seen = new Set<string>();
  const out: x509.JsonGeneralName[] = [];
  for (const name of names) {
    if (seen.has(name)) continue;
    seen.add(name);
    out.push({ type: ipaddr.isValid(name) ? 'ip' : 'dns', value: name });
  }
  return out;
}

async function leaf(
  ca: { cert: x509.X509Certificate; keys: webcrypto.CryptoKeyPair },
  subject: string,
  usage: x509.ExtendedKeyUsage,
  sans: string[],
): Promise<{ certPem: string; keyPem: string }> {
  const keys = await generateKeys();
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension([usage], false),
    await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    await x509.AuthorityKeyIdentifierExtension.create(ca.keys.publicKey),
  ];
  if (sans.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(sanEntries(sans), false));
  const cert = await x509.X509CertificateGenerator.create({
    subject,
    issuer: ca.cert.subject,
    publicKey: keys.publicKey,
    signingKey: ca.keys.privateKey,
    signingAlgorithm,
    extensions,
    ...validity(),
  });
  return { certPem: cert.toString('pem'), keyPem: await privateKeyPem(keys.privateKey) };
}

/**
 * Creates the control plane's certificates and keys in `dir` (a new temp folder when omitted;
 * the caller removes it).
 */
export async function createCerts(dir?: string, opts: CertOptions = {}): Promise<ControlPlaneCerts> {
  const target = dir ?? (await fs.mkdtemp(path.join(os.tmpdir(), 'scm-envtest-certs-')));
  await fs.mkdir(target, { recursive: true, mode: 0o700 });

  const caKeys = await generateKeys();
  const caCert = await x509.X509CertificateGenerator.createSelfSigned({
    name: 'CN=scm-envtest-ca',
    keys: caKeys,
    signingAlgorithm,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey),
    ],
    ...validity(),
  });
  const ca = { cert: caCert, keys: caKeys };

  const serving = await leaf(ca, 'CN=kube-apiserver', x509.ExtendedKeyUsage.serverAuth, [
    '127.0.0.1',
    '::1',
    'localhost',
    'kubernetes',
    'kubernetes.default',
    'kubernetes.default.svc',
    'kubernetes.default.svc.cluster.local',
    ...(opts.serviceIps ?? []),
    ...(opts.extraSans ?? []),
  ]);
  const admin = await leaf(ca, 'CN=admin, O=system:masters', x509.ExtendedKeyUsage.clientAuth, []);
  const saKeys = await generateKeys();

  const files: CertFiles = {
    caCert: path.join(target, 'ca.crt'),
    servingCert: path.join(target, 'apiserver.crt'),
    servingKey: path.join(target, 'apiserver.key'),
    adminCert: path.join(target, 'admin.crt'),
    adminKey: path.join(target, 'admin.key'),
    serviceAccountKey: path.join(target, 'sa.key'),
    serviceAccountPublicKey: path.join(target, 'sa.pub'),
  };
  const caCertPem = caCert.toString('pem');
  const writes: [string, string, number][] = [
    [files.caCert, caCertPem, 0o644],
    [files.servingCert, serving.certPem, 0o644],
    [files.servingKey, serving.keyPem, 0o600],
    [files.adminCert, admin.certPem, 0o644],
    [files.adminKey, admin.keyPem, 0o600],
    [files.serviceAccountKey, await privateKeyPem(saKeys.privateKey), 0o600],
    [files.serviceAccountPublicKey, await publicKeyPem(saKeys.publicKey), 0o644],
  ];
  for (const [file, pem, mode] of writes) {
    await fs.writeFile(file, pem.endsWith('\n') ? pem : `${pem}\n`, { mode });
    await fs.chmod(file, mode);
  }
  return {
    dir: target,
    files,
    caCertPem,
    adminCertPem: admin.certPem,
    adminKeyPem: admin.keyPem,
    issueClientCert: (user, groups) =>
      leaf(
        ca,
        [`CN=${user}`, ...groups.map((g) => `O=${g}`)].join(', '),
        x509.ExtendedKeyUsage.clientAuth,
        [],
      ),
  };
}
