// The PKI of the local control plane: a CA, kube-apiserver's serving certificate, an admin client
// certificate (system:masters) and the service-account signing key pair, as PEM files.
// All keys are ECDSA P-256; private keys are PKCS#8 PEM written with mode 0600. The x509 work is
// shared/admission/pki.ts's, the one place that issues certificates.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import ipaddr from 'ipaddr.js';
import {
  type CertKeyPem,
  generateCA,
  generateKeyPair,
  issueClientCert,
  issueServingCert,
  type Validity,
} from '../admission/pki.ts';

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

function validity(): Validity {
  const now = Date.now();
  // An hour back tolerates clock skew; a year ahead outlives any test run or local session.
  return { notBefore: new Date(now - 60 * 60 * 1000), notAfter: new Date(now + 365 * 24 * 60 * 60 * 1000) };
}

/**
 * Creates the control plane's certificates and keys in `dir` (a new temp folder when omitted;
 * the caller removes it).
 */
export async function createCerts(dir?: string, opts: CertOptions = {}): Promise<ControlPlaneCerts> {
  const target = dir ?? (await fs.mkdtemp(path.join(os.tmpdir(), 'scm-envtest-certs-')));
  await fs.mkdir(target, { recursive: true, mode: 0o700 });

  const ca: CertKeyPem = await generateCA({ commonName: 'scm-envtest-ca', ...validity() });
  const serving = await issueServingCert(ca, {
    commonName: 'kube-apiserver',
    hosts: [
      '127.0.0.1',
      '::1',
      'localhost',
      'kubernetes',
      'kubernetes.default',
      'kubernetes.default.svc',
      'kubernetes.default.svc.cluster.local',
      ...(opts.serviceIps ?? []),
      ...(opts.extraSans ?? []),
    ],
    ...validity(),
  });
  const admin = await issueClientCert(ca, {
    commonName: 'admin',
    organizations: ['system:masters'],
    ...validity(),
  });
  const serviceAccount = await generateKeyPair();

  const files: CertFiles = {
    caCert: path.join(target, 'ca.crt'),
    servingCert: path.join(target, 'apiserver.crt'),
    servingKey: path.join(target, 'apiserver.key'),
    adminCert: path.join(target, 'admin.crt'),
    adminKey: path.join(target, 'admin.key'),
    serviceAccountKey: path.join(target, 'sa.key'),
    serviceAccountPublicKey: path.join(target, 'sa.pub'),
  };
  const caCertPem = ca.certPem;
  const writes: [string, string, number][] = [
    [files.caCert, caCertPem, 0o644],
    [files.servingCert, serving.certPem, 0o644],
    [files.servingKey, serving.keyPem, 0o600],
    [files.adminCert, admin.certPem, 0o644],
    [files.adminKey, admin.keyPem, 0o600],
    [files.serviceAccountKey, serviceAccount.privateKeyPem, 0o600],
    [files.serviceAccountPublicKey, serviceAccount.publicKeyPem, 0o644],
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
      issueClientCert(ca, { commonName: user, organizations: groups, ...validity() }),
  };
}
