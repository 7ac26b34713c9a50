// api.md §1 (addresses) and §5 (special-purpose ranges). Node's `net` is the oracle on inputs
// both accept; where we deliberately differ, the case is named below.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import fc from 'fast-check';
import type { Cidr, Ip, Words } from '../../src/core/ip.ts';
import {
  SPECIAL_RANGES,
  broadcastOf,
  canonicalIp,
  cidrContains,
  cidrsOverlap,
  classifyIp,
  compareIp,
  formatCidr,
  formatIp,
  formatIPv6,
  parseCidr,
  parseIp,
  parseCidrInto,
  parseIpInto,
  specialRangesOverlapping,
} from '../../src/core/ip.ts';

function ip(text: string): Ip {
  const parsed = parseIp(text);
  assert.ok(parsed, `${text} should parse`);
  return parsed;
}

function cidr(text: string): Cidr {
  const parsed = parseCidr(text);
  assert.ok(parsed.ok, `${text} should parse as a CIDR`);
  return parsed.cidr;
}

describe('IPv4: strict dotted decimal', () => {
  test('four decimal octets 0–255 are accepted', () => {
    for (const text of ['0.0.0.0', '1.2.3.4', '203.0.113.50', '255.255.255.255', '10.0.0.1']) {
      assert.equal(canonicalIp(text), text);
    }
  });
  test('leading zeros are refused (they read as octal elsewhere)', () => {
    for (const text of ['01.2.3.4', '1.2.3.04', '1.2.3.00', '010.0.0.1', '1.2.3.000']) assert.equal(parseIp(text), null, text);
  });
  test('shorthand forms are refused', () => {
    for (const text of ['1.2.3', '1.2', '1', '16909060', '1.2.3.4.5', '0x1.2.3.4', '1..2.3']) assert.equal(parseIp(text), null, text);
  });
  test('out-of-range octets are refused', () => {
    for (const text of ['256.0.0.0', '1.2.3.256', '999.1.1.1', '1.2.3.1000']) assert.equal(parseIp(text), null, text);
  });
  test('stray characters and empty text are refused', () => {
    for (const text of ['', ' 1.2.3.4', '1.2.3.4 ', '1.2.3.4.', '.1.2.3.4', '1.2.3.-4', '1.2.3.4/32', 'a.b.c.d']) {
      assert.equal(parseIp(text), null, JSON.stringify(text));
    }
  });
});

describe('IPv6: every RFC 4291 text form', () => {
  test('preferred, compressed and mixed forms', () => {
    const cases: [string, string][] = [
      ['2001:0db8:0000:0000:0008:0800:200c:417a', '2001:db8::8:800:200c:417a'],
      ['2001:DB8:0:0:8:800:200C:417A', '2001:db8::8:800:200c:417a'],
      ['ff01:0:0:0:0:0:0:101', 'ff01::101'],
      ['0:0:0:0:0:0:0:1', '::1'],
      ['0:0:0:0:0:0:0:0', '::'],
      ['::', '::'],
      ['1::', '1::'],
      ['::1', '::1'],
      ['1:2:3:4:5:6:7::', '1:2:3:4:5:6:7:0'],
      ['::2:3:4:5:6:7:8', '0:2:3:4:5:6:7:8'],
      ['0:0:0:0:0:0:13.1.68.3', '::d01:4403'],
      ['::13.1.68.3', '::d01:4403'],
      ['1:2:3:4:5:6:1.2.3.4', '1:2:3:4:5:6:102:304'],
    ];
    for (const [text, canonical] of cases) assert.equal(canonicalIp(text), canonical, text);
  });
  test('malformed forms are refused', () => {
    const bad = [
      ':', ':::', '1:2', ':1::', '1:::2', '1::2::3', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7', '12345::', 'g::1',
      '1:2:3:4:5:6:7:8::', '::1:2:3:4:5:6:7:8', '1::2:3:4:5:6:7:8', '1:', ':1', '1:2:3:4:5:6:7:1.2.3.4', '::1.2.3',
      '::1.2.3.4:5', '::01.2.3.4', '1.2.3.4::', '::256.1.1.1', '[::1]',
    ];
    for (const text of bad) assert.equal(parseIp(text), null, text);
  });
  test('zone ids are refused (deliberate difference from net.isIP)', () => {
    for (const text of ['fe80::1%eth0', 'fe80::1%1', '::1%lo']) {
      assert.equal(net.isIP(text), 6, `net accepts ${text}`);
      assert.equal(parseIp(text), null, text);
    }
  });
});

describe('RFC 5952 canonical output', () => {
  // Examples from RFC 5952 §4.
  const cases: [string, string][] = [
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], // §4.2.3: the first of two equal runs
    ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'], // §4.2.3: the longest run
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // §4.2.2: one 0 group is not shortened
    ['2001:db8::0:1', '2001:db8::1'],
    ['2001:0db8::0001', '2001:db8::1'], // §4.1: leading zeros dropped
    ['2001:db8:aaaa:bbbb:cccc:dddd:eeee:AAAA', '2001:db8:aaaa:bbbb:cccc:dddd:eeee:aaaa'], // §4.3: lowercase
    ['2001:db8:0:0:0:0:2:1', '2001:db8::2:1'], // §4.2.1: as much as possible
    ['2001:db8::1:0:0:0:1', '2001:db8:0:1::1'],
  ];
  for (const [text, canonical] of cases) {
    test(`${text} → ${canonical}`, () => assert.equal(canonicalIp(text), canonical));
  }
});

describe('IPv4-mapped addresses are IPv4 (deliberate: net keeps them IPv6)', () => {
  test('::ffff:a.b.c.d and its hex form parse as a.b.c.d', () => {
    assert.equal(net.isIP('::ffff:192.0.2.1'), 6);
    assert.deepEqual(parseIp('::ffff:192.0.2.1'), { family: 4, value: 0xc0000201 });
    assert.equal(canonicalIp('::FFFF:c000:0201'), '192.0.2.1');
    assert.equal(canonicalIp('0:0:0:0:0:ffff:192.0.2.1'), '192.0.2.1');
    const out = new Uint32Array(4);
    assert.equal(parseIpInto('::ffff:10.1.2.3', out), 4);
    assert.equal(out[0], 0x0a010203);
  });
  test('other embedded forms stay IPv6', () => {
    assert.equal(parseIp('::192.0.2.1')?.family, 6);
    assert.equal(parseIp('64:ff9b::192.0.2.1')?.family, 6);
    assert.equal(parseIp('::fffe:192.0.2.1')?.family, 6);
  });
});

describe('CIDRs', () => {
  test('a bare address is a host block', () => {
    assert.deepEqual(parseCidr('1.2.3.4'), { ok: true, cidr: { network: ip('1.2.3.4'), prefix: 32 } });
    assert.deepEqual(parseCidr('2001:db8::1'), { ok: true, cidr: { network: ip('2001:db8::1'), prefix: 128 } });
  });
  test('prefix bounds', () => {
    assert.equal(formatCidr(cidr('0.0.0.0/0')), '0.0.0.0/0');
    assert.equal(formatCidr(cidr('1.2.3.4/32')), '1.2.3.4/32');
    assert.equal(formatCidr(cidr('::/0')), '::/0');
    assert.equal(formatCidr(cidr('2001:db8::1/128')), '2001:db8::1/128');
    const tooLong4 = parseCidr('1.2.3.4/33');
    assert.equal(tooLong4.ok ? null : tooLong4.problem, 'prefix_out_of_range');
    const tooLong6 = parseCidr('::/129');
    assert.equal(tooLong6.ok ? null : tooLong6.problem, 'prefix_out_of_range');
  });
  test('host bits set: refused with the network form suggested', () => {
    const cases: [string, string][] = [
      ['10.0.0.1/24', '10.0.0.0/24'],
      ['1.2.3.4/0', '0.0.0.0/0'],
      ['2001:db8::1/32', '2001:db8::/32'],
      ['2001:db8:ffff::/33', '2001:db8:8000::/33'],
    ];
    for (const [text, suggestion] of cases) {
      const parsed = parseCidr(text);
      assert.equal(parsed.ok, false, text);
      if (parsed.ok) continue;
      assert.equal(parsed.problem, 'host_bits_set');
      assert.equal(parsed.network, suggestion);
      assert.match(parsed.message, new RegExp(suggestion.replace(/\./g, '\\.')));
    }
  });
  test('an IPv4-mapped CIDR is the IPv4 block', () => {
    assert.equal(formatCidr(cidr('::ffff:10.1.0.0/112')), '10.1.0.0/16');
    assert.equal(formatCidr(cidr('::ffff:0.0.0.0/96')), '0.0.0.0/0');
    assert.equal(parseCidr('::ffff:10.0.0.0/95').ok, false);
  });
  test('malformed CIDRs', () => {
    for (const text of ['', '/24', '1.2.3.0/', '1.2.3.0/024', '1.2.3.0/+8', '1.2.3.0/8/8', '1.2.3.0/ 8', '1.2.3.0/x', '1.2.3/24', 'fe80::%eth0/64', '1.2.3.0/1e1']) {
      const parsed = parseCidr(text);
      assert.equal(parsed.ok ? null : parsed.problem, 'malformed', JSON.stringify(text));
    }
  });
  test('containment and overlap', () => {
    assert.ok(cidrContains(cidr('10.0.0.0/8'), ip('10.255.255.255')));
    assert.ok(!cidrContains(cidr('10.0.0.0/8'), ip('11.0.0.0')));
    assert.ok(cidrContains(cidr('::/0'), ip('2001:db8::1')));
    assert.ok(!cidrContains(cidr('::/0'), ip('1.2.3.4')), 'families never mix in cidrContains');
    assert.ok(cidrsOverlap(cidr('10.0.0.0/8'), cidr('10.1.0.0/16')));
    assert.ok(cidrsOverlap(cidr('10.1.0.0/16'), cidr('10.0.0.0/8')));
    assert.ok(!cidrsOverlap(cidr('10.0.0.0/16'), cidr('10.1.0.0/16')));
    assert.ok(!cidrsOverlap(cidr('0.0.0.0/0'), cidr('::/0')));
  });
});

describe('classification of special-purpose ranges (api.md §5)', () => {
  const refused: [string, string, string][] = [
    ['0.0.0.0/8', '0.1.2.3', 'unspecified'],
    ['10.0.0.0/8', '10.200.0.1', 'private'],
    ['100.64.0.0/10', '100.127.255.255', 'shared_address_space'],
    ['127.0.0.0/8', '127.0.0.1', 'loopback'],
    ['169.254.0.0/16', '169.254.1.1', 'link_local'],
    ['172.16.0.0/12', '172.31.0.1', 'private'],
    ['192.0.0.0/24', '192.0.0.9', 'ietf_protocol_assignments'],
    ['192.168.0.0/16', '192.168.1.1', 'private'],
    ['198.18.0.0/15', '198.19.255.1', 'benchmarking'],
    ['224.0.0.0/4', '239.1.1.1', 'multicast'],
    ['240.0.0.0/4', '250.1.1.1', 'reserved'],
    ['255.255.255.255/32', '255.255.255.255', 'broadcast'],
    ['::/128', '::', 'unspecified'],
    ['::1/128', '::1', 'loopback'],
    ['fc00::/7', 'fd12::1', 'unique_local'],
    ['fe80::/10', 'febf::1', 'link_local'],
    ['ff00::/8', 'ff02::1', 'multicast'],
  ];
  const documentation: [string, string][] = [
    ['192.0.2.0/24', '192.0.2.7'],
    ['198.51.100.0/24', '198.51.100.7'],
    ['203.0.113.0/24', '203.0.113.50'],
    ['2001:db8::/32', '2001:db8:1::1'],
  ];
  for (const [range, sample, kind] of refused) {
    test(`${range} is ${kind}`, () => {
      assert.equal(classifyIp(ip(sample))?.kind, kind);
      assert.equal(classifyIp(ip(sample))?.text, range);
      assert.ok(specialRangesOverlapping(cidr(range)).some((r) => r.text === range));
    });
  }
  for (const [range, sample] of documentation) {
    test(`${range} is documentation (accepted for trunks)`, () => {
      assert.equal(classifyIp(ip(sample))?.kind, 'documentation');
      assert.deepEqual(specialRangesOverlapping(cidr(range)).map((r) => r.kind), ['documentation']);
    });
  }
  test('the edges of each range', () => {
    assert.equal(classifyIp(ip('100.63.255.255')), undefined);
    assert.equal(classifyIp(ip('100.128.0.0')), undefined);
    assert.equal(classifyIp(ip('172.15.255.255')), undefined);
    assert.equal(classifyIp(ip('172.32.0.0')), undefined);
    assert.equal(classifyIp(ip('198.17.255.255')), undefined);
    assert.equal(classifyIp(ip('198.20.0.0')), undefined);
    assert.equal(classifyIp(ip('223.255.255.255')), undefined);
    assert.equal(classifyIp(ip('::2')), undefined);
    assert.equal(classifyIp(ip('fbff:ffff::')), undefined);
    assert.equal(classifyIp(ip('fec0::')), undefined);
    assert.equal(classifyIp(ip('2001:db9::')), undefined);
  });
  test('public addresses are not classified', () => {
    for (const text of ['8.8.8.8', '1.1.1.1', '2606:4700::1111', '2001:4860:4860::8888']) assert.equal(classifyIp(ip(text)), undefined, text);
  });
  test('a CIDR is refused if any part of it is', () => {
    assert.deepEqual(specialRangesOverlapping(cidr('8.0.0.0/7')).map((r) => r.text), []);
    assert.deepEqual(specialRangesOverlapping(cidr('8.0.0.0/6')).map((r) => r.text), ['10.0.0.0/8']);
    assert.deepEqual(specialRangesOverlapping(cidr('10.1.2.0/24')).map((r) => r.text), ['10.0.0.0/8']);
    assert.equal(specialRangesOverlapping(cidr('0.0.0.0/0')).length, SPECIAL_RANGES.filter((r) => r.cidr.network.family === 4).length);
    assert.ok(specialRangesOverlapping(cidr('fe00::/7')).some((r) => r.text === 'fe80::/10'));
  });
});

// ---- Property tests against Node's `net` ------------------------------------------------------

const octet = fc.integer({ min: 0, max: 255 });
const ipv4Text = fc.tuple(octet, octet, octet, octet).map((o) => o.join('.'));
const group = fc.integer({ min: 0, max: 0xffff });
const groups8 = fc.array(group, { minLength: 8, maxLength: 8 });

/** Any RFC 4291 writing of eight groups: full, with leading zeros, upper case, `::`, dotted tail. */
const ipv6Text = fc
  .record({
    g: groups8,
    pad: fc.boolean(),
    upper: fc.boolean(),
    compress: fc.option(fc.tuple(fc.nat(7), fc.nat(8)), { nil: undefined }),
    dotted: fc.boolean(),
  })
  .map(({ g, pad, upper, compress, dotted }) => {
    let parts = g.map((x) => x.toString(16).padStart(pad ? 4 : 1, '0'));
    let tail = '';
    if (dotted) {
      tail = [g[6]! >> 8, g[6]! & 255, g[7]! >> 8, g[7]! & 255].join('.');
      parts = parts.slice(0, 6);
    }
    let text: string;
    if (compress) {
      // Zero out a run and write it as `::`.
      const start = Math.min(compress[0], parts.length - 1);
      const length = Math.max(1, Math.min(compress[1], parts.length - start));
      text = `${parts.slice(0, start).join(':')}::${parts.slice(start + length).join(':')}`;
      if (tail) text = text.endsWith(':') ? text + tail : `${text}:${tail}`;
    } else {
      text = tail ? `${parts.join(':')}:${tail}` : parts.join(':');
    }
    return upper ? text.toUpperCase() : text;
  });

const addressLike = fc.oneof(
  ipv4Text,
  ipv6Text,
  fc.string({ unit: fc.constantFrom(...'0123456789abcdefABCDEF.:%/x '.split('')), maxLength: 45 }),
  fc.string({ maxLength: 20 }),
);

function netFamily(parsed: Ip): 'ipv4' | 'ipv6' {
  return parsed.family === 4 ? 'ipv4' : 'ipv6';
}

describe('property tests against node:net', () => {
  test('validity agrees with net.isIP where both accept the syntax', () => {
    fc.assert(
      fc.property(addressLike, (text) => {
        const ours = parseIp(text);
        const theirs = net.isIP(text);
        const deliberate = text.includes('%'); // zone ids, named below
        if (deliberate) return;
        if (ours === null) assert.equal(theirs, 0, `net accepts ${text}, we refuse it`);
        else assert.notEqual(theirs, 0, `we accept ${text}, net refuses it`);
      }),
      { numRuns: 5000 },
    );
  });

  test('generated v4 and v6 writings are always accepted', () => {
    fc.assert(
      fc.property(fc.oneof(ipv4Text, ipv6Text), (text) => {
        assert.ok(parseIp(text), text);
        assert.notEqual(net.isIP(text), 0, text);
      }),
      { numRuns: 3000 },
    );
  });

  test('our canonical text is the same address for net.SocketAddress and net.BlockList', () => {
    fc.assert(
      fc.property(fc.oneof(ipv4Text, ipv6Text), (text) => {
        const parsed = parseIp(text)!;
        const canonical = formatIp(parsed);
        const family = netFamily(parsed);
        const socket = new net.SocketAddress({ address: canonical, family });
        assert.deepEqual(parseIp(socket.address), parsed, `${text}: net reads ${canonical} as ${socket.address}`);
        const list = new net.BlockList();
        list.addAddress(canonical, family);
        // net keeps `::ffff:a.b.c.d` IPv6; ours is IPv4, the same address to net's BlockList.
        assert.ok(list.check(text, net.isIP(text) === 4 ? 'ipv4' : 'ipv6'), `${text} vs ${canonical}`);
      }),
      { numRuns: 3000 },
    );
  });

  test("IPv6 text is compressed as Node's own formatter does (RFC 5952), zero runs of every length", () => {
    const group = fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: 0, max: 0xffff }));
    fc.assert(
      fc.property(fc.array(group, { minLength: 8, maxLength: 8 }), (g) => {
        // Node writes an address whose first five groups are zero with a dotted IPv4 tail.
        fc.pre(g.slice(0, 5).some((x) => x !== 0));
        const words: Words = [0, 1, 2, 3].map((w) => ((g[2 * w]! << 16) | g[2 * w + 1]!) >>> 0) as unknown as Words;
        const ours = formatIPv6(words);
        assert.equal(new net.SocketAddress({ address: ours, family: 'ipv6' }).address, ours);
        assert.deepEqual(parseIp(ours), { family: 6, words });
      }),
      { numRuns: 5000 },
    );
  });

  test('parse ∘ format = identity, and format ∘ parse is idempotent', () => {
    const ipArb: fc.Arbitrary<Ip> = fc.oneof(
      fc.integer({ min: 0, max: 0xffffffff }).map((value): Ip => ({ family: 4, value })),
      fc
        .tuple(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 0xffffffff }))
        .filter(([a, b, c]) => !(a === 0 && b === 0 && c === 0xffff))
        .map((words): Ip => ({ family: 6, words })),
    );
    fc.assert(
      fc.property(ipArb, (address) => {
        assert.deepEqual(parseIp(formatIp(address)), address);
      }),
      { numRuns: 5000 },
    );
    fc.assert(
      fc.property(fc.oneof(ipv4Text, ipv6Text), (text) => {
        const once = canonicalIp(text)!;
        assert.equal(canonicalIp(once), once);
      }),
      { numRuns: 2000 },
    );
  });

  test('cidrContains agrees with net.BlockList.check over random CIDR sets', () => {
    const v4Cidr = fc.tuple(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 32 }));
    // Mostly near a few networks so that probes often land inside.
    const v6Words = fc.tuple(fc.constantFrom(0x20010db8, 0x2a000000, 0, 0xfe800000), fc.integer({ min: 0, max: 0xffffffff }), fc.constantFrom<number>(0, 1, 0xffffffff), fc.integer({ min: 0, max: 0xffffffff }));
    const v6Cidr = fc.tuple(v6Words, fc.integer({ min: 0, max: 128 }));
    fc.assert(
      fc.property(
        fc.array(v4Cidr, { maxLength: 8 }),
        fc.array(v6Cidr, { maxLength: 8 }),
        fc.array(fc.integer({ min: 0, max: 0xffffffff }), { maxLength: 10 }),
        fc.array(v6Words, { maxLength: 10 }),
        (v4, v6, probes4, probes6) => {
          const cidrs: Cidr[] = [
            ...v4.map(([value, prefix]) => cidr(suggested({ network: { family: 4, value }, prefix }))),
            ...v6.map(([words, prefix]) => cidr(suggested({ network: { family: 6, words }, prefix }))),
          ];
          // One list per family: net's BlockList also matches IPv4 sources against IPv6 subnets
          // holding ::ffff:0:0/96, which ours deliberately keeps apart.
          const lists = { 4: new net.BlockList(), 6: new net.BlockList() };
          for (const c of cidrs) lists[c.network.family].addSubnet(formatIp(c.network), c.prefix, netFamily(c.network));
          const probes: Ip[] = [
            ...probes4.map((value): Ip => ({ family: 4, value })),
            ...probes6.filter((w) => !(w[0] === 0 && w[1] === 0 && w[2] === 0xffff)).map((words): Ip => ({ family: 6, words })),
            ...cidrs.map((c) => c.network),
          ];
          for (const probe of probes) {
            const ours = cidrs.some((c) => cidrContains(c, probe));
            const theirs = lists[probe.family].check(formatIp(probe), netFamily(probe));
            assert.equal(ours, theirs, `${formatIp(probe)} in [${cidrs.map(formatCidr).join(', ')}]`);
          }
        },
      ),
      { numRuns: 1000 },
    );
  });

  test('cidrsOverlap is exactly "their address ranges intersect"', () => {
    const word = fc.oneof(fc.constantFrom(0, 0xffffffff, 0x0a000000), fc.integer({ min: 0, max: 0xffffffff }));
    const block = fc.oneof(
      fc.tuple(word, fc.integer({ min: 0, max: 32 })).map(([value, prefix]) => cidr(suggested({ network: { family: 4, value }, prefix }))),
      fc.tuple(fc.tuple(fc.constantFrom(0x20010db8, 0x2a000000), word, word, word), fc.integer({ min: 0, max: 128 })).map(([words, prefix]) => cidr(suggested({ network: { family: 6, words }, prefix }))),
    );
    // Pairs drawn near each other too: one block, and one of its sub- or super-blocks.
    const nested = fc.tuple(block, fc.integer({ min: 0, max: 128 })).map(([a, prefix]): [Cidr, Cidr] => {
      const b = cidr(suggested({ network: a.network, prefix: Math.min(prefix, a.network.family === 4 ? 32 : 128) }));
      return [a, b];
    });
    fc.assert(
      fc.property(fc.oneof(fc.tuple(block, block), nested), ([a, b]) => {
        const intersect = a.network.family === b.network.family && compareIp(a.network, broadcastOf(b.network, b.prefix)) <= 0 && compareIp(b.network, broadcastOf(a.network, a.prefix)) <= 0;
        assert.equal(cidrsOverlap(a, b), intersect, `${formatCidr(a)} and ${formatCidr(b)}`);
        assert.equal(cidrsOverlap(b, a), intersect);
      }),
      { numRuns: 5000 },
    );
  });
});

/** The network form of a block that may have host bits set (what parseCidr suggests). */
function suggested(c: Cidr): string {
  const parsed = parseCidr(`${formatIp(c.network)}/${c.prefix}`);
  if (parsed.ok) return formatCidr(parsed.cidr);
  assert.equal(parsed.problem, 'host_bits_set');
  return parsed.network!;
}

describe('parseCidrInto (the allocation-free compile path)', () => {
  const cidrLike = fc.oneof(
    fc.tuple(ipv4Text, fc.integer({ min: 0, max: 34 })).map(([a, p]) => `${a}/${p}`),
    fc.tuple(ipv6Text, fc.integer({ min: 0, max: 130 })).map(([a, p]) => `${a}/${p}`),
    fc.tuple(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 32 })).map(([v, p]) => suggested({ network: { family: 4, value: v }, prefix: p })),
    fc.tuple(ipv4Text, fc.integer({ min: 90, max: 128 })).map(([a, p]) => `::ffff:${a}/${p}`),
    ipv4Text,
    ipv6Text,
    fc.string({ unit: fc.constantFrom(...'0123456789abcdef.:/'.split('')), maxLength: 30 }),
  );
  test('accepts exactly what parseCidr accepts, with the same network and prefix', () => {
    const out = new Uint32Array(5);
    fc.assert(
      fc.property(cidrLike, (text) => {
        const slow = parseCidr(text);
        const family = parseCidrInto(text, out);
        if (!slow.ok) return assert.equal(family, 0, text);
        assert.equal(family, slow.cidr.network.family, text);
        assert.equal(out[4], slow.cidr.prefix, text);
        const network = slow.cidr.network;
        if (network.family === 4) assert.equal(out[0], network.value, text);
        else assert.deepEqual([...out.subarray(0, 4)], [...network.words], text);
      }),
      { numRuns: 5000 },
    );
    for (const text of ['1.2.3.0/24', '1.2.3.0/024', '1.2.3.4/', '::ffff:1.2.3.0/120', '::ffff:1.2.3.0/95', '10.0.0.1/8', '::/0', '2001:db8::/129']) {
      assert.equal(parseCidrInto(text, out) !== 0, parseCidr(text).ok, text);
    }
  });
});

describe('deliberate differences from node:net, by name', () => {
  test('zone ids: net accepts fe80::1%eth0, we refuse it', () => {
    assert.equal(net.isIP('fe80::1%eth0'), 6);
    assert.equal(parseIp('fe80::1%eth0'), null);
  });
  test('leading zeros: we refuse 010.1.1.1 (net refuses it too in Node ≥ 16; we never read octal)', () => {
    assert.equal(parseIp('010.1.1.1'), null);
    assert.equal(net.isIP('010.1.1.1'), 0);
  });
  test('mapped addresses: net says ::ffff:1.2.3.4 is IPv6, we say it is 1.2.3.4', () => {
    assert.equal(net.isIP('::ffff:1.2.3.4'), 6);
    assert.deepEqual(parseIp('::ffff:1.2.3.4'), parseIp('1.2.3.4'));
  });
  test('net.BlockList matches IPv4 sources against ::/0; our cidrContains keeps families apart', () => {
    const list = new net.BlockList();
    list.addSubnet('::', 0, 'ipv6');
    assert.equal(list.check('1.2.3.4', 'ipv4'), true);
    assert.equal(cidrContains(cidr('::/0'), ip('1.2.3.4')), false);
  });
});
