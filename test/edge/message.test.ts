import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { header, parseMessage, serializeMessage, SipParseError, type SipMessage } from '../../src/edge/message.ts';
import { formatVia, parseVia, responseTarget, stampReceived, viaParam } from '../../src/edge/via.ts';
import { addressParam, addressUri, sipUriParts } from '../../src/edge/uri.ts';

const sip = (...lines: string[]) => Buffer.from(lines.join('\r\n'), 'latin1');

function parse(bytes: Buffer): SipMessage {
  const message = parseMessage(bytes);
  assert.ok(message);
  return message;
}

const invite = sip(
  'INVITE sip:bob@b.example SIP/2.0',
  'Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKabc',
  'Max-Forwards: 70',
  'From: "Alice" <sip:alice@a.example>;tag=1',
  'To: <sip:bob@b.example>',
  'Call-ID: c1',
  'CSeq: 1 INVITE',
  'Content-Type: application/sdp',
  'Content-Length: 4',
  '',
  'v=0\n',
);

describe('parseMessage', () => {
  it('reads a request: method, URI, headers in order, body cut to Content-Length', () => {
    const message = parse(invite);
    assert.equal(message.type, 'request');
    assert.equal(message.type === 'request' && message.method, 'INVITE');
    assert.equal(message.type === 'request' && message.uri, 'sip:bob@b.example');
    assert.deepEqual(message.headers.map((h) => h.key), [
      'via', 'max-forwards', 'from', 'to', 'call-id', 'cseq', 'content-type', 'content-length',
    ]);
    assert.equal(message.body.toString(), 'v=0\n');
  });

  it('reads a response status and reason', () => {
    const message = parse(sip('SIP/2.0 180 Ringing', 'Via: SIP/2.0/UDP h;branch=z9hG4bK1', '', ''));
    assert.equal(message.type === 'response' && message.status, 180);
    assert.equal(message.type === 'response' && message.reason, 'Ringing');
  });

  it('knows compact header names by their long form and keeps the written name', () => {
    const message = parse(
      sip('OPTIONS sip:x SIP/2.0', 'v: SIP/2.0/UDP h', 'f: <sip:a@b>', 't: <sip:c@d>', 'i: id', 'l: 0', 'm: <sip:a@h>', '', ''),
    );
    assert.deepEqual(message.headers.map((h) => [h.name, h.key]), [
      ['v', 'via'], ['f', 'from'], ['t', 'to'], ['i', 'call-id'], ['l', 'content-length'], ['m', 'contact'],
    ]);
  });

  it('keys a name however it is spelt, keeps it as written, and trims values as trim() does', () => {
    const message = parse(
      sip('OPTIONS sip:x SIP/2.0', 'VIA: SIP/2.0/UDP h', 'Via :x', 'To:\t<sip:c@d> \xa0', 'Tox: 1', 'call-id:  id  ', 'CSeq:1 OPTIONS', '', ''),
    );
    assert.deepEqual(message.headers.map((h) => [h.name, h.key, h.value]), [
      ['VIA', 'via', 'SIP/2.0/UDP h'], ['Via', 'via', 'x'], ['To', 'to', '<sip:c@d>'], ['Tox', 'tox', '1'], ['call-id', 'call-id', 'id'], ['CSeq', 'cseq', '1 OPTIONS'],
    ]);
    assert.throws(() => parse(sip('OPTIONS sip:x SIP/2.0', 'Via', '', '')), SipParseError);
  });

  it('splits a folded Via into one entry per value, in order, over several Via lines', () => {
    const message = parse(
      sip(
        'SIP/2.0 200 OK',
        'Via: SIP/2.0/UDP a:1;branch=z9hG4bK1, SIP/2.0/UDP b:2;branch=z9hG4bK2',
        'Call-ID: x',
        'v: SIP/2.0/UDP c:3;branch=z9hG4bK3;x="p,q"',
        '',
        '',
      ),
    );
    assert.deepEqual(
      message.headers.filter((h) => h.key === 'via').map((h) => h.value),
      ['SIP/2.0/UDP a:1;branch=z9hG4bK1', 'SIP/2.0/UDP b:2;branch=z9hG4bK2', 'SIP/2.0/UDP c:3;branch=z9hG4bK3;x="p,q"'],
    );
    // The headers around them keep their places, and each Via entry the name it was written with.
    assert.deepEqual(message.headers.map((h) => h.name), ['Via', 'Via', 'Call-ID', 'v']);
  });

  it('joins continuation lines to the header above', () => {
    const message = parse(sip('OPTIONS sip:x SIP/2.0', 'Subject: one', '  two', '\tthree', '', ''));
    assert.equal(header(message.headers, 'subject'), 'one two three');
  });

  it('treats a datagram of CRLFs as a keep-alive', () => {
    assert.equal(parseMessage(Buffer.from('\r\n\r\n')), null);
  });

  for (const [what, bytes] of [
    ['no blank line', sip('OPTIONS sip:x SIP/2.0', 'Call-ID: x')],
    ['garbage start line', sip('HELLO', '', '')],
    ['wrong version', sip('OPTIONS sip:x SIP/3.0', '', '')],
    ['bad status', sip('SIP/2.0 20 OK', '', '')],
    ['header without colon', sip('OPTIONS sip:x SIP/2.0', 'Nonsense', '', '')],
    ['space in a header name', sip('OPTIONS sip:x SIP/2.0', 'Call ID: x', '', '')],
    ['body shorter than Content-Length', sip('OPTIONS sip:x SIP/2.0', 'Content-Length: 10', '', 'abc')],
    ['non-numeric Content-Length', sip('OPTIONS sip:x SIP/2.0', 'Content-Length: ten', '', '')],
    ['empty folded Via value', sip('SIP/2.0 200 OK', 'Via: SIP/2.0/UDP a, ', '', '')],
  ] as const) {
    it(`refuses ${what}`, () => assert.throws(() => parseMessage(bytes), SipParseError));
  }

  it('serializes back to the same bytes', () => {
    assert.deepEqual(serializeMessage(parse(invite)), invite);
    const latin1 = sip('MESSAGE sip:x SIP/2.0', 'Subject: caf\u00e9 \u00ff', 'Content-Length: 2', '', '\u0000\u00ff');
    assert.deepEqual(serializeMessage(parse(latin1)), latin1);
  });

  it('copies the lines it left alone as they were written, and writes anew only what changed', () => {
    const message = parse(
      sip('OPTIONS sip:x SIP/2.0', 'subject :  odd\t ', 'Max-Forwards:70', 'X-Note: one', ' two', 'CSEQ:1 OPTIONS', 'Content-Length: 0', '', ''),
    );
    message.headers[1]!.value = '69';
    message.headers.splice(3, 0, { name: 'X-Added', key: 'x-added', value: 'yes' });
    // A header from another message keeps that message's bytes.
    const other = parse(sip('OPTIONS sip:y SIP/2.0', 'Call-ID:  elsewhere', '', ''));
    message.headers.push(other.headers[0]!);
    assert.equal(
      serializeMessage(message).toString('latin1'),
      [
        'OPTIONS sip:x SIP/2.0', 'subject :  odd\t ', 'Max-Forwards: 69', 'X-Note: one two', 'X-Added: yes', 'CSEQ:1 OPTIONS', 'Content-Length: 0',
        'Call-ID:  elsewhere', '', '',
      ].join('\r\n'),
    );
  });
});

describe('Via', () => {
  it('parses and formats sent-by and parameters, IPv6 included', () => {
    const via = parseVia('SIP/2.0/UDP [2001:db8::1]:5070;branch=z9hG4bKx;rport');
    assert.deepEqual(via, {
      protocol: 'SIP/2.0/UDP', host: '2001:db8::1', port: 5070, params: [['branch', 'z9hG4bKx'], ['rport', undefined]],
    });
    assert.equal(formatVia(via), 'SIP/2.0/UDP [2001:db8::1]:5070;branch=z9hG4bKx;rport');
  });

  it('stamps received when the sent-by is not the source, and fills rport when asked', () => {
    const nat = parseVia('SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bKx;rport');
    assert.equal(stampReceived(nat, { host: '198.51.100.7', port: 40000 }), true);
    assert.equal(formatVia(nat), 'SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bKx;rport=40000;received=198.51.100.7');
    assert.deepEqual(responseTarget(nat), { host: '198.51.100.7', port: 40000 });

    const direct = parseVia('SIP/2.0/UDP 198.51.100.7:5062;branch=z9hG4bKx');
    assert.equal(stampReceived(direct, { host: '198.51.100.7', port: 5062 }), false);
    assert.deepEqual(responseTarget(direct), { host: '198.51.100.7', port: 5062 });
  });

  it('sends to port 5060 when the sent-by has none', () => {
    assert.deepEqual(responseTarget(parseVia('SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKx')), { host: '192.0.2.9', port: 5060 });
  });

  it('finds a parameter whatever case it is written in', () => {
    const via = parseVia('SIP/2.0/UDP 192.0.2.9;Branch=z9hG4bKx;RPORT;received=192.0.2.1');
    assert.equal(viaParam(via, 'branch'), 'z9hG4bKx');
    assert.equal(viaParam(via, 'rport'), '');
    assert.equal(viaParam(via, 'maddr'), undefined);
    stampReceived(via, { host: '198.51.100.7', port: 4000 });
    assert.equal(formatVia(via), 'SIP/2.0/UDP 192.0.2.9;Branch=z9hG4bKx;RPORT=4000;received=198.51.100.7');
  });

  it('takes a tab or several spaces after the protocol, any case, and spaces around parameters', () => {
    assert.deepEqual(parseVia('sip/2.0/udp\t  192.0.2.9:5061 ; branch = z9hG4bKx ;rport'), {
      protocol: 'sip/2.0/udp', host: '192.0.2.9', port: 5061, params: [['branch', 'z9hG4bKx'], ['rport', undefined]],
    });
  });

  for (const bad of ['SIP/2.0/UDP', 'HTTP/1.1 host', 'SIP/2.0 host', 'SIP/2.0/UDP host;', 'SIP/2.0/UDP host:99999', 'SIP/2.0/UDP [::1', 'SIP/2.0/UDP h;;x']) {
    it(`refuses "${bad}"`, () => assert.throws(() => parseVia(bad), SipParseError));
  }
});

describe('From / To', () => {
  it('finds the URI and the tag of name-addr and addr-spec forms', () => {
    assert.equal(addressUri('"A, B" <sip:alice@a.example;transport=udp>;tag=9'), 'sip:alice@a.example;transport=udp');
    assert.equal(addressParam('"A" <sip:alice@a.example;tag=no>;tag=9', 'tag'), '9');
    assert.equal(addressUri('sip:alice@a.example;tag=9'), 'sip:alice@a.example');
    assert.equal(addressParam('sip:alice@a.example;tag=9', 'tag'), '9');
    assert.equal(addressParam('<sip:alice@a.example>', 'tag'), undefined);
    assert.equal(addressParam('<sip:alice@a.example>; TAG = 7', 'tag'), '7');
    assert.equal(addressParam('<sip:alice@a.example>;tags=7', 'tag'), undefined);
  });

  it('splits user and host; hosts are lower-cased, bare of port and brackets', () => {
    assert.deepEqual(sipUriParts('sip:alice:secret@A.Example:5060;user=phone'), { user: 'alice', host: 'a.example' });
    assert.deepEqual(sipUriParts('sips:+1555;npdi@b.example'), { user: '+1555;npdi', host: 'b.example' });
    assert.deepEqual(sipUriParts('sip:[2001:db8::1]:5060'), { user: '', host: '2001:db8::1' });
    assert.deepEqual(sipUriParts('tel:+15551234'), { user: '', host: '' });
    assert.throws(() => sipUriParts('alice'), SipParseError);
  });
});
