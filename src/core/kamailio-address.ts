// Kamailio's `permissions` address file (api.md §9): one record a line, `grp ip mask port tag`,
// whitespace-separated; `#` starts a comment; mask, port and tag may be left off. Read the way
// the module reads it (permissions/address.c): mask 0 or absent means the whole address (/32,
// /128), port 0 matches every port, and within a group the first matching subnet wins.

import { formatCidr, parseCidr, type Cidr } from './ip.ts';

export interface KamailioAddress {
  group: number;
  /** The block the record covers (Kamailio's `ip` and `mask`). */
  cidr: Cidr;
  /** 0: any port. */
  port: number;
  /** Absent when the record has none. */
  tag?: string;
}

export interface KamailioAddressLine extends KamailioAddress {
  /** 1-based line number in the file. */
  line: number;
}

export interface KamailioAddressError {
  line: number;
  text: string;
  reason: string;
}

export interface KamailioAddressFile {
  records: KamailioAddressLine[];
  errors: KamailioAddressError[];
}

/** Kamailio reads each line into a 1024-byte buffer: a longer line is split, so refuse it. */
const MAX_LINE = 1022;
const NUMBER = /^[0-9]+$/;

function parseRecord(fields: string[]): KamailioAddress | string {
  const [group, ip, mask, port, tag, ...rest] = fields;
  if (rest.length > 0) return `${fields.length} fields; a record is at most 'grp ip mask port tag'`;
  if (!NUMBER.test(group!)) return `group '${group}' is not a whole number`;
  if (Number(group) === 0 || Number(group) > 0xffffffff) return `group '${group}' must be from 1 to 4294967295`;
  if (ip === undefined) return 'no address after the group';
  if (ip.includes('/')) return `address '${ip}' holds a '/': give the prefix length in the mask field`;
  if (mask !== undefined && !NUMBER.test(mask)) return `mask '${mask}' is not a whole number`;
  if (port !== undefined && (!NUMBER.test(port) || Number(port) > 65535)) return `port '${port}' is not a port number (0 to 65535)`;
  const bare = ip.startsWith('[') && ip.endsWith(']') ? ip.slice(1, -1) : ip;
  const host = parseCidr(bare);
  if (!host.ok) return `address '${ip}' is not an IPv4 or IPv6 address (host names are not taken)`;
  const bits = bare.includes(':') ? 128 : 32;
  const prefix = mask === undefined || Number(mask) === 0 ? bits : Number(mask);
  if (prefix > bits) return `mask ${mask} is longer than ${bits} bits`;
  const parsed = parseCidr(`${bare}/${prefix}`);
  if (!parsed.ok) return parsed.problem === 'host_bits_set' ? `${bare}/${prefix} has host bits set: ${parsed.message.replace(/^host bits are set: /, '')}` : parsed.message;
  return { group: Number(group), cidr: parsed.cidr, port: Number(port ?? 0), ...(tag === undefined ? {} : { tag }) };
}

/**
 * Every record of an address file, and every line that is not one, with its number and why.
 * A blank or comment line is neither.
 */
export function parseKamailioAddress(text: string): KamailioAddressFile {
  const records: KamailioAddressLine[] = [];
  const errors: KamailioAddressError[] = [];
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  lines.forEach((raw, i) => {
    const line = i + 1;
    const body = raw.split('#')[0]!.trim();
    if (body === '') return;
    if (raw.length > MAX_LINE) {
      errors.push({ line, text: raw, reason: `longer than ${MAX_LINE} characters (Kamailio reads at most that much of a line)` });
      return;
    }
    const record = parseRecord(body.split(/[ \t\r]+/));
    if (typeof record === 'string') errors.push({ line, text: raw, reason: record });
    else records.push({ line, ...record });
  });
  return { records, errors };
}

/** A tag Kamailio reads back whole: no whitespace, no `#`. */
export function isWritableTag(tag: string): boolean {
  return tag !== '' && !/[\s#]/.test(tag);
}

/**
 * The file's text, longest prefix first within each group so the first subnet Kamailio matches
 * is the most specific one (the order ipwarden decides in), then by address for a stable diff.
 */
export function formatKamailioAddress(records: readonly KamailioAddress[]): string {
  const sorted = [...records].sort((a, b) => a.group - b.group || b.cidr.prefix - a.cidr.prefix || formatCidr(a.cidr).localeCompare(formatCidr(b.cidr)));
  return sorted
    .map((r) => {
      const [ip, mask] = formatCidr(r.cidr).split('/');
      if (r.tag !== undefined && !isWritableTag(r.tag)) throw new Error(`tag '${r.tag}' cannot be written to a Kamailio address file`);
      return `${r.group} ${ip} ${mask} ${r.port}${r.tag === undefined ? '' : ` ${r.tag}`}\n`;
    })
    .join('');
}
