// api.md §9: the acl.conf export, held to FreeSWITCH's documented schema and, for 10 000 random
// sources, to FreeSWITCH's own way of deciding a network list, wherever it says it is exact.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isIP } from 'node:net';
import { XMLParser } from 'fast-xml-parser';
import type { AccessList } from '../../src/core/acl.ts';
import { accessListOf, aclConfDocument, networkListOf, NOT_FOUND_DOCUMENT, parseAclConf, trunkNetworkList } from '../../src/core/freeswitch-acl.ts';
import { DecisionIndex } from '../../src/core/index.ts';

// ---- FreeSWITCH's rules, written from its documentation and switch_utils.c ----

interface FsNode {
  ok: boolean;
  v6: boolean;
  net: bigint;
  mask: bigint;
  bits: number;
}

/** switch_inet_pton as a number (IPv4: 32 bits, IPv6: 128 bits). */
function addressBits(text: string): bigint {
  if (!text.includes(':')) return text.split('.').reduce((acc, octet) => (acc << 8n) | BigInt(Number(octet)), 0n);
  let [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const expand = (part: string | undefined) => {
    if (!part) return [];
    return part.split(':').flatMap((g) => (g.includes('.') ? [Number(addressBits(g) >> 16n), Number(addressBits(g) & 0xffffn)] : [parseInt(g, 16)]));
  };
  const h = expand(head);
  const t = expand(tail);
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill(0), ...t];
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(g), 0n);
}

/** switch_parse_cidr + switch_network_list_add_cidr: the node's family comes from a ':' in the text. */
function fsNode(cidr: string, ok: boolean): FsNode {
  const [host, bitText] = cidr.split('/');
  const v6 = cidr.includes(':');
  const width = v6 ? 128n : 32n;
  const bits = Number(bitText);
  const all = (1n << width) - 1n;
  const mask = bits === 0 ? 0n : (all << (width - BigInt(bits))) & all;
  return { ok, v6, net: addressBits(host!), mask, bits };
}

/**
 * switch_network_list_validate_ip(6)_token: start from the default; nodes are kept newest first;
 * a node of the source's family that matches and has more bits than the best so far decides.
 */
function freeswitchAllows(list: { default: boolean; nodes: FsNode[] }, source: string): boolean {
  const v6 = source.includes(':');
  const ip = addressBits(source);
  let ok = list.default;
  let bits = 0;
  for (const node of [...list.nodes].reverse()) {
    if (node.v6 !== v6) continue;
    const matches = node.mask === 0n ? true : (node.net & node.mask) === (ip & node.mask);
    if (node.bits > bits && matches) {
      ok = node.ok;
      bits = node.bits;
    }
  }
  return ok;
}

// ---- the documented schema of acl.conf, as served through mod_xml_curl ----

const parser = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '@', commentPropName: '#comment', isArray: (name) => ['list', 'node', '#comment', 'section'].includes(name) });

interface CheckedList {
  name: string;
  exact: boolean;
  fs: { default: boolean; nodes: FsNode[] };
}

function only(keys: string[], allowed: string[], where: string): void {
  for (const key of keys) assert.ok(allowed.includes(key), `${where}: unexpected ${key}`);
}

/** Checks the document against the schema and reads its lists as FreeSWITCH would. */
function checkDocument(xml: string): CheckedList[] {
  const tree = parser.parse(xml, true);
  only(Object.keys(tree), ['?xml', 'document'], 'root');
  assert.equal(tree.document['@type'], 'freeswitch/xml');
  const sections = tree.document.section;
  assert.equal(sections.length, 1);
  assert.equal(sections[0]['@name'], 'configuration');
  const configuration = sections[0].configuration;
  assert.equal(configuration['@name'], 'acl.conf');
  only(Object.keys(configuration), ['@name', '@description', 'network-lists'], 'configuration');
  const lists = configuration['network-lists'].list ?? [];
  const names = new Set<string>();
  return lists.map((list: Record<string, any>) => {
    only(Object.keys(list), ['@name', '@default', 'node', '#comment'], 'list');
    assert.ok(typeof list['@name'] === 'string' && list['@name'] !== '', 'a list has a name');
    assert.ok(!names.has(list['@name']), `list names are unique: ${list['@name']}`);
    names.add(list['@name']);
    assert.ok(['allow', 'deny'].includes(list['@default']), `default of ${list['@name']}`);
    const nodes = (list.node ?? []).map((node: Record<string, string>) => {
      only(Object.keys(node), ['@type', '@cidr'], 'node');
      assert.ok(['allow', 'deny'].includes(node['@type']!));
      const [host, bits, more] = node['@cidr']!.split('/');
      assert.equal(more, undefined);
      const family = isIP(host!);
      assert.ok(family === 4 || family === 6, `node address ${host}`);
      assert.match(bits!, /^\d+$/);
      assert.ok(Number(bits) >= 1 && Number(bits) <= (family === 4 ? 32 : 128), `node bits ${node['@cidr']} (a /0 node never matches)`);
      return fsNode(node['@cidr']!, node['@type'] === 'allow');
    });
    const comments: string[] = (list['#comment'] ?? []).map((c: unknown) => String(c).trim());
    assert.ok(comments[0] === 'ipwarden: exact' || comments[0] === 'ipwarden: inexact', `the first comment says whether the list is exact: ${comments[0]}`);
    return { name: list['@name'], exact: comments[0] === 'ipwarden: exact', fs: { default: list['@default'] === 'allow', nodes } };
  });
}

// ---- random lists and sources ----

let seed = 0x9e3779b9;
function random(): number {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) / 0x100000000;
}
const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
const v4 = () => Array.from({ length: 4 }, () => Math.floor(random() * 256)).join('.');
const v6 = () => `2001:db8:${Array.from({ length: 6 }, () => Math.floor(random() * 0x10000).toString(16)).join(':')}`;

const POOL = ['203.0.113.0/24', '203.0.113.128/25', '203.0.113.7', '198.51.100.0/22', '192.0.2.0/24', '10.0.0.0/8', '0.0.0.0/0', '128.0.0.0/1', '2001:db8::/32', '2001:db8:1::/48', '::/0', '::/1', '2001:db8::5', '::ffff:198.51.100.0/120'];
const SOURCES = ['203.0.113.7', '203.0.113.200', '198.51.101.3', '192.0.2.1', '10.1.2.3', '127.0.0.1', '2001:db8::5', '2001:db8:1::9', '::1', 'fe80::1', '::ffff:203.0.113.7', '::ffff:10.1.2.3', '::ffff:192.0.2.9'];

function randomList(): AccessList {
  const cidrs = POOL.filter(() => random() < 0.25);
  const list: AccessList = { order: random() < 0.5 ? 'allow,deny' : 'deny,allow', cidrs };
  if (random() < 0.2) list.user_agent = '^Yealink';
  return list;
}

function randomSource(): string {
  const r = random();
  if (r < 0.3) return pick(SOURCES);
  if (r < 0.55) return v4();
  if (r < 0.7) return `::ffff:${v4()}`;
  if (r < 0.9) return v6();
  // near the pool's blocks
  return pick(['203.0.113.', '198.51.100.', '198.51.103.', '192.0.2.']) + Math.floor(random() * 256);
}

describe('the acl.conf export', () => {
  test('for 10 000 random sources, FreeSWITCH decides every exact list as ipwarden does', () => {
    const accounts = Array.from({ length: 40 }, (_, i) => ({ id: `a${i}`, realm: `a${i}.test`, accessList: randomList(), devices: [] }));
    const trunkBlocks = ['203.0.113.0/28', '198.51.100.9', '2001:db8:2::/48', '192.0.2.128/25'];
    const index = DecisionIndex.build({ accounts, trunkEntries: trunkBlocks.map((ipAddress, i) => ({ id: `e${i}`, accountId: 'a0', trunkId: 't0', ipAddress })) });
    const xml = aclConfDocument([...accounts.map((a) => networkListOf(`ipwarden-${a.id}`, a.accessList)), trunkNetworkList('ipwarden-trunks', trunkBlocks)]);
    const lists = new Map(checkDocument(xml).map((l) => [l.name, l]));
    let compared = 0;
    for (let i = 0; i < 10_000; i++) {
      const source = randomSource();
      for (const account of accounts) {
        const list = lists.get(`ipwarden-${account.id}`)!;
        assert.equal(list.exact, account.accessList.user_agent === undefined);
        if (!list.exact) continue;
        const ours = index.decide(account.id, undefined, source, '')!.decision;
        assert.equal(freeswitchAllows(list.fs, source) ? 'allow' : 'deny', ours, `${JSON.stringify(account.accessList)} from ${source}`);
        compared++;
      }
      const trunks = lists.get('ipwarden-trunks')!;
      assert.equal(freeswitchAllows(trunks.fs, source), index.lookupTrunk(source) !== null, `trunks from ${source}`);
    }
    assert.ok(compared > 200_000, `${compared} comparisons`);
  });

  test('a list FreeSWITCH cannot express says so in an XML comment', () => {
    const xml = aclConfDocument([networkListOf('ipwarden-x', { order: 'allow,deny', cidrs: ['203.0.113.0/24'], user_agent: '^Yealink--x' })]);
    assert.match(xml, /<!-- ipwarden: inexact -->/);
    assert.match(xml, /<!-- not exact: this list has a user_agent pattern/);
    checkDocument(xml);
  });

  test('0.0.0.0/0 holds every source, IPv6 included, as in api.md §4', () => {
    const list = networkListOf('x', { order: 'deny,allow', cidrs: ['0.0.0.0/0'] });
    assert.deepEqual({ default: list.default, nodes: list.nodes }, { default: 'deny', nodes: [] });
  });

  test('anything but acl.conf is the "not found" result document', () => {
    const tree = parser.parse(NOT_FOUND_DOCUMENT);
    assert.equal(tree.document['@type'], 'freeswitch/xml');
    assert.equal(tree.document.section[0]['@name'], 'result');
    assert.equal(tree.document.section[0].result['@status'], 'not found');
  });
});

describe('reading acl.conf (migration)', () => {
  test('export → import gives back lists that decide every source as before', () => {
    const originals = Array.from({ length: 40 }, randomList).map((l) => ({ order: l.order, cidrs: l.cidrs }));
    const xml = aclConfDocument(originals.map((l, i) => networkListOf(`ipwarden-a${i}`, l)));
    const parsed = parseAclConf(xml);
    const imported = parsed.map((l) => {
      const converted = accessListOf(l);
      assert.ok(converted.ok, JSON.stringify(converted));
      return converted.list;
    });
    const build = (lists: AccessList[]) => DecisionIndex.build({ accounts: lists.map((accessList, i) => ({ id: `a${i}`, realm: `a${i}.t`, accessList, devices: [] })), trunkEntries: [] });
    const before = build(originals);
    const after = build(imported);
    for (let i = 0; i < 3000; i++) {
      const source = randomSource();
      for (let a = 0; a < originals.length; a++) {
        assert.equal(after.decide(`a${a}`, undefined, source, '')!.decision, before.decide(`a${a}`, undefined, source, '')!.decision, `${JSON.stringify(originals[a])} → ${JSON.stringify(imported[a])} from ${source}`);
      }
    }
  });

  test('reads a hand-written acl.conf.xml: host+mask nodes, missing types, /0 nodes, and refuses what one order cannot say', () => {
    const xml = `<configuration name="acl.conf" description="Network Lists">
      <network-lists>
        <list name="carriers" default="deny">
          <node type="allow" cidr="203.0.113.0/24,198.51.100.7/32"/>
          <node type="allow" host="192.0.2.0" mask="255.255.255.128"/>
          <node type="allow" cidr="0.0.0.0/0"/>
        </list>
        <list name="blocklist" default="allow">
          <node type="deny" cidr="2001:db8::/32"/>
          <node cidr="203.0.113.5/32"/>
        </list>
        <list name="mixed" default="deny">
          <node type="allow" cidr="203.0.113.0/24"/>
          <node type="deny" cidr="203.0.113.128/25"/>
        </list>
        <list name="domains" default="deny"><node type="allow" domain="$\${domain}"/></list>
        <list name="badmask" default="deny"><node type="allow" host="192.0.2.0" mask="255.0.255.0"/></list>
      </network-lists>
    </configuration>`;
    const [carriers, blocklist, mixed, domains, badmask] = parseAclConf(xml).map(accessListOf);
    assert.deepEqual(carriers, { ok: true, list: { order: 'allow,deny', cidrs: ['203.0.113.0/24', '198.51.100.7', '192.0.2.0/25'] }, ignored: ['0.0.0.0/0 (FreeSWITCH never matches a /0 node)'] });
    // a node without a type takes the list's default, so it decides nothing
    assert.deepEqual(blocklist, { ok: true, list: { order: 'deny,allow', cidrs: ['2001:db8::/32'] }, ignored: [] });
    assert.ok(!mixed!.ok && /inside 203\.0\.113\.0\/24/.test(mixed!.reason));
    assert.ok(!domains!.ok && /directory/.test(domains!.reason));
    assert.ok(!badmask!.ok && /not a contiguous/.test(badmask!.reason));
  });

  test('text that is not an acl.conf is refused', () => {
    assert.throws(() => parseAclConf('<configuration name="sofia.conf"/>'), /no <network-lists>/);
  });
});
