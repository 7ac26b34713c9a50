// Whatever arrives on the socket, the pipeline returns an outcome and never throws: random bytes,
// and valid messages with bytes flipped, cut, spliced or lines shuffled.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { handlePacket, type EdgeContext } from '../../src/edge/pipeline.ts';
import { DEFAULT_REJECT } from '../../src/edge/reply.ts';
import { FakeRules } from './fake-rules.ts';

const UPSTREAM = { host: '192.0.2.20', port: 5080 };
const CALLER = { host: '198.51.100.7', port: 40000 };
const rules = new FakeRules()
  .addTrunk('203.0.113.50', 'acct-trunk', 'trunk-1')
  .addRealm('a.example', { accountId: 'acct-a', allow: [CALLER.host] });
const ctx: EdgeContext = { rules, self: { host: '192.0.2.10', port: 5060 }, upstream: UPSTREAM, reject: DEFAULT_REJECT };

const samples = [
  [
    'INVITE sip:bob@a.example SIP/2.0',
    'Via: SIP/2.0/UDP 198.51.100.7:40000;branch=z9hG4bKa;rport, SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bKb',
    'v: SIP/2.0/UDP host.example;received=10.0.0.1',
    'Max-Forwards: 1',
    'f: "Al, ice" <sip:alice:pw@a.example:5060;user=phone>;tag=1',
    't: sip:bob@198.51.100.7',
    'i: c1',
    'CSeq: 1 INVITE',
    'User-Agent: x',
    'X-Account-ID: forged',
    'l: 3',
    '',
    'v=0',
  ],
  [
    'SIP/2.0 200 OK',
    'Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-iw-abcdefghijklmnop, SIP/2.0/UDP 198.51.100.7:40000;rport=40000;received=198.51.100.7',
    'From: <sip:alice@a.example>;tag=1',
    'To: <sip:bob@a.example>;tag=2',
    'Call-ID: c1',
    'CSeq: 1 INVITE',
    'Content-Length: 0',
    '',
    '',
  ],
  ['ACK sip:bob@a.example SIP/2.0', 'Via: SIP/2.0/UDP 198.51.100.7', 'From: sip:a@a.example', 'To: <sip:b@a.example>;tag=iwr-x', 'Call-ID: c', 'CSeq: 1 ACK', '', ''],
].map((lines) => Buffer.from(lines.join('\r\n'), 'latin1'));

const sources = fc.constantFrom(CALLER, UPSTREAM, { host: '203.0.113.50', port: 5060 }, { host: '2001:db8::9', port: 5060 });

/** One edit of a datagram. */
const mutation = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }),
  fc.record({
    kind: fc.constant('insert' as const),
    at: fc.nat(),
    text: fc.oneof(fc.string(), fc.constantFrom(',', ';', '\r\n', '\r\n ', '<', '>', '"', ':', '@', '[', ']', '=', ' ', '\r\n\r\n')),
  }),
  fc.record({ kind: fc.constant('swapLines' as const), a: fc.nat(), b: fc.nat() }),
);

function mutate(bytes: Buffer, edits: Array<typeof mutation extends fc.Arbitrary<infer T> ? T : never>): Buffer {
  let out = Buffer.from(bytes);
  for (const edit of edits) {
    const at = out.length === 0 ? 0 : ('at' in edit ? edit.at : 0) % (out.length + 1);
    if (edit.kind === 'flip' && at < out.length) out[at] = edit.byte;
    else if (edit.kind === 'cut') out = out.subarray(0, at);
    else if (edit.kind === 'insert') out = Buffer.concat([out.subarray(0, at), Buffer.from(edit.text, 'utf8'), out.subarray(at)]);
    else if (edit.kind === 'swapLines') {
      const lines = out.toString('latin1').split('\r\n');
      const [a, b] = [edit.a % lines.length, edit.b % lines.length];
      [lines[a], lines[b]] = [lines[b]!, lines[a]!];
      out = Buffer.from(lines.join('\r\n'), 'latin1');
    }
  }
  return out;
}

describe('handlePacket never throws', () => {
  it('on random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), sources, (bytes, source) => {
        assert.ok(handlePacket(ctx, Buffer.from(bytes), source).action);
      }),
      { numRuns: 2000 },
    );
  });

  it('on mutated valid messages', () => {
    fc.assert(
      fc.property(fc.constantFrom(...samples), fc.array(mutation, { minLength: 1, maxLength: 6 }), sources, (sample, edits, source) => {
        assert.ok(handlePacket(ctx, mutate(sample, edits), source).action);
      }),
      { numRuns: 5000 },
    );
  });

  it('and the unmutated samples are handled, not refused', () => {
    assert.equal(handlePacket(ctx, samples[0]!, CALLER).action, 'forward');
    assert.equal(handlePacket(ctx, samples[1]!, UPSTREAM).action, 'forward');
    assert.equal(handlePacket(ctx, samples[2]!, CALLER).action, 'drop');
  });
});
