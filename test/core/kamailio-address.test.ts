// api.md §9: Kamailio's permissions address file, read as the module reads it and written back.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { formatKamailioAddress, parseKamailioAddress, type KamailioAddress } from '../../src/core/kamailio-address.ts';
import { formatCidr, networkOf, parseCidr, parseIp } from '../../src/core/ip.ts';

const cidr = (text: string) => {
  const parsed = parseCidr(text);
  assert.ok(parsed.ok, text);
  return parsed.cidr;
};

describe('parseKamailioAddress', () => {
  test('reads grp ip mask port tag, with the fields Kamailio lets one leave off', () => {
    const file = ['# carriers', '', '1 203.0.113.50 32 0 acme:pbx', '2 198.51.100.0 24', '1 2001:db8::1', '3 192.0.2.7 0 5060 # office', '  1\t203.0.113.64 26 0 x # tail'].join('\n');
    const { records, errors } = parseKamailioAddress(file);
    assert.deepEqual(errors, []);
    assert.deepEqual(
      records.map((r) => [r.line, r.group, formatCidr(r.cidr), r.port, r.tag]),
      [
        [3, 1, '203.0.113.50/32', 0, 'acme:pbx'],
        [4, 2, '198.51.100.0/24', 0, undefined],
        // mask absent or 0 means the whole address (permissions/address.c)
        [5, 1, '2001:db8::1/128', 0, undefined],
        [6, 3, '192.0.2.7/32', 5060, undefined],
        [7, 1, '203.0.113.64/26', 0, 'x'],
      ],
    );
  });

  test('reports every bad line with its number and reason, and keeps the good ones', () => {
    const file = ['1 203.0.113.50 32 0 ok', 'x 1.2.3.4', '1', '1 sip.example.com', '1 10.0.0.1 24', '1 1.2.3.4 33', '1 1.2.3.4 32 70000', '0 1.2.3.4', '1 1.2.3.4 32 0 tag extra', '1 1.2.3.0/24'].join('\n');
    const { records, errors } = parseKamailioAddress(file);
    assert.deepEqual(
      records.map((r) => r.line),
      [1],
    );
    assert.deepEqual(
      errors.map((e) => e.line),
      [2, 3, 4, 5, 6, 7, 8, 9, 10],
    );
    const reason = (line: number) => errors.find((e) => e.line === line)!.reason;
    assert.match(reason(2), /group 'x' is not a whole number/);
    assert.match(reason(3), /no address/);
    assert.match(reason(4), /host names are not taken/);
    assert.match(reason(5), /host bits set: did you mean 10\.0\.0\.0\/24/);
    assert.match(reason(6), /longer than 32 bits/);
    assert.match(reason(7), /not a port number/);
    assert.match(reason(8), /from 1 to/);
    assert.match(reason(9), /6 fields/);
    assert.match(reason(10), /mask field/);
    assert.equal(errors[0]!.text, 'x 1.2.3.4');
  });
});

describe('formatKamailioAddress', () => {
  test('writes the longest prefix first within a group, so the first subnet Kamailio matches is the most specific', () => {
    const text = formatKamailioAddress([
      { group: 1, cidr: cidr('203.0.113.0/24'), port: 0, tag: 'a:wide' },
      { group: 1, cidr: cidr('203.0.113.0/28'), port: 0, tag: 'a:narrow' },
      { group: 1, cidr: cidr('203.0.113.9'), port: 0, tag: 'a:host' },
    ]);
    assert.equal(text, '1 203.0.113.9 32 0 a:host\n1 203.0.113.0 28 0 a:narrow\n1 203.0.113.0 24 0 a:wide\n');
  });

  test('refuses a tag Kamailio would cut short', () => {
    assert.throws(() => formatKamailioAddress([{ group: 1, cidr: cidr('203.0.113.9'), port: 0, tag: 'a b' }]), /cannot be written/);
  });

  test('parse ∘ format is the identity on records', () => {
    const block = fc.oneof(
      fc.tuple(fc.nat(0xffffffff), fc.integer({ min: 1, max: 32 })).map(([v, p]) => ({ ip: parseIp(`${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`)!, p })),
      fc.tuple(fc.array(fc.nat(0xffff), { minLength: 7, maxLength: 7 }), fc.integer({ min: 1, max: 128 })).map(([g, p]) => ({ ip: parseIp(`2001:${g.map((x) => x.toString(16)).join(':')}`)!, p })),
    );
    const record: fc.Arbitrary<KamailioAddress> = fc.record({
      group: fc.integer({ min: 1, max: 100 }),
      cidr: block.map(({ ip, p }) => ({ network: networkOf(ip, p), prefix: p })),
      port: fc.constantFrom(0, 5060),
      tag: fc.option(fc.stringMatching(/^[A-Za-z0-9:._-]{1,20}$/), { nil: undefined }),
    });
    fc.assert(
      fc.property(fc.array(record, { maxLength: 20 }), (records) => {
        const text = formatKamailioAddress(records);
        const parsed = parseKamailioAddress(text);
        assert.deepEqual(parsed.errors, []);
        assert.equal(parsed.records.length, records.length);
        assert.equal(formatKamailioAddress(parsed.records.map(({ line: _line, ...r }) => r)), text);
      }),
    );
  });
});
