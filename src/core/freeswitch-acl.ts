// FreeSWITCH's `acl.conf` network lists (api.md §9), both ways. FreeSWITCH decides a list so
// (switch_utils.c, switch_network_list_validate_ip*_token): the list's default, unless a node of
// the source's family matches, and then the node with the most bits wins; a /0 node never wins
// (it needs more than 0 bits); a source written with ':' is IPv6, `::ffff:a.b.c.d` included.
// ipwarden's lists (api.md §4) are translated so that FreeSWITCH gives the same verdict for every
// source wherever the list says "exact".

import { XMLParser } from 'fast-xml-parser';
import type { AccessList, Order, Verdict } from './acl.ts';
import { cidrsOverlap, formatCidr, formatIPv4, parseCidr, type Cidr } from './ip.ts';

export interface NetworkNode {
  type: Verdict;
  cidr: string;
}

export interface NetworkList {
  name: string;
  default: Verdict;
  nodes: NetworkNode[];
  /** XML comments: what the list cannot say. */
  notes: string[];
  /** FreeSWITCH gives ipwarden's verdict for every source. */
  exact: boolean;
}

const opposite = (v: Verdict): Verdict => (v === 'allow' ? 'deny' : 'allow');

/** `::ffff:a.b.c.d/96+p`: the same IPv4 block as FreeSWITCH sees it from an IPv6 socket. */
function mappedTwin(cidr: Cidr): string {
  return `::ffff:${formatIPv4((cidr.network as { value: number }).value)}/${96 + cidr.prefix}`;
}

/** The nodes that make FreeSWITCH match exactly the sources ipwarden's `cidrs` hold. */
function nodesMatching(cidrs: readonly Cidr[], inside: Verdict): NetworkNode[] {
  const nodes = new Map<string, Verdict>();
  let coversMapped = false;
  for (const cidr of cidrs) {
    if (cidr.network.family === 4) {
      nodes.set(formatCidr(cidr), inside);
      nodes.set(mappedTwin(cidr), inside);
    } else if (cidr.prefix === 0) {
      // A /0 node never matches in FreeSWITCH: its two halves do.
      nodes.set('::/1', inside).set('8000::/1', inside);
      coversMapped = true;
    } else {
      nodes.set(formatCidr(cidr), inside);
      if (covers(cidr)) coversMapped = true;
    }
  }
  // ipwarden matches `::ffff:a.b.c.d` as IPv4, never by an IPv6 block: a longer node of the
  // other verdict hands those sources back to the IPv4 twins (or to the default).
  if (coversMapped) nodes.set('::ffff:0.0.0.0/96', opposite(inside));
  return [...nodes].map(([cidr, type]) => ({ type, cidr }));
}

/** `::ffff:0:0/96` as an IPv6 block (parseCidr would read it as IPv4's 0.0.0.0/0). */
const MAPPED: Cidr = { network: { family: 6, words: [0, 0, 0xffff, 0] }, prefix: 96 };

/** Does an IPv6 block hold every IPv4-mapped address? */
const covers = (cidr: Cidr) => cidr.prefix <= MAPPED.prefix && cidrsOverlap(cidr, MAPPED);

/** One ipwarden access list as a FreeSWITCH network list. */
export function networkListOf(name: string, list: AccessList): NetworkList {
  const inside: Verdict = list.order === 'allow,deny' ? 'allow' : 'deny';
  const cidrs = list.cidrs.map((text) => parseCidr(text)).flatMap((p) => (p.ok ? [p.cidr] : []));
  const notes: string[] = [];
  if (list.user_agent !== undefined) {
    notes.push('not exact: this list has a user_agent pattern, which FreeSWITCH network lists cannot express; FreeSWITCH matches the addresses only');
  }
  // api.md §4: 0.0.0.0/0 holds every source, IPv6 included, so the list is its in-list verdict.
  const everything = cidrs.some((c) => c.network.family === 4 && c.prefix === 0);
  return {
    name,
    default: everything ? inside : opposite(inside),
    nodes: everything ? [] : nodesMatching(cidrs, inside),
    notes,
    exact: list.user_agent === undefined,
  };
}

/** Every active trunk entry: its addresses allowed, everyone else denied. */
export function trunkNetworkList(name: string, blocks: readonly string[]): NetworkList {
  const cidrs = blocks.map((text) => parseCidr(text)).flatMap((p) => (p.ok ? [p.cidr] : []));
  return { name, default: 'deny', nodes: nodesMatching(cidrs, 'allow'), notes: [], exact: true };
}

const escapeXml = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
/** An XML comment may not hold `--`. */
const comment = (text: string) => `<!-- ${text.replace(/-(?=-)/g, '- ')} -->`;

function listXml(list: NetworkList): string {
  const lines = [`        <list name="${escapeXml(list.name)}" default="${list.default}">`];
  lines.push(`          ${comment(list.exact ? 'ipwarden: exact' : 'ipwarden: inexact')}`);
  for (const note of list.notes) lines.push(`          ${comment(note)}`);
  for (const node of list.nodes) lines.push(`          <node type="${node.type}" cidr="${node.cidr}"/>`);
  lines.push('        </list>');
  return lines.join('\n');
}

/** The `acl.conf` configuration document mod_xml_curl expects (section `configuration`). */
export function aclConfDocument(lists: readonly NetworkList[]): string {
  return [
    '<?xml version="1.0" encoding="UTF-8" standalone="no"?>',
    '<document type="freeswitch/xml">',
    '  <section name="configuration">',
    '    <configuration name="acl.conf" description="Network Lists (ipwarden)">',
    '      <network-lists>',
    ...lists.map(listXml),
    '      </network-lists>',
    '    </configuration>',
    '  </section>',
    '</document>',
    '',
  ].join('\n');
}

/** mod_xml_curl's answer for anything this server does not provide. */
export const NOT_FOUND_DOCUMENT = [
  '<?xml version="1.0" encoding="UTF-8" standalone="no"?>',
  '<document type="freeswitch/xml">',
  '  <section name="result">',
  '    <result status="not found"/>',
  '  </section>',
  '</document>',
  '',
].join('\n');

// ---- reading acl.conf (migration) ----

export interface ParsedNode {
  type: Verdict;
  /** The node's blocks, as FreeSWITCH reads `cidr` (comma-separated) or `host` + `mask`. */
  cidrs: string[];
  domain?: string;
  /** Why the node cannot be read. */
  problem?: string;
}

export interface ParsedNetworkList {
  name: string;
  default: Verdict;
  nodes: ParsedNode[];
}

/** FreeSWITCH's switch_true: what it reads as "allow". */
function isTrue(text: string): boolean {
  return /^(yes|on|true|t|enabled|active|allow|checked)$/i.test(text) || (/^-?[0-9]+$/.test(text) && Number(text) !== 0);
}

const arrayOf = <T>(value: T | T[] | undefined): T[] => (value === undefined ? [] : Array.isArray(value) ? value : [value]);

/** A dotted mask as a prefix length, or -1 when its ones are not contiguous. */
function maskBits(mask: string): number {
  const parsed = parseCidr(mask);
  if (!parsed.ok || parsed.cidr.network.family !== 4) return -1;
  const value = (parsed.cidr.network as { value: number }).value;
  if (value === 0) return 0;
  const bits = Math.clz32(~value >>> 0);
  return ((0xffffffff << (32 - bits)) >>> 0) === value ? bits : -1;
}

/** Finds `network-lists` in a whole mod_xml_curl document, an `acl.conf.xml` file or an `<include>`. */
function findNetworkLists(node: unknown): Record<string, unknown> | null {
  if (node === null || typeof node !== 'object') return null;
  for (const [key, value] of Object.entries(node)) {
    if (key === 'network-lists') return (arrayOf(value)[0] ?? {}) as Record<string, unknown>;
    for (const child of arrayOf(value)) {
      const found = findNetworkLists(child);
      if (found) return found;
    }
  }
  return null;
}

/** The network lists of an acl.conf document; throws when the text is not XML holding them. */
export function parseAclConf(xml: string): ParsedNetworkList[] {
  const parser = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '@', isArray: (name) => name === 'list' || name === 'node' });
  const tree = parser.parse(xml, true) as unknown;
  const lists = findNetworkLists(tree);
  if (!lists) throw new Error('no <network-lists> element: not an acl.conf document');
  return arrayOf(lists.list as Record<string, string | unknown>[] | undefined).map((l) => {
    const fallback: Verdict = typeof l['@default'] === 'string' ? (isTrue(l['@default']) ? 'allow' : 'deny') : 'allow';
    const nodes = arrayOf(l.node as Record<string, string>[] | undefined).map((n): ParsedNode => {
      const type: Verdict = n['@type'] === undefined ? fallback : isTrue(n['@type']) ? 'allow' : 'deny';
      if (n['@domain'] !== undefined) return { type, cidrs: [], domain: n['@domain'] };
      if (n['@cidr'] !== undefined) return { type, cidrs: n['@cidr'].split(',').map((c) => c.trim()) };
      if (n['@host'] !== undefined && n['@mask'] !== undefined) {
        const bits = maskBits(n['@mask']);
        return bits < 0 ? { type, cidrs: [], problem: `mask ${n['@mask']} is not a contiguous IPv4 netmask` } : { type, cidrs: [`${n['@host']}/${bits}`] };
      }
      return { type, cidrs: [], problem: 'a node with neither cidr nor host and mask' };
    });
    return { name: String(l['@name'] ?? ''), default: fallback, nodes };
  });
}

export type ListConversion = { ok: true; list: AccessList; ignored: string[] } | { ok: false; reason: string };

/**
 * A FreeSWITCH list as one ipwarden access list, when one can say the same: every node that can
 * decide says the opposite of the default (nodes agreeing with the default decide nothing unless
 * they sit inside an opposite node, and then no single order expresses the list).
 */
export function accessListOf(list: ParsedNetworkList): ListConversion {
  const order: Order = list.default === 'deny' ? 'allow,deny' : 'deny,allow';
  const ignored: string[] = [];
  const against: Cidr[] = [];
  const agreeing: Cidr[] = [];
  for (const node of list.nodes) {
    if (node.domain !== undefined) return { ok: false, reason: `node domain="${node.domain}" takes its addresses from the FreeSWITCH directory, which ipwarden cannot read` };
    if (node.problem !== undefined) return { ok: false, reason: node.problem };
    for (const text of node.cidrs) {
      const parsed = parseCidr(text);
      if (!parsed.ok) return { ok: false, reason: `node ${text}: ${parsed.message}` };
      if (parsed.cidr.prefix === 0 && !text.startsWith('::ffff:')) {
        ignored.push(`${text} (FreeSWITCH never matches a /0 node)`);
        continue;
      }
      (node.type === list.default ? agreeing : against).push(parsed.cidr);
    }
  }
  for (const inner of agreeing) {
    const outer = against.find((o) => o.prefix < inner.prefix && cidrsOverlap(o, inner));
    if (outer) return { ok: false, reason: `${formatCidr(inner)} (${list.default}) inside ${formatCidr(outer)} (${opposite(list.default)}): one order cannot say both` };
  }
  const cidrs = [...new Set(against.map(formatCidr))].map((c) => (c.endsWith('/32') && !c.includes(':') ? c.slice(0, -3) : c.endsWith('/128') ? c.slice(0, -4) : c));
  return { ok: true, list: { order, cidrs }, ignored };
}
