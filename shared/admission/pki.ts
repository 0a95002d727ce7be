/**
 * The few x509 operations this project needs, in one place: a CA, serving and client
 * certificates issued by it, and reading a certificate back. Used by the webhook's self-managed
 * certificates and by the local control plane's PKI.
 *
 * Guarantees:
 * - Every key is ECDSA P-256 (what kube-apiserver and Go's TLS stack handle best); private keys
 *   are PKCS#8 PEM, certificates PEM, signatures ECDSA with SHA-256.
 * - An issued certificate names its CA's subject byte for byte (the CA's encoded Name is reused,
 *   not re-encoded from a string), because Go finds a certificate's parent by comparing the raw
 *   issuer and subject bytes.
 * - `hosts` become IP SANs when they parse as IP addresses (ipaddr.js) and DNS SANs otherwise;
 *   `readCert` returns them in the same form (IPs in their canonical text), so "does this
 *   certificate cover these hosts" is a set comparison.
 * - The checks (`readCert`, `certMatchesKey`, `isSignedBy`) are synchronous and never throw for
 *   bad input other than `readCert`'s parse error, so pure decision code can call them.
 *
 * @peculiar/x509 resolves its ASN.1 helpers through tsyringe, which needs the Reflect metadata
 * API at import time: the polyfill must be evaluated before @peculiar/x509, so it is imported first.
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { createPrivateKey, X509Certificate as NodeX509Certificate, webcrypto } from 'node:crypto';
import ipaddr from 'ipaddr.js';

x509.cryptoProvider.set(webcrypto);

const keyAlgorithm: webcrypto.EcKeyGenParams = { name: 'ECDSA', namedCurve: 'P-256' };
const signingAlgorithm: webcrypto.EcdsaParams = { name: 'ECDSA', hash: 'SHA-256' };

/** A certificate and its private key, both PEM. */
export interface CertKeyPem {
  certPem: string;
  keyPem: string;
}

export interface Validity {
  notBefore: Date;
  notAfter: Date;
}

export interface CaOptions extends Validity {
  commonName: string;
}

export interface ServingCertOptions extends Validity {
  commonName: string;
  /** DNS names and IP addresses the certificate is valid for (its subjectAltNames). */
  hosts: readonly string[];
}

export interface ClientCertOptions extends Validity {
  /** The user name, as kube-apiserver reads it. */
  commonName: string;
  /** One O each: the groups, as kube-apiserver reads them. */
  organizations: readonly string[];
}

/** What a certificate says about itself. */
export interface CertInfo extends Validity {
  subject: string;
  /** DNS and IP subjectAltNames; IPs in canonical text (`::1`, not `0:0:0:0:0:0:0:1`). */
  hosts: string[];
  isCA: boolean;
}

/** A PKCS#8 private key and its SPKI public key, both PEM (e.g. a service-account signing key). */
export interface KeyPairPem {
  privateKeyPem: string;
  publicKeyPem: string;
}

async function generateKeys(): Promise<webcrypto.CryptoKeyPair> {
  return webcrypto.subtle.generateKey(keyAlgorithm, true, ['sign', 'verify']);
}

async function privateKeyPem(key: webcrypto.CryptoKey): Promise<string> {
  return x509.PemConverter.encode(await webcrypto.subtle.exportKey('pkcs8', key), 'PRIVATE KEY');
}

async function publicKeyPem(key: webcrypto.CryptoKey): Promise<string> {
  return x509.PemConverter.encode(await webcrypto.subtle.exportKey('spki', key), 'PUBLIC KEY');
}

/** PEM always ends with a newline, so concatenated bundles stay valid PEM. */
function withNewline(pem: string): string {
  return pem.endsWith('\n') ? pem : `${pem}\n`;
}

/** The canonical text of an IP address, or undefined when `host` is not one. */
function canonicalIp(host: string): string | undefined {
  return ipaddr.isValid(host) ? ipaddr.parse(host).toString() : undefined;
}

/** A host as `readCert` reports it: IPs canonical, DNS names lower case. */
export function canonicalHost(host: string): string {
  return canonicalIp(host) ?? host.toLowerCase();
}

function sanEntries(hosts: readonly string[]): x509.JsonGeneralName[] {
  const seen = new Set<string>();
  const out: x509.JsonGeneralName[] = [];
  for (const host of hosts) {
    const name = canonicalHost(host);
    if (seen.has(name)) continue;
    seen.add(name);
    out.push({ type: canonicalIp(host) === undefined ? 'dns' : 'ip', value: name });
  }
  return out;
}

export async function generateKeyPair(): Promise<KeyPairPem> {
  const keys = await generateKeys();
  return {
    privateKeyPem: await privateKeyPem(keys.privateKey),
    publicKeyPem: await publicKeyPem(keys.publicKey),
  };
}

/** A self-signed CA that may sign leaf certificates only (path length 0). */
export async function generateCA(opts: CaOptions): Promise<CertKeyPem> {
  const keys = await generateKeys();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    name: [{ CN: [opts.commonName] }],
    keys,
    signingAlgorithm,
    notBefore: opts.notBefore,
    notAfter: opts.notAfter,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return {
    certPem: withNewline(cert.toString('pem')),
    keyPem: withNewline(await privateKeyPem(keys.privateKey)),
  };
}

async function importCaKey(keyPem: string): Promise<webcrypto.CryptoKey> {
  return webcrypto.subtle.importKey('pkcs8', x509.PemConverter.decodeFirst(keyPem), keyAlgorithm, false, [
    'sign',
  ]);
}

async function issueLeaf(
  ca: CertKeyPem,
  subject: x509.JsonName,
  usage: x509.ExtendedKeyUsage,
  hosts: readonly string[],
  validity: Validity,
): Promise<CertKeyPem> {
  const caCert = new x509.X509Certificate(ca.certPem);
  const keys = await generateKeys();
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension([usage], false),
    await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    await x509.AuthorityKeyIdentifierExtension.create(caCert),
  ];
  if (hosts.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(sanEntries(hosts), false));
  const cert = await x509.X509CertificateGenerator.create({
    subject,
    issuer: caCert.subjectName,
    publicKey: keys.publicKey,
    signingKey: await importCaKey(ca.keyPem),
    signingAlgorithm,
    extensions,
    notBefore: validity.notBefore,
    notAfter: validity.notAfter,
  });
  return {
    certPem: withNewline(cert.toString('pem')),
    keyPem: withNewline(await privateKeyPem(keys.privateKey)),
  };
}

/** A TLS server certificate for `hosts`, signed by `ca`. */
export async function issueServingCert(ca: CertKeyPem, opts: ServingCertOptions): Promise<CertKeyPem> {
  return issueLeaf(ca, [{ CN: [opts.commonName] }], x509.ExtendedKeyUsage.serverAuth, opts.hosts, opts);
}

/** A TLS client certificate (CN = user, one O per group), signed by `ca`. */
export async function issueClientCert(ca: CertKeyPem, opts: ClientCertOptions): Promise<CertKeyPem> {
  // One RDN per O (not one multi-valued RDN), as openssl and Go write them.
  const subject: x509.JsonName = [{ CN: [opts.commonName] }, ...opts.organizations.map((o) => ({ O: [o] }))];
  return issueLeaf(ca, subject, x509.ExtendedKeyUsage.clientAuth, [], opts);
}

/** Reads the first certificate of `pem`; throws when it is not a certificate. */
export function readCert(pem: string): CertInfo {
  const cert = new x509.X509Certificate(pem);
  const hosts: string[] = [];
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  for (const name of san?.names.items ?? []) {
    if (name.type === 'dns' || name.type === 'ip') hosts.push(canonicalHost(name.value));
  }
  return {
    subject: cert.subject,
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
    hosts,
    isCA: cert.getExtension(x509.BasicConstraintsExtension)?.ca ?? false,
  };
}

/** True when `keyPem` is the private key of `certPem`'s public key; false for anything unparsable. */
export function certMatchesKey(certPem: string, keyPem: string): boolean {
  try {
    return new NodeX509Certificate(certPem).checkPrivateKey(createPrivateKey(keyPem));
  } catch {
    return false;
  }
}

/** True when `certPem` carries a valid signature of `caCertPem`'s key; false for anything unparsable. */
export function isSignedBy(certPem: string, caCertPem: string): boolean {
  try {
    const ca = new NodeX509Certificate(caCertPem);
    const cert = new NodeX509Certificate(certPem);
    return cert.checkIssued(ca) && cert.verify(ca.publicKey);
  } catch {
    return false;
  }
}
