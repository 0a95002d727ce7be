// The local control plane (real etcd + kube-apiserver on loopback): `make run`'s default when no
// cluster is configured, and what the integration tests and benchmarks run against. It is not part
// of the image (tsconfig.build.json leaves it out): a cluster brings its own API server.
export { findAssets, cacheAssetsDir, pinnedVersions } from './assets.ts';
export type { Assets, PinnedVersions } from './assets.ts';
export { createCerts, firstServiceIps } from './certs.ts';
export type { CertFiles, CertOptions, ControlPlaneCerts } from './certs.ts';
export { startControlPlane, freePorts } from './controlplane.ts';
export type { AuditEvent, ControlPlane, ControlPlaneOptions, ExtraApiServer } from './controlplane.ts';
export {
  allocationFlags,
  createSamplePool,
  ensureOurNamespace,
  installCRDs,
  OUR_NAMESPACE,
  registerServiceWebhook,
  serviceWebhookConfiguration,
  unregisterServiceWebhook,
  WEBHOOK_CONFIGURATION_NAME,
} from './allocation.ts';
