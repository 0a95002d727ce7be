// The local control plane for integration tests (real etcd + kube-apiserver) and its helpers.
export { findAssets, cacheAssetsDir, pinnedVersions } from './assets.ts';
export type { Assets, PinnedVersions } from './assets.ts';
export { createCerts, firstServiceIps } from './certs.ts';
export type { CertFiles, CertOptions, ControlPlaneCerts } from './certs.ts';
export { startControlPlane, freePorts } from './controlplane.ts';
export type { ControlPlane, ControlPlaneOptions, ExtraApiServer } from './controlplane.ts';
export { createNamespace } from './namespaces.ts';
export { setPodStatus } from './pods.ts';
export type { PodPhase, PodStatusUpdate } from './pods.ts';
