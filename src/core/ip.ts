// IPv4 and IPv6 addresses and CIDRs: one representation for the whole product (api.md §1).
// IPv4 is one unsigned 32-bit number; IPv6 is four big-endian 32-bit words. `::ffff:a.b.c.d`
// is IPv4 wherever it appears. The `parseInto` primitives write into a caller's scratch array so
// that the decision hot path parses without allocating.

export type Family = 4 | 6;
export type Words = readonly [number, number, number, number];

export type Ip =
  | { readonly family: 4; readonly value: number }
  | { readonly family: 6; readonly words: Words };

export interface Cidr {
  readonly network: Ip;
  readonly prefix: number;
}

const groups = new Int32Array(8);

/** Is `d` (a character code minus 48) a decimal digit? */
function isDigit(d: number): boolean {
  return d >= 0 && d <= 9;
}

/**
 * Strict dotted decimal: four octets 0–255, no leading zeros, no shorthand. -1 when invalid.
 * This is on every decision's path, and reading a character (`charCodeAt`) is its cost: each
 * octet is read as one to three digits in straight-line code, every character once, with no
 * per-character bookkeeping, and the end is checked only where a read could pass it (each
 * measurably cheaper: docs/performance.md, "Figures behind the code").
 */
export function parseIPv4Number(text: string, start = 0, end = text.length): number {
  if (end - start < 7 || end - start > 15) return -1;
  let value = 0;
  let i = start;
  for (let part = 0; part < 4; part++) {
    if (part > 0) {
      if (i >= end || text.charCodeAt(i) !== 46) return -1;
      i++;
    }
    if (i >= end) return -1;
    let octet = text.charCodeAt(i++) - 48;
    if (!isDigit(octet)) return -1;
    if (i < end) {
      let d = text.charCodeAt(i) - 48;
      if (isDigit(d)) {
        if (octet === 0) return -1; // a leading zero
        octet = octet * 10 + d;
        if (++i < end) {
          d = text.charCodeAt(i) - 48;
          if (isDigit(d)) {
            octet = octet * 10 + d;
            if (octet > 255) return -1;
            i++;
          }
        }
      }
    }
    value = (value << 8) | octet;
  }
  return i === end ? value >>> 0 : -1;
}

/** Hex digit values by character code (< 128), -1 for anything else. */
const HEX = new Int8Array(128).fill(-1);
for (let d = 0; d < 10; d++) HEX[48 + d] = d;
for (let d = 0; d < 6; d++) HEX[65 + d] = HEX[97 + d] = 10 + d;

/** The value of hex digit character `code`, or -1: one table load instead of range tests. */
function hexOf(code: number): number {
  return code < 128 ? HEX[code]! : -1;
}

/**
 * Parses any RFC 4291 text form of `text[start, end)` into `out[0..3]`. Zone ids (`%eth0`) are
 * refused: an ACL cannot mean a link-local interface. Returns false when invalid.
 * Every character is read once (`c` carries it from one step to the next): reading is the
 * parse's cost, separators included.
 */
function parseIPv6Into(text: string, out: Uint32Array, start = 0, end = text.length): boolean {
  if (end - start < 2 || end - start > 45) return false;
  let count = 0;
  let gap = -1;
  let i = start;
  let c = text.charCodeAt(i);
  if (c === 58) {
    if (text.charCodeAt(i + 1) !== 58) return false;
    gap = 0;
    i += 2;
    if (i < end) c = text.charCodeAt(i);
  }
  while (i < end) {
    if (count === 8) return false;
    const first = i;
    let group = 0;
    let h = hexOf(c);
    while (h >= 0) {
      group = (group << 4) | h;
      if (++i === end) break;
      c = text.charCodeAt(i);
      h = hexOf(c);
    }
    const digits = i - first;
    if (i === end) {
      if (digits === 0 || digits > 4) return false;
      groups[count++] = group;
      break;
    }
    if (c === 46) {
      // An embedded IPv4 tail takes the last two groups.
      if (count > 6) return false;
      const v4 = parseIPv4Number(text, first, end);
      if (v4 < 0) return false;
      groups[count++] = v4 >>> 16;
      groups[count++] = v4 & 0xffff;
      break;
    }
    if (digits === 0 || digits > 4 || c !== 58) return false;
    groups[count++] = group;
    if (++i === end) return false; // a trailing single ':'
    c = text.charCodeAt(i);
    if (c === 58) {
      if (gap >= 0) return false;
      gap = count;
      if (++i < end) c = text.charCodeAt(i);
    }
  }
  if (gap < 0 ? count !== 8 : count > 7) return false;
  if (gap >= 0) expandGap(count, gap);
  out[0] = ((groups[0]! << 16) | groups[1]!) >>> 0;
  out[1] = ((groups[2]! << 16) | groups[3]!) >>> 0;
  out[2] = ((groups[4]! << 16) | groups[5]!) >>> 0;
  out[3] = ((groups[6]! << 16) | groups[7]!) >>> 0;
  return true;
}

/**
 * Turns the `count` groups parsed around a `::` (before group `gap`) into all eight: the groups
 * after the gap move to the end, the gap fills with zeros. No closures here or in the parser:
 * tsx's keepNames wraps each closure created per call in a defineProperty, which alone costs more
 * than the whole parse.
 */
function expandGap(count: number, gap: number): void {
  const tail = count - gap;
  for (let k = 1; k <= tail; k++) groups[8 - k] = groups[count - k]!;
  for (let k = gap; k < 8 - tail; k++) groups[k] = 0;
}

function isMappedIPv4(w: ArrayLike<number>): boolean {
  return w[0] === 0 && w[1] === 0 && w[2] === 0xffff;
}

/**
 * Parses an address into `out`: IPv4 (and `::ffff:a.b.c.d`) as out[0], IPv6 as out[0..3].
 * Returns the family, or 0 when the text is not an address. Allocates nothing.
 */
export function parseIpInto(text: string, out: Uint32Array): 0 | 4 | 6 {
  // An IPv6 text fails the IPv4 parse within its first five characters.
  const v4 = parseIPv4Number(text, 0, text.length);
  if (v4 >= 0) {
    out[0] = v4;
    return 4;
  }
  if (!parseIPv6Into(text, out, 0, text.length)) return 0;
  if (isMappedIPv4(out)) {
    out[0] = out[3]!;
    return 4;
  }
  return 6;
}

/**
 * A CIDR (or bare address) in network form, parsed without allocating: the network into
 * `out[0]` (IPv4) or `out[0..3]` (IPv6) and the prefix length into `out[4]`. Returns the family,
 * or 0 for anything `parseCidr` refuses (use it for the reason). `::ffff:a.b.c.d/n` is IPv4.
 */
export function parseCidrInto(text: string, out: Uint32Array): 0 | 4 | 6 {
  const length = text.length;
  let slash = text.indexOf('/');
  if (slash < 0) slash = length;
  let family: 4 | 6 = 4;
  let bits = 32;
  let offset = 0; // prefix bits before the IPv4 part of a mapped address
  const v4 = parseIPv4Number(text, 0, slash);
  if (v4 >= 0) out[0] = v4;
  else if (parseIPv6Into(text, out, 0, slash)) {
    bits = 128;
    if (isMappedIPv4(out)) {
      out[0] = out[3]!;
      offset = 96;
    } else family = 6;
  } else return 0;
  let prefix = bits;
  if (slash < length) {
    const digits = length - slash - 1;
    if (digits < 1 || digits > 3 || (digits > 1 && text.charCodeAt(slash + 1) === 48)) return 0;
    prefix = 0;
    for (let i = slash + 1; i < length; i++) {
      const d = text.charCodeAt(i) - 48;
      if (d < 0 || d > 9) return 0;
      prefix = prefix * 10 + d;
    }
    if (prefix > bits || prefix < offset) return 0;
  }
  prefix -= offset;
  const words = family === 4 ? 1 : 4;
  for (let w = 0; w < words; w++) if (maskWord(out[w]!, w, prefix) !== out[w]) return 0;
  out[4] = prefix;
  return family;
}

const scratch = new Uint32Array(4);

export function parseIp(text: string): Ip | null {
  const family = parseIpInto(text, scratch);
  if (family === 4) return { family: 4, value: scratch[0]! };
  if (family === 6) return { family: 6, words: [scratch[0]!, scratch[1]!, scratch[2]!, scratch[3]!] };
  return null;
}

export function formatIPv4(value: number): string {
  return `${value >>> 24}.${(value >>> 16) & 255}.${(value >>> 8) & 255}.${value & 255}`;
}

/** Group `i` (0–7) of an address's words. */
function hextet(words: Words, i: number): number {
  const word = words[i >> 1]!;
  return i & 1 ? word & 0xffff : word >>> 16;
}

/**
 * RFC 5952: lowercase, no leading zeros, the longest run (first on a tie) of 2+ zero groups as `::`.
 * No closure per call (see expandGap on tsx's keepNames).
 */
export function formatIPv6(words: Words): string {
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (hextet(words, i) !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && hextet(words, j) === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  // Joined rather than concatenated: join makes one flat string, `+=` a rope that every later
  // reader (a parse, a Map key) must first flatten.
  const parts: string[] = [];
  for (let i = 0; i < 8; i++) {
    if (i === bestStart) {
      if (i === 0) parts.push('');
      parts.push('');
      i += bestLength - 1;
      if (i === 7) parts.push('');
    } else {
      parts.push(hextet(words, i).toString(16));
    }
  }
  return parts.join(':');
}

export function formatIp(ip: Ip): string {
  return ip.family === 4 ? formatIPv4(ip.value) : formatIPv6(ip.words);
}

/** The canonical text of an address (RFC 5952 for IPv6, `::ffff:a.b.c.d` → `a.b.c.d`), or null. */
export function canonicalIp(text: string): string | null {
  const ip = parseIp(text);
  return ip ? formatIp(ip) : null;
}

export function bitsOf(family: Family): 32 | 128 {
  return family === 4 ? 32 : 128;
}

function maskWord(word: number, wordIndex: number, prefix: number): number {
  const keep = prefix - wordIndex * 32;
  if (keep >= 32) return word >>> 0;
  if (keep <= 0) return 0;
  return (word & (0xffffffff << (32 - keep))) >>> 0;
}

/** The network address of `ip` under `prefix` (host bits cleared). */
export function networkOf(ip: Ip, prefix: number): Ip {
  if (ip.family === 4) return { family: 4, value: maskWord(ip.value, 0, prefix) };
  const w = ip.words;
  return {
    family: 6,
    words: [maskWord(w[0], 0, prefix), maskWord(w[1], 1, prefix), maskWord(w[2], 2, prefix), maskWord(w[3], 3, prefix)],
  };
}

/** The last address of the block `ip`/`prefix`. */
export function broadcastOf(ip: Ip, prefix: number): Ip {
  const fill = (word: number, index: number) => (word | ~maskWord(0xffffffff, index, prefix)) >>> 0;
  if (ip.family === 4) return { family: 4, value: fill(ip.value, 0) };
  const w = ip.words;
  return { family: 6, words: [fill(w[0], 0), fill(w[1], 1), fill(w[2], 2), fill(w[3], 3)] };
}

/** The `index`-th word of `ip` (IPv4: its value, then zeros). */
function wordOf(ip: Ip, index: number): number {
  return ip.family === 4 ? (index === 0 ? ip.value : 0) : ip.words[index as 0 | 1 | 2 | 3];
}

/** Orders addresses of one family numerically; IPv4 sorts before IPv6. */
export function compareIp(a: Ip, b: Ip): number {
  if (a.family !== b.family) return a.family - b.family;
  for (let i = 0; i < 4; i++) {
    const x = wordOf(a, i);
    const y = wordOf(b, i);
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

export function sameIp(a: Ip, b: Ip): boolean {
  return compareIp(a, b) === 0;
}

/**
 * Do `a` and `b` (one family) share their first `prefix` bits? Compared word by word, nothing
 * allocated: a trunk entry's address is checked against every special-purpose range (a bulk
 * load's 1,000 entries made 2.5 MB of garbage here when each check built its networks).
 */
function samePrefix(a: Ip, b: Ip, prefix: number): boolean {
  if (a.family !== b.family) return false;
  for (let i = 0; i < (a.family === 4 ? 1 : 4); i++) if (maskWord(wordOf(a, i), i, prefix) !== maskWord(wordOf(b, i), i, prefix)) return false;
  return true;
}

export type CidrProblem = 'malformed' | 'prefix_out_of_range' | 'host_bits_set';

export type CidrParse =
  | { ok: true; cidr: Cidr }
  | { ok: false; problem: CidrProblem; message: string; network?: string };

/**
 * A CIDR (`a.b.c.d/n`, `x::/n`) or a bare address (= /32 or /128). Host bits set is refused
 * with the network form suggested. `::ffff:a.b.c.d/n` with n ≥ 96 is the IPv4 block /(n-96).
 */
export function parseCidr(text: string): CidrParse {
  const slash = text.indexOf('/');
  const address = slash < 0 ? text : text.slice(0, slash);
  const ip = parseIp(address);
  if (!ip) return { ok: false, problem: 'malformed', message: `'${text}' is not an IPv4 or IPv6 address or CIDR` };
  const mappedV6 = ip.family === 4 && address.indexOf(':') >= 0;
  const bits: number = mappedV6 ? 128 : bitsOf(ip.family);
  let prefix = bits;
  if (slash >= 0) {
    const digits = text.slice(slash + 1);
    if (!/^(0|[1-9][0-9]{0,2})$/.test(digits)) {
      return { ok: false, problem: 'malformed', message: `'${text}' has no valid prefix length after '/'` };
    }
    prefix = Number(digits);
    if (prefix > bits) {
      return { ok: false, problem: 'prefix_out_of_range', message: `prefix /${prefix} is longer than ${bits} bits` };
    }
  }
  if (mappedV6) {
    if (prefix < 96) {
      return { ok: false, problem: 'prefix_out_of_range', message: `an IPv4-mapped prefix must be /96 or longer` };
    }
    prefix -= 96;
  }
  const network = networkOf(ip, prefix);
  const cidr = { network, prefix };
  if (!sameIp(network, ip)) {
    const suggestion = formatCidr(cidr);
    return { ok: false, problem: 'host_bits_set', message: `host bits are set: did you mean ${suggestion}?`, network: suggestion };
  }
  return { ok: true, cidr };
}

export function formatCidr(cidr: Cidr): string {
  return `${formatIp(cidr.network)}/${cidr.prefix}`;
}

export function isHostCidr(cidr: Cidr): boolean {
  return cidr.prefix === bitsOf(cidr.network.family);
}

export function cidrContains(cidr: Cidr, ip: Ip): boolean {
  return samePrefix(cidr.network, ip, cidr.prefix);
}

/** Two blocks overlap exactly when one contains the other's network: they agree on the shorter prefix. */
export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  return samePrefix(a.network, b.network, Math.min(a.prefix, b.prefix));
}

function cidrOf(text: string): Cidr {
  const parsed = parseCidr(text);
  if (!parsed.ok) throw new Error(`bad built-in range ${text}`);
  return parsed.cidr;
}

export type RangeKind =
  | 'unspecified'
  | 'private'
  | 'shared_address_space'
  | 'loopback'
  | 'link_local'
  | 'ietf_protocol_assignments'
  | 'benchmarking'
  | 'multicast'
  | 'reserved'
  | 'broadcast'
  | 'unique_local'
  | 'documentation';

export interface SpecialRange {
  readonly cidr: Cidr;
  readonly text: string;
  readonly kind: RangeKind;
}

function range(text: string, kind: RangeKind): SpecialRange {
  return { cidr: cidrOf(text), text, kind };
}

/** Special-purpose ranges (IANA registries), most specific first within each family. */
export const SPECIAL_RANGES: readonly SpecialRange[] = [
  range('255.255.255.255/32', 'broadcast'),
  range('192.0.2.0/24', 'documentation'),
  range('198.51.100.0/24', 'documentation'),
  range('203.0.113.0/24', 'documentation'),
  range('192.0.0.0/24', 'ietf_protocol_assignments'),
  range('169.254.0.0/16', 'link_local'),
  range('192.168.0.0/16', 'private'),
  range('198.18.0.0/15', 'benchmarking'),
  range('172.16.0.0/12', 'private'),
  range('100.64.0.0/10', 'shared_address_space'),
  range('0.0.0.0/8', 'unspecified'),
  range('10.0.0.0/8', 'private'),
  range('127.0.0.0/8', 'loopback'),
  range('224.0.0.0/4', 'multicast'),
  range('240.0.0.0/4', 'reserved'),
  range('::/128', 'unspecified'),
  range('::1/128', 'loopback'),
  range('2001:db8::/32', 'documentation'),
  range('fe80::/10', 'link_local'),
  range('fc00::/7', 'unique_local'),
  range('ff00::/8', 'multicast'),
];

/** The most specific special-purpose range holding `ip`, or undefined for a public address. */
export function classifyIp(ip: Ip): SpecialRange | undefined {
  return SPECIAL_RANGES.find((r) => cidrContains(r.cidr, ip));
}

/** Every special-purpose range that shares at least one address with `cidr`. */
export function specialRangesOverlapping(cidr: Cidr): SpecialRange[] {
  return SPECIAL_RANGES.filter((r) => cidrsOverlap(r.cidr, cidr));
}
