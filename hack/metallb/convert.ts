/**
 * MetalLB (metallb.io/v1beta1) configuration to our LoadBalancerIPPools: the conversion that
 * hack/metallb-to-pools.ts runs on parsed YAML. Pure: objects in, pools and notes out.
 *
 * What MetalLB does that this mirrors (MetalLB's internal/config and internal/allocator):
 * - an address "a/n" with host bits set means its network; a range may have spaces around "-";
 * - `serviceAllocation.priority`: lower first, 0 (or unset) means no priority, after the others;
 * - `namespaces` and `namespaceSelectors` select a namespace if any of them does, and so do the
 *   `serviceSelectors` for a Service. Ours has one selector of each, so only the first can be kept
 *   (a narrower pool, never a wider one), and the notes name what was left out.
 * Announcing (L2Advertisement, BGPAdvertisement, BGPPeer, Community, BFDProfile) is not ours.
 */
import ipaddr from 'ipaddr.js';
import type { V1LabelSelector, V1LabelSelectorRequirement } from '@kubernetes/client-node';
import {
  POOL_API_VERSION,
  POOL_ANNOTATION,
  POOL_KIND,
  REQUESTED_IPS_ANNOTATION,
  SHARING_KEY_ANNOTATION,
  type LoadBalancerIPPool,
  type LoadBalancerIPPoolSpec,
} from '../../controllers/loadbalancer/types.ts';

export interface Note {
  /** `warning`: something MetalLB did that the output does not; `info`: a change that keeps the meaning. */
  severity: 'warning' | 'info';
  /** `Kind namespace/name` of the input object, absent for general notes. */
  object?: string;
  message: string;
}

export interface Conversion {
  pools: LoadBalancerIPPool[];
  notes: Note[];
}

/** Input that is not MetalLB configuration at all: the command exits non-zero with this message. */
export class InputError extends Error {
  override name = 'InputError';
}

const METALLB_GROUP = 'metallb.io';
/** Kinds that configure announcing, which stays with the data plane. */
const ANNOUNCING_KINDS = new Set([
  'L2Advertisement',
  'BGPAdvertisement',
  'BGPPeer',
  'Community',
  'BFDProfile',
]);
const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';

/** MetalLB's Service annotations (both prefixes) and ours. */
export const ANNOTATION_RENAMES: readonly { metallb: string; ours: string }[] = [
  { metallb: 'loadBalancerIPs', ours: REQUESTED_IPS_ANNOTATION },
  { metallb: 'address-pool', ours: POOL_ANNOTATION },
  { metallb: 'allow-shared-ip', ours: SHARING_KEY_ANNOTATION },
];
const METALLB_ANNOTATION_PREFIXES = ['metallb.io/', 'metallb.universe.tf/'];

type Obj = Record<string, unknown>;
/** One of the selectors MetalLB ORs, and how to name it in a note. */
interface Choice {
  what: string;
  selector: V1LabelSelector;
}
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Converts parsed YAML documents (null documents and `List`s allowed) to pools and notes. */
export function convertMetalLB(documents: readonly unknown[]): Conversion {
  const notes: Note[] = [];
  const pools: LoadBalancerIPPool[] = [];
  /** Pools MetalLB tries first for the Services they select (they have a serviceAllocation). */
  const pinnedWithoutPriority: string[] = [];
  let unpinned = 0;
  const seen = new Map<string, string>();

  for (const [index, obj] of flatten(documents).entries()) {
    const kind = typeof obj.kind === 'string' ? obj.kind : '';
    const apiVersion = typeof obj.apiVersion === 'string' ? obj.apiVersion : '';
    if (kind === '' || apiVersion === '') {
      throw new InputError(`object ${index + 1} of the input has no apiVersion and kind`);
    }
    const ref = describe(kind, obj);
    const group = apiVersion.includes('/') ? apiVersion.slice(0, apiVersion.indexOf('/')) : '';

    if (group === METALLB_GROUP && kind === 'IPAddressPool') {
      const converted = convertPool(obj, ref, notes);
      const first = seen.get(converted.pool.metadata.name!);
      if (first !== undefined) {
        notes.push({
          severity: 'warning',
          object: ref,
          message: `skipped: ${first} has the same name, and our pools are cluster-scoped; rename one and convert again`,
        });
        continue;
      }
      seen.set(converted.pool.metadata.name!, ref);
      pools.push(converted.pool);
      if (!converted.pinned) unpinned++;
      else if (converted.pool.spec.priority === undefined) pinnedWithoutPriority.push(ref);
    } else if (group === METALLB_GROUP && ANNOUNCING_KINDS.has(kind)) {
      notes.push({
        severity: 'info',
        object: ref,
        message:
          'skipped: announcing the addresses (ARP/NDP, BGP) stays with your data plane (kube-vip, a router); ours only assigns them',
      });
    } else if (group === METALLB_GROUP) {
      notes.push({ severity: 'info', object: ref, message: 'skipped: no address pool configuration in it' });
    } else if (apiVersion === 'v1' && kind === 'Service') {
      notes.push(...serviceRenames(obj, ref));
    } else if (apiVersion === 'v1' && kind === 'ConfigMap' && isLegacyConfig(obj)) {
      notes.push({
        severity: 'warning',
        object: ref,
        message:
          'skipped: MetalLB configuration before 0.13 (a ConfigMap); convert it to IPAddressPools with MetalLB first',
      });
    } else {
      notes.push({ severity: 'info', object: ref, message: 'skipped: not a MetalLB object' });
    }
  }

  if (unpinned > 0) {
    for (const ref of pinnedWithoutPriority) {
      notes.push({
        severity: 'info',
        object: ref,
        message:
          'MetalLB tries this pool before pools without a serviceAllocation for the Services it selects; ours orders pools by priority, then name: give it a priority to keep that order',
      });
    }
  }
  for (const { metallb, ours } of ANNOTATION_RENAMES) {
    notes.push({
      severity: 'info',
      message: `Services: rename annotation metallb.io/${metallb} (or metallb.universe.tf/${metallb}) to ${ours}`,
    });
  }
  return { pools, notes };
}

/** The objects of the documents: null documents dropped, `List` / `*List` items spread. */
function flatten(documents: readonly unknown[]): Obj[] {
  const out: Obj[] = [];
  for (const [i, doc] of documents.entries()) {
    if (doc === null || doc === undefined) continue;
    if (!isObj(doc)) throw new InputError(`document ${i + 1} of the input is not a Kubernetes object`);
    if (typeof doc.kind === 'string' && doc.kind.endsWith('List') && Array.isArray(doc.items)) {
      for (const item of doc.items) {
        if (!isObj(item))
          throw new InputError(`document ${i + 1}: an item of the ${doc.kind} is not an object`);
        out.push(item);
      }
    } else {
      out.push(doc);
    }
  }
  return out;
}

function describe(kind: string, obj: Obj): string {
  const meta = isObj(obj.metadata) ? obj.metadata : {};
  const name = typeof meta.name === 'string' ? meta.name : '<no name>';
  return typeof meta.namespace === 'string' && meta.namespace !== ''
    ? `${kind} ${meta.namespace}/${name}`
    : `${kind} ${name}`;
}

function convertPool(obj: Obj, ref: string, notes: Note[]): { pool: LoadBalancerIPPool; pinned: boolean } {
  const meta = isObj(obj.metadata) ? obj.metadata : {};
  if (typeof meta.name !== 'string' || meta.name === '')
    throw new InputError(`${ref}: metadata.name is missing`);
  const spec = isObj(obj.spec) ? obj.spec : {};
  const addresses = spec.addresses;
  if (!Array.isArray(addresses) || addresses.length === 0 || !addresses.every((a) => typeof a === 'string')) {
    throw new InputError(`${ref}: spec.addresses must be a non-empty list of strings`);
  }

  const out: LoadBalancerIPPoolSpec = {
    addresses: addresses.map((a: string) => convertAddress(a, ref, notes)),
  };
  if (spec.autoAssign !== undefined) out.autoAssign = bool(spec.autoAssign, `${ref}: spec.autoAssign`);
  if (spec.avoidBuggyIPs !== undefined)
    out.avoidBuggyIPs = bool(spec.avoidBuggyIPs, `${ref}: spec.avoidBuggyIPs`);

  let pinned = false;
  if (spec.serviceAllocation !== undefined && spec.serviceAllocation !== null) {
    const alloc = spec.serviceAllocation;
    if (!isObj(alloc)) throw new InputError(`${ref}: spec.serviceAllocation must be an object`);
    const where = `${ref}: spec.serviceAllocation`;

    const namespaces = list(alloc.namespaces, `${where}.namespaces`);
    if (!namespaces.every((n) => typeof n === 'string')) {
      throw new InputError(`${where}.namespaces must be a list of strings`);
    }
    const namespaceSelectors = list(alloc.namespaceSelectors, `${where}.namespaceSelectors`).map((s, i) =>
      selector(s, `${where}.namespaceSelectors[${i}]`),
    );
    const serviceSelectors = list(alloc.serviceSelectors, `${where}.serviceSelectors`).map((s, i) =>
      selector(s, `${where}.serviceSelectors[${i}]`),
    );
    pinned = namespaces.length + namespaceSelectors.length + serviceSelectors.length > 0;

    // MetalLB: a namespace in `namespaces` or matching any namespace selector; a Service matching
    // any service selector. Ours: one selector each, so the first is kept and the rest named.
    const nsChoices: Choice[] = [
      ...(namespaces.length > 0
        ? [
            {
              what: `namespaces ${JSON.stringify(namespaces)}`,
              selector: {
                matchExpressions: [{ key: NAMESPACE_NAME_LABEL, operator: 'In', values: [...namespaces] }],
              },
            },
          ]
        : []),
      ...namespaceSelectors.map((s, i) => ({
        what: `namespaceSelectors[${i}] ${JSON.stringify(s)}`,
        selector: s,
      })),
    ];
    const svcChoices: Choice[] = serviceSelectors.map((s, i) => ({
      what: `serviceSelectors[${i}] ${JSON.stringify(s)}`,
      selector: s,
    }));
    for (const [field, choices, whom, plural] of [
      ['namespaceSelector', nsChoices, 'a namespace', 'namespaces'],
      ['serviceSelector', svcChoices, 'a Service', 'Services'],
    ] as const) {
      if (choices.length === 0) continue;
      out[field] = choices[0].selector;
      if (choices.length === 1) continue;
      notes.push({
        severity: 'warning',
        object: ref,
        message:
          `serviceAllocation: MetalLB takes ${whom} matching any of ${choices.length}: ${choices.map((c) => c.what).join(', ')}; ` +
          `ours has one ${field}: kept ${choices[0].what}; not converted: ${choices
            .slice(1)
            .map((c) => c.what)
            .join(
              ', ',
            )}. The pool now serves fewer ${plural} than under MetalLB: merge them into one selector or split the pool`,
      });
    }

    const priority = alloc.priority;
    if (priority !== undefined && priority !== null && priority !== 0) {
      if (typeof priority === 'number' && Number.isInteger(priority) && priority > 0) {
        out.priority = priority;
      } else {
        notes.push({
          severity: 'warning',
          object: ref,
          message: `serviceAllocation.priority ${JSON.stringify(priority)} is not a positive integer; left unset (no priority)`,
        });
      }
    }
  }

  const pool: LoadBalancerIPPool = {
    apiVersion: POOL_API_VERSION,
    kind: POOL_KIND,
    metadata: { name: meta.name, ...(isObj(meta.labels) ? { labels: stringMap(meta.labels, ref) } : {}) },
    spec: out,
  };
  return { pool, pinned };
}

function bool(v: unknown, where: string): boolean {
  if (typeof v !== 'boolean') throw new InputError(`${where} must be true or false`);
  return v;
}

function list(v: unknown, where: string): unknown[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new InputError(`${where} must be a list`);
  return v;
}

function stringMap(v: Obj, where: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, value] of Object.entries(v)) {
    if (typeof value !== 'string') throw new InputError(`${where}: the value of ${k} must be a string`);
    out[k] = value;
  }
  return out;
}

/** A LabelSelector as written (matchLabels, matchExpressions), shapes checked. */
function selector(v: unknown, where: string): V1LabelSelector {
  if (!isObj(v)) throw new InputError(`${where} must be a label selector`);
  const out: V1LabelSelector = {};
  if (v.matchLabels !== undefined && v.matchLabels !== null) {
    if (!isObj(v.matchLabels)) throw new InputError(`${where}.matchLabels must be a map`);
    out.matchLabels = stringMap(v.matchLabels, `${where}.matchLabels`);
  }
  if (v.matchExpressions !== undefined && v.matchExpressions !== null) {
    out.matchExpressions = list(v.matchExpressions, `${where}.matchExpressions`).map((e, i) => {
      const at = `${where}.matchExpressions[${i}]`;
      if (!isObj(e) || typeof e.key !== 'string' || typeof e.operator !== 'string') {
        throw new InputError(`${at} must have a key and an operator`);
      }
      const req: V1LabelSelectorRequirement = { key: e.key, operator: e.operator };
      if (e.values !== undefined && e.values !== null) {
        const values = list(e.values, `${at}.values`);
        if (!values.every((x) => typeof x === 'string')) throw new InputError(`${at}.values must be strings`);
        req.values = values;
      }
      return req;
    });
  }
  return out;
}

/**
 * One address entry as our CRD takes it: spaces around it and around a range's "-" dropped and a
 * CIDR's host bits cleared (MetalLB reads both that way). Anything our CRD would refuse is copied
 * as is, with a warning.
 */
function convertAddress(entry: string, ref: string, notes: Note[]): string {
  const trimmed = entry.trim();
  let out: string | undefined;
  if (trimmed.includes('-')) {
    const parts = trimmed.split('-').map((p) => p.trim());
    const [a, b] = parts.map(parseAddress);
    if (parts.length === 2 && a && b && a.family === b.family && compare(a, b) <= 0) out = parts.join('-');
  } else {
    const network = cidrNetwork(trimmed);
    if (network !== undefined && network !== trimmed) {
      notes.push({
        severity: 'info',
        object: ref,
        message: `address ${JSON.stringify(entry)} has host bits set; MetalLB uses its network, written as ${JSON.stringify(network)}`,
      });
      return network;
    }
    out = network;
  }
  if (out === undefined) {
    notes.push({
      severity: 'warning',
      object: ref,
      message: `address ${JSON.stringify(entry)} is neither a CIDR nor a range of two addresses of one family (the first not after the last); copied as is, and the API server will refuse the pool until it is fixed`,
    });
    return entry;
  }
  if (out !== entry) {
    notes.push({
      severity: 'info',
      object: ref,
      message: `address ${JSON.stringify(entry)} written as ${JSON.stringify(out)}`,
    });
  }
  return out;
}

interface Address {
  family: 4 | 6;
  bytes: number[];
}

/** An address as our CRD's CEL `ip()` takes it: dotted decimal IPv4 without leading zeros, IPv6 without zone or IPv4 mapping. */
function parseAddress(text: string): Address | undefined {
  if (!text.includes(':')) {
    if (!/^(0|[1-9]\d{0,2})(\.(0|[1-9]\d{0,2})){3}$/.test(text)) return undefined;
    const bytes = text.split('.').map(Number);
    return bytes.every((b) => b <= 255) ? { family: 4, bytes } : undefined;
  }
  if (text.includes('%') || !ipaddr.IPv6.isValid(text)) return undefined;
  const ip = ipaddr.IPv6.parse(text);
  return ip.isIPv4MappedAddress() ? undefined : { family: 6, bytes: ip.toByteArray() };
}

const compare = (a: Address, b: Address): number => {
  for (let i = 0; i < a.bytes.length; i++) if (a.bytes[i] !== b.bytes[i]) return a.bytes[i] - b.bytes[i];
  return 0;
};

/** The CIDR with its host bits cleared (`text` itself when none are set), undefined when it is not a CIDR. */
function cidrNetwork(text: string): string | undefined {
  const slash = text.indexOf('/');
  if (slash < 0) return undefined;
  const addr = parseAddress(text.slice(0, slash));
  const prefixText = text.slice(slash + 1);
  if (addr === undefined || !/^(0|[1-9]\d{0,2})$/.test(prefixText)) return undefined;
  const prefix = Number(prefixText);
  if (prefix > addr.bytes.length * 8) return undefined;
  // The bits of byte i past the prefix.
  const hostBits = (i: number): number => 0xff >> Math.min(8, Math.max(0, prefix - i * 8));
  if (addr.bytes.every((byte, i) => (byte & hostBits(i)) === 0)) return text;
  const network = addr.bytes.map((byte, i) => byte & ~hostBits(i) & 0xff);
  const ip = ipaddr.fromByteArray(network);
  return `${ip instanceof ipaddr.IPv6 ? ip.toRFC5952String() : ip.toString()}/${prefix}`;
}

/** `Service ns/name: set ours=value` for each MetalLB annotation it carries. */
function serviceRenames(svc: Obj, ref: string): Note[] {
  const meta = isObj(svc.metadata) ? svc.metadata : {};
  const annotations = isObj(meta.annotations) ? meta.annotations : {};
  const notes: Note[] = [];
  for (const { metallb, ours } of ANNOTATION_RENAMES) {
    for (const prefix of METALLB_ANNOTATION_PREFIXES) {
      const value = annotations[prefix + metallb];
      if (typeof value !== 'string') continue;
      notes.push({
        severity: 'warning',
        object: ref,
        message: `set annotation ${ours}=${JSON.stringify(value)} (it has ${prefix + metallb}, which ours does not read)`,
      });
    }
  }
  return notes;
}

function isLegacyConfig(cm: Obj): boolean {
  const data = isObj(cm.data) ? cm.data : {};
  return typeof data.config === 'string' && data.config.includes('address-pools');
}
