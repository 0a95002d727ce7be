/**
 * API errors, classified by type and status code, never by message text.
 *
 * Typed client-node calls throw `ApiException`; our own raw list/watch calls throw `KubeApiError`.
 * Both carry the HTTP status code and, where the server sent one, a `metav1.Status` body.
 */
import { ApiException } from '@kubernetes/client-node';

export interface StatusBody {
  kind?: string;
  reason?: string;
  message?: string;
  code?: number;
  details?: { causes?: { type?: string; message?: string; field?: string }[] };
}

export class KubeApiError extends Error {
  readonly code: number;
  readonly status: StatusBody | undefined;

  constructor(code: number, message: string, status?: StatusBody) {
    super(message);
    this.name = 'KubeApiError';
    this.code = code;
    this.status = status;
  }
}

/**
 * A write that was not sent: this replica can no longer be sure it holds the leader Lease (it
 * may have been frozen, or failed to renew), so another replica may already be writing.
 */
export class FencedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FencedError';
  }
}

/** The HTTP status code of an API error, or undefined for errors that are not API responses. */
export function statusCode(err: unknown): number | undefined {
  if (err instanceof KubeApiError) return err.code;
  if (err instanceof ApiException) return err.code;
  return undefined;
}

/** The `metav1.Status` body of an API error, when the server sent one. */
export function statusBody(err: unknown): StatusBody | undefined {
  if (err instanceof KubeApiError) return err.status;
  if (err instanceof ApiException) return parseStatus((err as ApiException<unknown>).body);
  return undefined;
}

export function parseStatus(body: unknown): StatusBody | undefined {
  if (typeof body === 'string') {
    try {
      return parseStatus(JSON.parse(body));
    } catch {
      return undefined;
    }
  }
  if (Buffer.isBuffer(body)) return parseStatus(body.toString('utf8'));
  if (body !== null && typeof body === 'object') return body;
  return undefined;
}

export const isNotFound = (err: unknown): boolean => statusCode(err) === 404;
export const isConflict = (err: unknown): boolean => statusCode(err) === 409;
export const isAlreadyExists = (err: unknown): boolean =>
  statusCode(err) === 409 && statusBody(err)?.reason === 'AlreadyExists';
/** 410: the resourceVersion asked for is older than etcd's compaction; the caller must re-list. */
export const isGone = (err: unknown): boolean => statusCode(err) === 410;

/** True when the server's Status names this cause, e.g. `NamespaceTerminating` on a create. */
export function hasStatusCause(err: unknown, cause: string): boolean {
  return statusBody(err)?.details?.causes?.some((c) => c.type === cause) ?? false;
}

/** A human-readable one-liner for logs and Events. */
export function describeError(err: unknown): string {
  const code = statusCode(err);
  const status = statusBody(err);
  if (code !== undefined) return `${code} ${status?.reason ?? ''} ${status?.message ?? ''}`.trim();
  return err instanceof Error ? err.message : String(err);
}
