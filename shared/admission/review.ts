/**
 * The admission.k8s.io/v1 AdmissionReview wire types and the helpers a webhook handler needs:
 * pure data, no I/O.
 *
 * Contract of a handler: it receives the decoded request and a signal that aborts when the API
 * server can no longer use the answer (the request timed out or the connection closed); it
 * returns `allow(patch?, warnings?)` or `deny(code, reason, message)`. A handler that throws is
 * answered as a denial with code 500 by the server; it is never a crash.
 *
 * Encoding rules the API server holds us to:
 * - `response.uid` must equal `request.uid`.
 * - A mutation is a base64 of a JSON Patch (RFC 6902) array with `patchType: 'JSONPatch'`; both
 *   fields are left out when there is nothing to patch (an empty patch with a patchType is legal
 *   but is still counted by the API server as a mutation, so it is not sent).
 * - A denial carries a metav1.Status: its code and message reach the client that made the request
 *   (the message prefixed with `admission webhook "<name>" denied the request: `).
 */

export const ADMISSION_API_VERSION = 'admission.k8s.io/v1';
export const ADMISSION_REVIEW_KIND = 'AdmissionReview';

export type AdmissionOperation = 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT';
const OPERATIONS: ReadonlySet<string> = new Set<AdmissionOperation>([
  'CREATE',
  'UPDATE',
  'DELETE',
  'CONNECT',
]);

export interface GroupVersionKind {
  group: string;
  version: string;
  kind: string;
}

export interface GroupVersionResource {
  group: string;
  version: string;
  resource: string;
}

export interface AdmissionUserInfo {
  username?: string;
  uid?: string;
  groups?: string[];
  extra?: Record<string, string[]>;
}

export interface AdmissionRequest {
  /** Identifies this call; the response must echo it. */
  uid: string;
  /** The kind of `object` as sent to the webhook (after conversion to the version it asked for). */
  kind: GroupVersionKind;
  resource: GroupVersionResource;
  subResource?: string;
  /** The kind, resource and subresource of the original request, before conversion. */
  requestKind?: GroupVersionKind;
  requestResource?: GroupVersionResource;
  requestSubResource?: string;
  /** Empty on a CREATE with generateName. */
  name?: string;
  namespace?: string;
  operation: AdmissionOperation;
  userInfo?: AdmissionUserInfo;
  /** The new object (CREATE, UPDATE, CONNECT); absent on DELETE. */
  object?: unknown;
  /** The existing object (UPDATE, DELETE). */
  oldObject?: unknown;
  /** True when the request will not be persisted: a handler with side effects must skip them. */
  dryRun?: boolean;
  /** CreateOptions, UpdateOptions, DeleteOptions or ConnectOptions of the request. */
  options?: unknown;
}

/** The AdmissionReview the API server POSTs. */
export interface AdmissionReviewRequest {
  apiVersion: typeof ADMISSION_API_VERSION;
  kind: typeof ADMISSION_REVIEW_KIND;
  request: AdmissionRequest;
}

/** The metav1.Status of a denial. */
export interface AdmissionStatus {
  code: number;
  reason: string;
  message: string;
  metadata: Record<string, never>;
}

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  patchType?: 'JSONPatch';
  /** base64 of the JSON Patch array. */
  patch?: string;
  warnings?: string[];
  status?: AdmissionStatus;
}

/** The AdmissionReview a webhook answers with. */
export interface AdmissionReviewResponse {
  apiVersion: typeof ADMISSION_API_VERSION;
  kind: typeof ADMISSION_REVIEW_KIND;
  response: AdmissionResponse;
}

/** One RFC 6902 operation; `path` is a JSON Pointer (build it with `jsonPointer`). */
export type JsonPatchOperation =
  { op: 'add' | 'replace' | 'test'; path: string; value: unknown } | { op: 'remove'; path: string };

/** What a handler decides. `reason` is a metav1.StatusReason such as 'Invalid', 'Forbidden', 'Conflict'. */
export type AdmissionResult = AdmissionAllowed | AdmissionDenied;

export interface AdmissionAllowed {
  allowed: true;
  patch?: JsonPatchOperation[];
  /** Shown to the client (kubectl prints them); the API server caps their number and length. */
  warnings?: string[];
}

export interface AdmissionDenied {
  allowed: false;
  /** An HTTP status code, 400 or above (the API server raises lower ones to 400). */
  code: number;
  reason: string;
  message: string;
}

export type AdmissionHandler = (request: AdmissionRequest, signal: AbortSignal) => Promise<AdmissionResult>;

/** Thrown by `parseReview` for a body that is not an admission.k8s.io/v1 AdmissionReview request. */
export class InvalidReviewError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidReviewError';
  }
}

/**
 * A JSON Pointer (RFC 6901) to the member named by `segments`: `jsonPointer('metadata', 'labels',
 * 'app.kubernetes.io/name')` is `/metadata/labels/app.kubernetes.io~1name`. No segments: the
 * whole document (`''`).
 */
export function jsonPointer(...segments: readonly (string | number)[]): string {
  // '~' first: escaping '/' first would turn its '~1' into '~01'.
  return segments.map((s) => `/${String(s).replaceAll('~', '~0').replaceAll('/', '~1')}`).join('');
}

export function allow(patch?: JsonPatchOperation[], warnings?: string[]): AdmissionAllowed {
  const result: AdmissionAllowed = { allowed: true };
  if (patch !== undefined) result.patch = patch;
  if (warnings !== undefined) result.warnings = warnings;
  return result;
}

export function deny(code: number, reason: string, message: string): AdmissionDenied {
  return { allowed: false, code, reason, message };
}

/** The AdmissionReview answering request `uid` with `result`. */
export function toReviewResponse(uid: string, result: AdmissionResult): AdmissionReviewResponse {
  const response: AdmissionResponse = { uid, allowed: result.allowed };
  if (result.allowed) {
    if (result.patch !== undefined && result.patch.length > 0) {
      response.patchType = 'JSONPatch';
      response.patch = Buffer.from(JSON.stringify(result.patch), 'utf8').toString('base64');
    }
    if (result.warnings !== undefined && result.warnings.length > 0) response.warnings = result.warnings;
  } else {
    response.status = { code: result.code, reason: result.reason, message: result.message, metadata: {} };
  }
  return { apiVersion: ADMISSION_API_VERSION, kind: ADMISSION_REVIEW_KIND, response };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function requireStrings(value: unknown, field: string, keys: readonly string[]): void {
  if (!isRecord(value)) throw new InvalidReviewError(`request.${field} must be an object`);
  for (const key of keys) {
    if (typeof value[key] !== 'string')
      throw new InvalidReviewError(`request.${field}.${key} must be a string`);
  }
}

/**
 * Checks that `body` (parsed JSON) is an admission.k8s.io/v1 AdmissionReview with a request the
 * handlers can rely on: a uid, a known operation, kind and resource. Throws `InvalidReviewError`
 * naming the first problem. Fields it does not check are passed on as sent.
 */
export function parseReview(body: unknown): AdmissionReviewRequest {
  if (!isRecord(body)) throw new InvalidReviewError('the body is not a JSON object');
  if (body.apiVersion !== ADMISSION_API_VERSION || body.kind !== ADMISSION_REVIEW_KIND) {
    throw new InvalidReviewError(
      `want apiVersion ${ADMISSION_API_VERSION} and kind ${ADMISSION_REVIEW_KIND}, got ` +
        `${JSON.stringify(body.apiVersion)} and ${JSON.stringify(body.kind)}`,
    );
  }
  const request = body.request;
  if (!isRecord(request)) throw new InvalidReviewError('the AdmissionReview has no request');
  if (typeof request.uid !== 'string' || request.uid === '') {
    throw new InvalidReviewError('request.uid must be a non-empty string');
  }
  if (typeof request.operation !== 'string' || !OPERATIONS.has(request.operation)) {
    throw new InvalidReviewError(
      `request.operation must be one of ${[...OPERATIONS].join(', ')}, got ${JSON.stringify(request.operation)}`,
    );
  }
  requireStrings(request.kind, 'kind', ['group', 'version', 'kind']);
  requireStrings(request.resource, 'resource', ['group', 'version', 'resource']);
  return {
    apiVersion: ADMISSION_API_VERSION,
    kind: ADMISSION_REVIEW_KIND,
    request: request as unknown as AdmissionRequest,
  };
}
