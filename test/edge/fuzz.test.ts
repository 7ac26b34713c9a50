// Whatever arrives on the socket, the pipeline returns an outcome and never throws: random bytes,
// and valid messages with bytes flipped, cut, spliced or lines shuffled.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { firstControl } from '../../src/edge/message.ts';
import { handlePacket, type EdgeContext } from '../../src/edge/pipeline.ts';
import { DEFAULT_REJECT } from '../../src/edge/reply.ts';
import { FakeRules } from './fake-rules.ts';

const UPSTREAM = { host: '192.0.2.20', port: 5080 };
const CALLER = { host: '198.51.100.7', port: 40000 };
const rules = new FakeRules()
  .addTrunk('203.0.113.50', 'acct-trunk', 'trunk-1')
  .addRealm('a.example', { accountId: 'acct-a', allow: [CALLER.host] });
const ctx: EdgeContext = { rules, self: { host: '192.0.2.10', port: 5060 }, upstream: UPSTREAM, reject: DEFAULT_REJECT, branchKey: 'f'.repeat(43) };

const FIRST = [
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
];

/** The Vias the edge puts on the first sample, so the response sample carries a branch it made. */
function forwardedVias(): string {
  const outcome = handlePacket(ctx, Buffer.from(FIRST.join('\r\n'), 'latin1'), CALLER);
  assert.ok(outcome.action === 'forward');
  return outcome.bytes.toString('latin1').split('\r\n').filter((l) => l.startsWith('Via: ')).map((l) => l.slice(5)).join(', ');
}

const samples = [
  FIRST,
  [
    'SIP/2.0 200 OK',
    `Via: ${forwardedVias()}`,
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

/** Every byte a head may not hold: C0 controls but HTAB, and DEL (CR and LF count unless paired). */
const CONTROL_BYTES = [...Array.from({ length: 32 }, (_, c) => c).filter((c) => c !== 9), 127];
const headEnd = (bytes: Buffer) => bytes.indexOf('\r\n\r\n', 0, 'latin1');

/** Where the first control byte other than HTAB and a CRLF pair is in `bytes[0, end)`, or -1: a byte at a time. */
function looseControlAt(bytes: Buffer, end = bytes.length): number {
  for (let i = 0; i < end; i++) {
    const c = bytes[i]!;
    if (c === 13 && bytes[i + 1] === 10) i++;
    else if ((c < 32 && c !== 9) || c === 127) return i;
  }
  return -1;
}

const hasLooseControl = (head: Buffer) => looseControlAt(head) >= 0;

describe('firstControl, which reads four bytes a step where it can', () => {
  it('finds what a byte-at-a-time scan finds, at every alignment and length', () => {
    const byte = fc.oneof(fc.constantFrom(9, 10, 13, 32, 65, 126, 127, 128, 160, 255), fc.integer({ min: 0, max: 255 }));
    fc.assert(
      fc.property(fc.array(byte, { maxLength: 80 }), fc.nat(7), fc.nat(4), (values, offset, trim) => {
        // A view at any offset into a larger buffer, as datagrams in the batched socket's memory are.
        const memory = Buffer.alloc(offset + values.length + 1, 10);
        memory.set(values, offset);
        const bytes = memory.subarray(offset, offset + values.length + 1);
        const end = Math.max(0, values.length - trim);
        assert.equal(firstControl(bytes, 0, end), looseControlAt(bytes, end));
      }),
      { numRuns: 20000 },
    );
  });
});

describe('issue 20: control bytes inside a head are never relayed', () => {
  it('one control byte put anywhere in a valid head (start line, names, values) makes it malformed', () => {
    fc.assert(
      fc.property(fc.constantFrom(...samples), fc.constantFrom(...CONTROL_BYTES), fc.nat(), sources, (sample, byte, at, source) => {
        // Past the first byte (leading CR/LF before a message are allowed keep-alive padding) and
        // up to the end of the last header line, inside the blank line's CRLF pair included.
        const position = 1 + (at % (headEnd(sample) + 1));
        const bytes = Buffer.concat([sample.subarray(0, position), Buffer.from([byte]), sample.subarray(position)]);
        const outcome = handlePacket(ctx, bytes, source);
        assert.equal(outcome.action, 'malformed', `0x${byte.toString(16)} at ${position}: ${JSON.stringify(outcome)}`);
      }),
      { numRuns: 3000 },
    );
  });

  it('whatever is mutated, what the edge sends on has a clean head', () => {
    const controls = fc.constantFrom(...CONTROL_BYTES.map((c) => String.fromCharCode(c)), '\nX-Account-ID: victim', '\rX-Trunk-ID: t', '\0');
    const smuggle = fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), text: controls });
    fc.assert(
      fc.property(fc.constantFrom(...samples), fc.array(fc.oneof(mutation, smuggle), { minLength: 1, maxLength: 6 }), sources, (sample, edits, source) => {
        const outcome = handlePacket(ctx, mutate(sample, edits), source);
        const sent = outcome.action === 'forward' ? outcome.bytes : outcome.action === 'reject' ? outcome.reply?.bytes : undefined;
        if (sent === undefined) return;
        const head = sent.subarray(0, headEnd(sent));
        assert.ok(!hasLooseControl(head), JSON.stringify(head.toString('latin1')));
        if (outcome.action === 'forward' && outcome.direction === 'request') {
          const forged = head.toString('latin1').split('\r\n').filter((l) => /^x-(account|trunk|device)-id:\s*(victim|t|forged)$/i.test(l));
          assert.deepEqual(forged, []);
        }
      }),
      { numRuns: 5000 },
    );
  });
});
