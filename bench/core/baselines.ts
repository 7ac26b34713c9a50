// The baselines ipwarden is compared with, each answering the same question from the same
// address strings: a naive linear scan (our parser, then every rule tried), Node's
// net.BlockList (its own parser, then its own scan), and the floor: one Map.get per query.

import net from 'node:net';
import type { Order } from '../../src/core/acl.ts';
import { parseIpInto } from '../../src/core/ip.ts';
import type { Rule } from './rules.ts';

function maskOf(keep: number): number {
  if (keep >= 32) return 0xffffffff;
  if (keep <= 0) return 0;
  return (0xffffffff << (32 - keep)) >>> 0;
}

/** Rules flattened into typed arrays and scanned one by one: the most specific holding rule. */
export class NaiveScan {
  private readonly net4: Uint32Array;
  private readonly mask4: Uint32Array;
  private readonly prefix4: Uint8Array;
  private readonly index4: Int32Array;
  private readonly net6: Uint32Array;
  private readonly mask6: Uint32Array;
  private readonly prefix6: Uint8Array;
  private readonly index6: Int32Array;
  /** Index of a 0.0.0.0/0 rule, which also holds IPv6 sources (api.md §4), or -1. */
  private readonly everything: number;

  constructor(rules: readonly Rule[]) {
    const v4 = rules.map((r, i) => [r, i] as const).filter(([r]) => r.family === 4);
    const v6 = rules.map((r, i) => [r, i] as const).filter(([r]) => r.family === 6);
    this.net4 = Uint32Array.from(v4, ([r]) => r.words[0]!);
    this.mask4 = Uint32Array.from(v4, ([r]) => maskOf(r.prefix));
    this.prefix4 = Uint8Array.from(v4, ([r]) => r.prefix);
    this.index4 = Int32Array.from(v4, ([, i]) => i);
    this.net6 = Uint32Array.from(v6.flatMap(([r]) => r.words));
    this.mask6 = Uint32Array.from(v6.flatMap(([r]) => [0, 1, 2, 3].map((w) => maskOf(r.prefix - 32 * w))));
    this.prefix6 = Uint8Array.from(v6, ([r]) => r.prefix);
    this.index6 = Int32Array.from(v6, ([, i]) => i);
    this.everything = v4.find(([r]) => r.prefix === 0)?.[1] ?? -1;
  }

  lookup4(address: number): number {
    let best = -1;
    let bestPrefix = -1;
    for (let i = 0; i < this.net4.length; i++) {
      if (((address & this.mask4[i]!) >>> 0) === this.net4[i] && this.prefix4[i]! > bestPrefix) {
        best = this.index4[i]!;
        bestPrefix = this.prefix4[i]!;
      }
    }
    return best;
  }

  lookup6(w: Uint32Array): number {
    let best = -1;
    let bestPrefix = -1;
    const nets = this.net6;
    const masks = this.mask6;
    for (let i = 0, b = 0; i < this.prefix6.length; i++, b += 4) {
      if (
        ((w[0]! & masks[b]!) >>> 0) === nets[b] &&
        ((w[1]! & masks[b + 1]!) >>> 0) === nets[b + 1] &&
        ((w[2]! & masks[b + 2]!) >>> 0) === nets[b + 2] &&
        ((w[3]! & masks[b + 3]!) >>> 0) === nets[b + 3] &&
        this.prefix6[i]! > bestPrefix
      ) {
        best = this.index6[i]!;
        bestPrefix = this.prefix6[i]!;
      }
    }
    return best >= 0 ? best : this.everything;
  }
}

const scratch = new Uint32Array(4);

/** Parses the source (our parser, as ours does) and scans: index of the holding rule or -1. */
export function naiveLookup(scan: NaiveScan, ip: string): number {
  const family = parseIpInto(ip, scratch);
  if (family === 4) return scan.lookup4(scratch[0]!);
  if (family === 6) return scan.lookup6(scratch);
  return -1;
}

export function blockListOf(rules: readonly Rule[]): net.BlockList {
  const list = new net.BlockList();
  for (const r of rules) {
    const [address, prefix] = r.text.split('/');
    const family = r.family === 4 ? 'ipv4' : 'ipv6';
    if (prefix === undefined) list.addAddress(address!, family);
    else list.addSubnet(address!, Number(prefix), family);
  }
  return list;
}

/** net.BlockList needs the family up front; finding it is part of the work. */
export function blockListCheck(list: net.BlockList, ip: string): boolean {
  return list.check(ip, ip.indexOf(':') >= 0 ? 'ipv6' : 'ipv4');
}

// ---- Per-account decisions (question b) built from the baselines ---------------------------------

export interface BaselineList<T> {
  readonly order: Order;
  readonly rules: T;
}

export interface BaselineAccount<T> {
  readonly list: BaselineList<T> | undefined;
  readonly devices: Map<string, BaselineList<T> | undefined>;
}

/** api.md §4 for one list, with `holds` answering "is the source in the list". */
function allowsBy<T>(list: BaselineList<T> | undefined, holds: (rules: T) => boolean): boolean {
  if (list === undefined) return true;
  return holds(list.rules) === (list.order === 'allow,deny');
}

export function naiveAllows(accounts: Map<string, BaselineAccount<NaiveScan>>, accountId: string, deviceId: string | undefined, ip: string): boolean {
  const account = accounts.get(accountId);
  if (account === undefined) return false;
  const family = parseIpInto(ip, scratch);
  if (family === 0) return false;
  const holds = (scan: NaiveScan) => (family === 4 ? scan.lookup4(scratch[0]!) : scan.lookup6(scratch)) >= 0;
  if (!allowsBy(account.list, holds)) return false;
  return deviceId === undefined || allowsBy(account.devices.get(deviceId), holds);
}

export function blockListAllows(accounts: Map<string, BaselineAccount<net.BlockList>>, accountId: string, deviceId: string | undefined, ip: string): boolean {
  const account = accounts.get(accountId);
  if (account === undefined) return false;
  const family = ip.indexOf(':') >= 0 ? 'ipv6' : 'ipv4';
  const holds = (list: net.BlockList) => list.check(ip, family);
  if (!allowsBy(account.list, holds)) return false;
  return deviceId === undefined || allowsBy(account.devices.get(deviceId), holds);
}
