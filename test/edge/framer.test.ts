// SIP over a stream cut into messages by Content-Length (RFC 3261 §18.3), whatever the chunks.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { SipFramer, type Framed } from '../../src/edge/framer.ts';
import { MAX_MESSAGE_BYTES, parseMessage, SipParseError } from '../../src/edge/message.ts';

const sip = (head: string[], body = '') => Buffer.from(`${[...head, `Content-Length: ${Buffer.byteLength(body, 'latin1')}`].join('\r\n')}\r\n\r\n${body}`, 'latin1');

const INVITE = sip(['INVITE sip:bob@a.example SIP/2.0', 'Via: SIP/2.0/TCP 198.51.100.7:40000;branch=z9hG4bKa', 'Call-ID: c1', 'CSeq: 1 INVITE'], 'v=0\r\no=- 1 1 IN IP4 198.51.100.7\r\n\r\n');
const OK = sip(['SIP/2.0 200 OK', 'Via: SIP/2.0/TCP 198.51.100.7:40000;branch=z9hG4bKa', 'Call-ID: c1', 'CSeq: 1 INVITE']);
const COMPACT = Buffer.from('BYE sip:bob@a.example SIP/2.0\r\nv: SIP/2.0/TCP h;branch=z9hG4bKb\r\nl : 4\r\ni: c2\r\n\r\nbody', 'latin1');

const texts = (framed: Framed[]) => framed.map((f) => (f.kind === 'ping' ? 'PING' : f.bytes.toString('latin1')));

function frameAll(chunks: Buffer[]): Framed[] {
  const framer = new SipFramer();
  return chunks.flatMap((chunk) => framer.push(chunk));
}

describe('SipFramer', () => {
  it('cuts back-to-back messages at their Content-Length, a body full of CRLFs included', () => {
    assert.deepEqual(texts(frameAll([Buffer.concat([INVITE, OK, COMPACT])])), [INVITE, OK, COMPACT].map((b) => b.toString('latin1')));
  });

  it('keeps a message split anywhere until it is whole, and holds only its bytes', () => {
    const framer = new SipFramer();
    assert.deepEqual(framer.push(INVITE.subarray(0, 30)), []);
    assert.equal(framer.buffered, 30);
    assert.deepEqual(framer.push(INVITE.subarray(30, INVITE.length - 1)), []);
    assert.deepEqual(texts(framer.push(Buffer.concat([INVITE.subarray(INVITE.length - 1), OK.subarray(0, 5)]))), [INVITE.toString('latin1')]);
    assert.equal(framer.buffered, 5);
    assert.deepEqual(texts(framer.push(OK.subarray(5))), [OK.toString('latin1')]);
    assert.equal(framer.buffered, 0);
  });

  it('skips CRLFs between messages and reports each CRLFCRLF as a keep-alive ping (RFC 5626)', () => {
    const stream = Buffer.concat([Buffer.from('\r\n\r\n'), INVITE, Buffer.from('\r\n'), OK, Buffer.from('\r\n\r\n\r\n\r\n')]);
    assert.deepEqual(texts(frameAll([stream])), ['PING', INVITE.toString('latin1'), OK.toString('latin1'), 'PING', 'PING']);
    assert.deepEqual(texts(frameAll([Buffer.from('\r\n\r'), Buffer.from('\n')])), ['PING']);
  });

  it('each framed message parses with its body exactly as long as its Content-Length', () => {
    for (const framed of frameAll([Buffer.concat([INVITE, COMPACT])])) {
      assert.equal(framed.kind, 'message');
      const message = parseMessage((framed as { bytes: Buffer }).bytes, true);
      assert.ok(message);
    }
    assert.equal(parseMessage(COMPACT, true)!.body.toString(), 'body');
  });

  for (const [what, chunks, error] of [
    ['a head that does not end within the limit', [Buffer.alloc(MAX_MESSAGE_BYTES, 'a')], /over 8192 bytes/],
    ['the same head arriving a byte at a time', [...Buffer.alloc(MAX_MESSAGE_BYTES, 'a')].map((b) => Buffer.of(b)), /over 8192 bytes/],
    ['a Content-Length that takes the message over the limit', [Buffer.from(`OPTIONS sip:x SIP/2.0\r\nContent-Length: ${MAX_MESSAGE_BYTES}\r\n\r\n`)], /over 8192 bytes/],
    ['a message without Content-Length', [Buffer.from('OPTIONS sip:x SIP/2.0\r\nCall-ID: a\r\n\r\n')], /no Content-Length/],
    ['two Content-Length headers', [Buffer.from('OPTIONS sip:x SIP/2.0\r\nContent-Length: 0\r\nl: 5\r\n\r\nhello')], /two Content-Length/],
    ['a Content-Length that is not a number', [Buffer.from('OPTIONS sip:x SIP/2.0\r\nContent-Length: -1\r\n\r\n')], /bad Content-Length/],
    ['more than 100 header lines', [Buffer.from(`OPTIONS sip:x SIP/2.0\r\n${'X-A: 1\r\n'.repeat(100)}Content-Length: 0\r\n\r\n`)], /more than 100 header lines/],
  ] as const) {
    it(`refuses ${what}`, () => {
      assert.throws(() => frameAll([...chunks]), (e: Error) => e instanceof SipParseError && error.test(e.message));
    });
  }

  it('takes a message of exactly the limit', () => {
    const head = 'OPTIONS sip:x SIP/2.0\r\nContent-Length: ';
    const bodyLength = MAX_MESSAGE_BYTES - head.length - '8150'.length - 4;
    const whole = Buffer.from(`${head}${bodyLength}\r\n\r\n${'b'.repeat(bodyLength)}`, 'latin1');
    assert.equal(whole.length, MAX_MESSAGE_BYTES);
    assert.deepEqual(texts(frameAll([whole.subarray(0, 100), whole.subarray(100)])), [whole.toString('latin1')]);
  });

  it('a Content-Length folded onto a continuation line is read as message.ts reads it', () => {
    // message.ts joins continuation lines with a space, which no Content-Length value holds.
    assert.throws(() => frameAll([Buffer.from('OPTIONS sip:x SIP/2.0\r\nContent-Length:\r\n 0\r\n\r\n')]), /bad Content-Length/);
  });

  it('property: any split of a valid stream into chunks yields the same messages and pings', () => {
    const message = fc
      .record({
        kind: fc.constantFrom('request', 'response', 'ping', 'crlf'),
        body: fc.string({ unit: fc.constantFrom('a', '\r', '\n', 'é', ' ', '\r\n\r\n'), maxLength: 300 }),
        extra: fc.array(fc.constantFrom('X-A: 1', 'Subject: \r\n continued', 'l-not: 3', 'Contact: <sip:a@b>'), { maxLength: 5 }),
        compact: fc.boolean(),
      })
      .map(({ kind, body, extra, compact }) => {
        if (kind === 'ping') return Buffer.from('\r\n\r\n');
        if (kind === 'crlf') return Buffer.from('\r\n');
        const start = kind === 'request' ? 'MESSAGE sip:bob@a.example SIP/2.0' : 'SIP/2.0 200 OK';
        const length = `${compact ? 'l' : 'Content-Length'}: ${Buffer.byteLength(body, 'latin1')}`;
        return Buffer.from(`${[start, 'Via: SIP/2.0/TCP h;branch=z9hG4bKx', ...extra, length].join('\r\n')}\r\n\r\n${body}`, 'latin1');
      });
    fc.assert(
      fc.property(fc.array(message, { minLength: 1, maxLength: 12 }), fc.array(fc.nat(), { maxLength: 20 }), (parts, cuts) => {
        const stream = Buffer.concat(parts);
        const whole = texts(frameAll([stream]));
        const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b);
        const chunks = [0, ...points].map((from, i) => stream.subarray(from, [...points, stream.length][i]));
        assert.deepEqual(texts(frameAll(chunks)), whole);
        // The messages themselves, pings aside, are the parts that were messages.
        const sent = parts.filter((p) => !/^(\r\n)+$/.test(p.toString('latin1'))).map((p) => p.toString('latin1'));
        assert.deepEqual(whole.filter((t) => t !== 'PING'), sent);
      }),
      { numRuns: 500 },
    );
  });
});
