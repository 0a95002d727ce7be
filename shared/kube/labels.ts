/**
 * Label-selector matching and object keys, as the Service controllers need them.
 *
 * Contract:
 * - `serviceSelectorMatches(selector, labels)` is the equality-only map selector of
 *   `Service.spec.selector`, with the Service meaning of "no selector": an absent or empty selector
 *   matches NOTHING (a selector-less Service has user-managed Endpoints). A generic label selector
 *   would match everything instead; that is deliberately not what this function does.
 * - `objectKey(ns, name)` is client-go's "namespace/name" key ("name" alone when the namespace is
 *   empty); `parseKey` is its inverse and throws `InvalidKeyError` for anything else.
 */

/**
 * True when every `key: value` of a non-empty `selector` is present with the same value in
 * `labels`. An absent or empty selector matches no object. A selector value of "" requires the
 * label to exist with an empty value; a missing label never matches.
 */
export function serviceSelectorMatches(
  selector: Readonly<Record<string, string>> | undefined,
  labels: Readonly<Record<string, string>> | undefined,
): boolean {
  if (selector === undefined) return false;
  const entries = Object.entries(selector);
  if (entries.length === 0) return false;
  if (labels === undefined) return false;
  for (const [key, value] of entries) {
    if (!Object.hasOwn(labels, key) || labels[key] !== value) return false;
  }
  return true;
}

/** The key of a namespaced object, "ns/name"; cluster-scoped objects (no namespace) use "name". */
export function objectKey(namespace: string | undefined, name: string): string {
  return namespace ? `${namespace}/${name}` : name;
}

/** The key of an object from its metadata (see `objectKey`). */
export function keyOf(obj: { metadata?: { namespace?: string; name?: string } }): string {
  return objectKey(obj.metadata?.namespace, obj.metadata?.name ?? '');
}

/** A key that is neither "name" nor "namespace/name". */
export class InvalidKeyError extends Error {
  readonly key: string;

  constructor(key: string) {
    super(`invalid object key ${JSON.stringify(key)}: want "name" or "namespace/name"`);
    this.name = 'InvalidKeyError';
    this.key = key;
  }
}

/** Splits a key made by `objectKey`; a key without "/" has namespace "". */
export function parseKey(key: string): { namespace: string; name: string } {
  const parts = key.split('/');
  if (parts.length === 1 && parts[0] !== '') return { namespace: '', name: key };
  if (parts.length === 2 && parts[0] !== '' && parts[1] !== '')
    return { namespace: parts[0], name: parts[1] };
  throw new InvalidKeyError(key);
}

/** Equality of two label (or annotation) maps; an absent map equals an empty one. */
export function labelsEqual(
  a: Readonly<Record<string, string>> | undefined,
  b: Readonly<Record<string, string>> | undefined,
): boolean {
  const left = Object.entries(a ?? {});
  const right = b ?? {};
  if (left.length !== Object.keys(right).length) return false;
  return left.every(([key, value]) => Object.hasOwn(right, key) && right[key] === value);
}

/** A label selector as metav1.LabelSelector holds it. */
export interface LabelSelector {
  matchLabels?: Readonly<Record<string, string>>;
  matchExpressions?: readonly { key: string; operator: string; values?: readonly string[] }[];
}

/**
 * True when `labels` satisfy the generic label selector: every matchLabels pair and every
 * matchExpressions requirement (In, NotIn, Exists, DoesNotExist, as metav1.LabelSelectorAsSelector
 * reads them). Unlike a Service selector, an absent or empty selector matches everything; an
 * unknown operator matches nothing.
 */
export function labelSelectorMatches(
  selector: LabelSelector | undefined,
  labels: Readonly<Record<string, string>> | undefined,
): boolean {
  if (selector === undefined) return true;
  const have = labels ?? {};
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) {
    if (!Object.hasOwn(have, key) || have[key] !== value) return false;
  }
  for (const req of selector.matchExpressions ?? []) {
    const present = Object.hasOwn(have, req.key);
    const values = req.values ?? [];
    switch (req.operator) {
      case 'In':
        if (!present || !values.includes(have[req.key])) return false;
        break;
      case 'NotIn':
        if (present && values.includes(have[req.key])) return false;
        break;
      case 'Exists':
        if (!present) return false;
        break;
      case 'DoesNotExist':
        if (present) return false;
        break;
      default:
        return false;
    }
  }
  return true;
}
