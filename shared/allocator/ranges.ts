/**
 * The ranges an allocation bitmap covers, and the mapping between their values and bit offsets.
 *
 * - `IPRange`: a service CIDR. Offset 0 is the network address + 1. IPv4 leaves out the network
 *   and broadcast addresses (a /24 holds 254); IPv6 leaves out the network address and holds at
 *   most 65,536 values (the bitmap is kept whole in one object). IPv4 ranges may be as wide as a
 *   /12 (2^20 addresses, a 128 KiB bitmap), IPv6 as a /64.
 * - `PortRange`: a node port range such as `30000-32767`, offset 0 the first port.
 *
 * Each range also knows where its upper (dynamic) band starts; see bitmap.ts.
 * The address arithmetic is ip-cidr's (bounds, size) and ipaddr.js's (bytes <-> text); the text of
 * an address is always `canonicalIP`'s, the form the API server writes. Pure.
 */
import IPCIDR from 'ip-cidr';
import ipaddr from 'ipaddr.js';
import { canonicalIP, familyOfText, type IPFamily } from '../net/ip.ts';

export interface ValueRange<V> {
  /** The range as configured and stored: `10.0.0.0/24`, `30000-32767`. */
  readonly text: string;
  /** How many values the bitmap holds. */
  readonly size: number;
  /** The first offset of the upper band. */
  readonly bandOffset: number;
  /** The offset of `value`, undefined when it is outside the range (or not a value at all). */
  offsetOf(value: V): number | undefined;
  valueAt(offset: number): V;
  /** True when `value` is a usable value of the range that the map cannot hold (the IPv6 cap). */
  beyondCapacity?(value: V): boolean;
}

const IPV4_MIN_PREFIX = 12;
const IPV6_MIN_PREFIX = 64;
const IPV6_MAX_VALUES = 65_536;

export class IPRange implements ValueRange<string> {
  readonly text: string;
  readonly family: IPFamily;
  readonly size: number;
  readonly bandOffset: number;
  /** The address of offset 0 (network + 1), as an integer. */
  private readonly base: bigint;
  /** Usable addresses of the CIDR, before the IPv6 cap. */
  private readonly usable: bigint;
  private readonly byteCount: number;

  /** Throws a RangeError saying what is wrong with `cidr`. */
  constructor(cidr: string) {
    if (!IPCIDR.isValidCIDR(cidr)) throw new RangeError(`${JSON.stringify(cidr)} is not a CIDR`);
    const parsed = new IPCIDR(cidr);
    const family = familyOfText(cidr);
    const prefix = Number(cidr.slice(cidr.lastIndexOf('/') + 1));
    const network = parsed.start<bigint>({ type: 'bigInteger' });
    const networkText = canonicalIP(formatIP(network, family === 'IPv4' ? 4 : 16))?.address;
    this.text = `${networkText}/${prefix}`;
    if (this.text !== canonicalCidrText(cidr)) {
      throw new RangeError(`${cidr} has host bits set; the range is ${this.text}`);
    }
    const minPrefix = family === 'IPv4' ? IPV4_MIN_PREFIX : IPV6_MIN_PREFIX;
    if (prefix < minPrefix) {
      throw new RangeError(`${cidr} is too wide: an ${family} service range may be at most a /${minPrefix}`);
    }
    const total = parsed.size as bigint;
    const usable = family === 'IPv4' ? total - 2n : total - 1n;
    this.family = family;
    this.byteCount = family === 'IPv4' ? 4 : 16;
    this.usable = usable < 0n ? 0n : usable;
    const capped =
      family === 'IPv6' && this.usable > BigInt(IPV6_MAX_VALUES) ? BigInt(IPV6_MAX_VALUES) : this.usable;
    this.size = Number(capped);
    this.base = network + 1n;
    this.bandOffset = ipBandOffset(total, this.size);
  }

  offsetOf(ip: string): number | undefined {
    const parsed = canonicalIP(ip);
    if (parsed === undefined || parsed.type !== this.family) return undefined;
    const n = toBigInt(ipaddr.parse(parsed.address).toByteArray());
    const offset = n - this.base;
    return offset >= 0n && offset < BigInt(this.size) ? Number(offset) : undefined;
  }

  valueAt(offset: number): string {
    return canonicalIP(formatIP(this.base + BigInt(offset), this.byteCount))!.address;
  }

  /** True when `ip` is a usable address of the CIDR past the 65,536 an IPv6 map holds. */
  beyondCapacity(ip: string): boolean {
    const parsed = canonicalIP(ip);
    if (
      parsed === undefined ||
      parsed.type !== this.family ||
      !new IPCIDR(this.text).contains(parsed.address)
    )
      return false;
    const offset = toBigInt(ipaddr.parse(parsed.address).toByteArray()) - this.base;
    return offset >= BigInt(this.size) && offset < this.usable;
  }
}

export class PortRange implements ValueRange<number> {
  readonly text: string;
  readonly first: number;
  readonly last: number;
  readonly size: number;
  readonly bandOffset: number;

  /** `30000-32767` or a single port; throws a RangeError saying what is wrong. */
  constructor(text: string) {
    const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(text.trim());
    const first = m ? Number(m[1]) : NaN;
    const last = m ? Number(m[2] ?? m[1]) : NaN;
    if (!m || first < 1 || last > 65_535 || last < first) {
      throw new RangeError(`${JSON.stringify(text)} is not a port range like 30000-32767 (ports 1-65535)`);
    }
    this.first = first;
    this.last = last;
    this.text = `${first}-${last}`;
    this.size = last - first + 1;
    this.bandOffset = portBandOffset(this.size);
  }

  offsetOf(port: number): number | undefined {
    return Number.isInteger(port) && port >= this.first && port <= this.last ? port - this.first : undefined;
  }

  valueAt(offset: number): number {
    return this.first + offset;
  }

  /** `first-last` of the lower (static) band, or undefined when there is none. */
  staticBand(): string | undefined {
    return this.bandOffset === 0 ? undefined : `${this.first}-${this.first + this.bandOffset - 1}`;
  }
}

/** 0 for a CIDR of <= 16 addresses, else min(max(16, addresses / 16), 256), within the slots. */
export function ipBandOffset(addresses: bigint, slots: number): number {
  if (addresses <= 16n) return 0;
  const step = addresses / 16n;
  const offset = step < 16n ? 16 : step > 256n ? 256 : Number(step);
  return Math.min(offset, slots);
}

/** 0 for a range of <= 16 ports, else min(max(16, ports / 32), 128). */
export function portBandOffset(ports: number): number {
  if (ports <= 16) return 0;
  return Math.min(Math.max(16, Math.floor(ports / 32)), 128, ports);
}

function canonicalCidrText(cidr: string): string {
  const slash = cidr.lastIndexOf('/');
  return `${canonicalIP(cidr.slice(0, slash))?.address}/${Number(cidr.slice(slash + 1))}`;
}

function toBigInt(bytes: readonly number[]): bigint {
  let n = 0n;
  for (const b of bytes) n = (n << 8n) | BigInt(b);
  return n;
}

function formatIP(n: bigint, byteCount: number): string {
  const bytes = new Array<number>(byteCount);
  let rest = n;
  for (let i = byteCount - 1; i >= 0; i--) {
    bytes[i] = Number(rest & 0xffn);
    rest >>= 8n;
  }
  return ipaddr.fromByteArray(bytes).toString();
}
