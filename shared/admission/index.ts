// Admission webhooks: the AdmissionReview types (review.ts), the HTTPS server that serves handlers
// (server.ts), where its certificate comes from (certs.ts) and the x509 it needs (pki.ts).
export {
  ADMISSION_API_VERSION,
  ADMISSION_REVIEW_KIND,
  InvalidReviewError,
  allow,
  deny,
  jsonPointer,
  parseReview,
  toReviewResponse,
} from './review.ts';
export type {
  AdmissionAllowed,
  AdmissionDenied,
  AdmissionHandler,
  AdmissionOperation,
  AdmissionRequest,
  AdmissionResponse,
  AdmissionResult,
  AdmissionReviewRequest,
  AdmissionReviewResponse,
  AdmissionStatus,
  AdmissionUserInfo,
  GroupVersionKind,
  GroupVersionResource,
  JsonPatchOperation,
} from './review.ts';
export { MAX_REVIEW_BYTES, WebhookServer } from './server.ts';
export type { WebhookServerOptions } from './server.ts';
export {
  CERT_FILE,
  DirCertSource,
  KEY_FILE,
  SECRET_KEYS,
  SelfManagedCertSource,
  caBundle,
  decodeSecretCerts,
  encodeSecretCerts,
  issueCerts,
  planCerts,
} from './certs.ts';
export type {
  CertPlan,
  CertSource,
  DirCertSourceOptions,
  IssueOptions,
  SelfManagedCertSourceOptions,
  StoredCerts,
  WebhookCerts,
} from './certs.ts';
export {
  canonicalHost,
  certMatchesKey,
  generateCA,
  generateKeyPair,
  isSignedBy,
  issueClientCert,
  issueServingCert,
  readCert,
} from './pki.ts';
export type {
  CaOptions,
  CertInfo,
  CertKeyPem,
  ClientCertOptions,
  KeyPairPem,
  ServingCertOptions,
  Validity,
} from './pki.ts';
