/**
 * IP address text as Kubernetes reads and writes it.
 *
 * kube-controller-manager parses every IP its endpoint controllers copy (pod IPs into Endpoints
 * and EndpointSlices, Endpoints addresses into mirrored slices) with k8s.io/utils/net's
 * `ParseIPSloppy` and writes `net.IP.String()` of the result (Kubernetes 1.36:
 * endpoints_controller.go `podToEndpointAddressForService`, k8s.io/endpointslice utils.go
 * `getEndpointAddresses`, endpointslicemirroring utils.go `addressToEndpoint`). `canonicalIP` is
 * that round trip:
 * - accepted is what `ParseIPSloppy` accepts, which is Go 1.16's `net.ParseIP`: four-part
 *   dotted-decimal IPv4 whose parts may carry leading zeros, read as decimal (`010.001.002.003`
 *   is 10.1.2.3; Go's own `net.ParseIP` rejects those since Go 1.17, Kubernetes kept them for
 *   stored values), and IPv6 with at most one `::`, optionally ending in such an IPv4. Rejected:
 *   hex, octal or fewer-part IPv4 (which ipaddr.js's `parse` would take), zones (`%eth0`),
 *   anything else;
 * - the text is IPv4 dotted decimal for an IPv4 or IPv4-mapped IPv6 address (`::ffff:1.2.3.4` is
 *   `1.2.3.4`, of type IPv4), else IPv6 per RFC 5952: lower case, no leading zeros, the longest
 *   run of two or more zero groups (the first of equal runs) as `::`.
 *
 * Parsing and formatting are ipaddr.js's; the only text handled here is the IPv4 part's leading
 * zeros and the IPv4 tail of an IPv6 address, which ipaddr.js reads differently from Go (octal,
 * hex, and `::1.2.3.4` taken as `::ffff:1.2.3.4`). Pure.
 */
import ipaddr from 'ipaddr.js';

export type IPFamily = 'IPv4' | 'IPv6';

export interface CanonicalIP {
  /** The address as `net.IP.String()` writes it. */
  address: string;
  type: IPFamily;
}

/**
 * The family of an address or CIDR already in canonical text (as `canonicalIP` writes it): IPv6
 * text always has a colon, IPv4 never.
 */
export function familyOfText(text: string): IPFamily {
  return text.includes(':') ? 'IPv6' : 'IPv4';
}

/**
 * Answers of `canonicalIP` by input text (null: not an IP). Every sync of a Service reads every
 * pod IP it selects: parsing them each time was a fifth of a 10,000-pod Service's sync
 * (docs/PERFORMANCE.md section 11). Cleared when it reaches MEMO_LIMIT entries, so it holds at
 * most that many strings whatever the cluster's churn.
 */
const memo = new Map<string, Readonly<CanonicalIP> | null>();
const MEMO_LIMIT = 1 << 17;

/**
 * The canonical text and family of `text`, or undefined when Kubernetes would not read it as an IP.
 * The answer is frozen and may be shared between calls.
 */
export function canonicalIP(text: string | undefined): Readonly<CanonicalIP> | undefined {
  if (text === undefined || text === '') return undefined;
  const known = memo.get(text);
  if (known !== undefined) return known ?? undefined;
  const answer = parseCanonicalIP(text);
  if (memo.size >= MEMO_LIMIT) memo.clear();
  memo.set(text, answer === undefined ? null : Object.freeze(answer));
  return answer;
}

function parseCanonicalIP(text: string): CanonicalIP | undefined {
  if (!text.includes(':')) {
    const ip = parseDecimalIPv4(text);
    return ip === undefined ? undefined : { address: ip.toString(), type: 'IPv4' };
  }
  const ip = parseIPv6(text);
  if (ip === undefined) return undefined;
  if (ip.isIPv4MappedAddress()) return { address: ip.toIPv4Address().toString(), type: 'IPv4' };
  return { address: ip.toRFC5952String(), type: 'IPv6' };
}

/** Four-part dotted decimal, leading zeros allowed and read as decimal (Go 1.16 `parseIPv4`). */
function parseDecimalIPv4(text: string): ipaddr.IPv4 | undefined {
  // ipaddr.js reads a leading 0 as octal; Go 1.16 ignored it. Dropping it first leaves
  // ipaddr.js's four-part-decimal check to accept or reject the rest.
  const decimal = text
    .split('.')
    .map((part) => part.replace(/^0+(?=\d)/, ''))
    .join('.');
  return ipaddr.IPv4.isValidFourPartDecimal(decimal) ? ipaddr.IPv4.parse(decimal) : undefined;
}

/**
 * IPv6 as Go 1.16 `parseIPv6` reads it: hex groups of any length up to 0xffff (`00001` is 1), at
 * most one `::`, an IPv4 tail only in place of the last two groups, no zone.
 */
function parseIPv6(text: string): ipaddr.IPv6 | undefined {
  if (text.includes('%')) return undefined;
  const groups = text.split(':');
  const last = groups.length - 1;
  if (groups.slice(0, last).some((group) => group.includes('.'))) return undefined;
  if (groups[last].includes('.')) {
    // The IPv4 tail becomes its two hex groups, so ipaddr.js checks one plain IPv6 form.
    const tail = parseDecimalIPv4(groups[last]);
    if (tail === undefined) return undefined;
    const [hi, lo] = tail.toIPv4MappedAddress().parts.slice(6);
    groups.splice(last, 1, hi.toString(16), lo.toString(16));
  }
  // ipaddr.js takes at most four hex digits a group; Go 1.16 ignored extra leading zeros.
  const plain = groups.map((group) => group.replace(/^0+(?=[0-9a-f])/i, '')).join(':');
  return ipaddr.IPv6.isValid(plain) ? ipaddr.IPv6.parse(plain) : undefined;
}
