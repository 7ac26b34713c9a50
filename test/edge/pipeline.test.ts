import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { header, parseMessage, type SipMessage } from '../../src/edge/message.ts';
import { handlePacket, type EdgeContext, type Outcome } from '../../src/edge/pipeline.ts';
import { DEFAULT_REJECT } from '../../src/edge/reply.ts';
import { FakeRules } from './fake-rules.ts';

const EDGE = { host: '192.0.2.10', port: 5060 };
const UPSTREAM = { host: '192.0.2.20', port: 5080 };
const CALLER = { host: '198.51.100.7', port: 40000 };
const TRUNK = { host: '203.0.113.50', port: 5060 };

function context(rules = defaultRules()): EdgeContext {
  return { rules, self: EDGE, upstream: UPSTREAM, reject: DEFAULT_REJECT };
}

function defaultRules(): FakeRules {
  return new FakeRules()
    .addTrunk(TRUNK.host, 'acct-trunk', 'trunk-1')
    .addRealm('a.example', { accountId: 'acct-a', allow: [CALLER.host], userAgent: 'Yealink', devices: { alice: 'dev-alice' } });
}

interface RequestSpec {
  method?: string;
  uri?: string;
  via?: string[];
  from?: string;
  to?: string;
  extra?: string[];
  cseq?: string;
  maxForwards?: string | null;
}

function request(spec: RequestSpec = {}): Buffer {
  const method = spec.method ?? 'INVITE';
  const lines = [
    `${method} ${spec.uri ?? 'sip:bob@a.example'} SIP/2.0`,
    ...(spec.via ?? [`Via: SIP/2.0/UDP ${CALLER.host}:${CALLER.port};branch=z9hG4bKcaller1;rport`]).map((v) =>
      v.startsWith('Via:') || v.startsWith('v:') ? v : `Via: ${v}`,
    ),
    ...(spec.maxForwards === null ? [] : [`Max-Forwards: ${spec.maxForwards ?? '70'}`]),
    `From: ${spec.from ?? '"Alice" <sip:alice@a.example>;tag=f1'}`,
    `To: ${spec.to ?? '<sip:bob@a.example>'}`,
    'Call-ID: call-1@198.51.100.7',
    `CSeq: ${spec.cseq ?? `1 ${method}`}`,
    'User-Agent: Yealink SIP-T46S',
    ...(spec.extra ?? []),
    'Content-Length: 0',
    '',
    '',
  ];
  return Buffer.from(lines.join('\r\n'), 'latin1');
}

function parsed(bytes: Buffer): SipMessage {
  const message = parseMessage(bytes);
  assert.ok(message);
  return message;
}

function forwarded(outcome: Outcome): SipMessage {
  assert.equal(outcome.action, 'forward', JSON.stringify(outcome));
  return parsed((outcome as Extract<Outcome, { action: 'forward' }>).bytes);
}

function replied(outcome: Outcome): { message: SipMessage; to: { host: string; port: number }; reason: string } {
  assert.equal(outcome.action, 'reject', JSON.stringify(outcome));
  const reject = outcome as Extract<Outcome, { action: 'reject' }>;
  assert.ok(reject.reply, 'a reply was sent');
  return { message: parsed(reject.reply.bytes), to: reject.reply.to, reason: reject.reason };
}

const values = (message: SipMessage, key: string) => message.headers.filter((h) => h.key === key).map((h) => h.value);

describe('requests from a trunk address', () => {
  it('go upstream with X-Account-ID and X-Trunk-ID, and forged edge headers removed', () => {
    const outcome = handlePacket(
      context(),
      request({ extra: ['X-Account-ID: forged', 'x-trunk-id: forged', 'X-Device-ID: forged'] }),
      TRUNK,
    );
    assert.equal(outcome.action === 'forward' && outcome.direction, 'request');
    assert.deepEqual(outcome.action === 'forward' && outcome.to, UPSTREAM);
    const message = forwarded(outcome);
    assert.deepEqual(values(message, 'x-account-id'), ['acct-trunk']);
    assert.deepEqual(values(message, 'x-trunk-id'), ['trunk-1']);
    assert.deepEqual(values(message, 'x-device-id'), []);
  });
});

describe('requests decided by realm', () => {
  it('ask with the From realm, user and User-Agent, and carry the account and device', () => {
    const rules = defaultRules();
    const message = forwarded(handlePacket(context(rules), request({ extra: ['X-Trunk-ID: forged'] }), CALLER));
    assert.deepEqual(rules.asked, [
      { ip: CALLER.host, realm: 'a.example', username: 'alice', userAgent: 'Yealink SIP-T46S' },
    ]);
    assert.deepEqual(values(message, 'x-account-id'), ['acct-a']);
    assert.deepEqual(values(message, 'x-device-id'), ['dev-alice']);
    assert.deepEqual(values(message, 'x-trunk-id'), []);
  });

  it('take the realm from To when the From host is an IP address', () => {
    const rules = defaultRules();
    handlePacket(context(rules), request({ from: `<sip:alice@${CALLER.host}:5060>;tag=1` }), CALLER);
    assert.equal(rules.asked[0]?.realm, 'a.example');
  });

  it('are answered 603 Rejected by ACL per RFC 3261 §8.2.6 when denied', () => {
    const stranger = { host: '198.51.100.99', port: 5062 };
    const { message, to, reason } = replied(
      handlePacket(context(), request({ via: ['SIP/2.0/UDP 10.1.1.1:5062;branch=z9hG4bKs, SIP/2.0/UDP 10.9.9.9'] }), stranger),
    );
    assert.equal(reason, 'not_matched');
    assert.equal(message.type === 'response' && `${message.status} ${message.reason}`, '603 Rejected by ACL');
    assert.deepEqual(values(message, 'via'), [
      'SIP/2.0/UDP 10.1.1.1:5062;branch=z9hG4bKs;received=198.51.100.99',
      'SIP/2.0/UDP 10.9.9.9',
    ]);
    assert.deepEqual(to, { host: stranger.host, port: 5062 });
    assert.equal(header(message.headers, 'from'), '"Alice" <sip:alice@a.example>;tag=f1');
    assert.match(header(message.headers, 'to')!, /^<sip:bob@a\.example>;tag=iwr-[\w-]+$/);
    assert.equal(header(message.headers, 'call-id'), 'call-1@198.51.100.7');
    assert.equal(header(message.headers, 'cseq'), '1 INVITE');
    assert.equal(header(message.headers, 'content-length'), '0');
    assert.equal(message.headers.length, 7);
  });

  it('give the reason of the list that denied: user-agent mismatch, unknown realm', () => {
    const otherUa = request({ extra: [] }).toString('latin1').replace('Yealink SIP-T46S', 'friendly-scanner');
    assert.equal(replied(handlePacket(context(), Buffer.from(otherUa, 'latin1'), CALLER)).reason, 'user_agent_mismatch');
    assert.equal(replied(handlePacket(context(), request({ from: '<sip:x@nowhere.example>;tag=1' }), CALLER)).reason, 'unknown_realm');
  });

  it('use the configured reject code and reason, or stay silent', () => {
    const denied = request({ from: '<sip:x@nowhere.example>;tag=1' });
    const custom = replied(handlePacket({ ...context(), reject: { mode: 'respond', code: 403, reason: 'Go Away' } }, denied, CALLER));
    assert.equal(custom.message.type === 'response' && `${custom.message.status} ${custom.message.reason}`, '403 Go Away');
    assert.deepEqual(handlePacket({ ...context(), reject: { mode: 'drop' } }, denied, CALLER), {
      action: 'reject',
      reason: 'unknown_realm',
    });
  });

  it('forward under an allow unknown-realm policy, without account headers', () => {
    const rules = defaultRules();
    rules.unknownRealm = 'allow';
    const message = forwarded(handlePacket(context(rules), request({ from: '<sip:x@nowhere.example>;tag=1' }), CALLER));
    assert.deepEqual(values(message, 'x-account-id'), []);
  });

  it('follow a rule change on the very next request', () => {
    const rules = defaultRules();
    assert.equal(handlePacket(context(rules), request(), CALLER).action, 'forward');
    rules.realms.get('a.example')!.allow = [];
    assert.equal(handlePacket(context(rules), request(), CALLER).action, 'reject');
  });
});

describe('stateless proxying', () => {
  it('adds its own Via with a deterministic RFC 3261 branch over the stamped sender Via', () => {
    const first = forwarded(handlePacket(context(), request(), CALLER));
    const vias = values(first, 'via');
    assert.match(vias[0]!, /^SIP\/2\.0\/UDP 192\.0\.2\.10:5060;branch=z9hG4bK-iw-[\w-]{16}$/);
    assert.equal(vias[1], 'SIP/2.0/UDP 198.51.100.7:40000;branch=z9hG4bKcaller1;rport=40000;received=198.51.100.7');
    const again = forwarded(handlePacket(context(), request(), CALLER));
    assert.equal(values(again, 'via')[0], vias[0], 'a retransmission gets the same branch');
    const cancel = forwarded(handlePacket(context(), request({ method: 'CANCEL' }), CALLER));
    assert.equal(values(cancel, 'via')[0], vias[0], 'the CANCEL gets its INVITE branch');
    const other = forwarded(handlePacket(context(), request({ via: ['SIP/2.0/UDP 198.51.100.7:40000;branch=z9hG4bKcaller2'] }), CALLER));
    assert.notEqual(values(other, 'via')[0], vias[0]);
  });

  it('derives a stable branch for pre-RFC 3261 clients too', () => {
    const old = { via: ['SIP/2.0/UDP 198.51.100.7:40000;branch=1'] };
    const invite = forwarded(handlePacket(context(), request(old), CALLER));
    const cancel = forwarded(handlePacket(context(), request({ ...old, method: 'CANCEL', cseq: '1 CANCEL' }), CALLER));
    assert.equal(values(cancel, 'via')[0], values(invite, 'via')[0]);
  });

  it('decrements Max-Forwards, adds 70 when absent, answers 483 at zero', () => {
    assert.deepEqual(values(forwarded(handlePacket(context(), request({ maxForwards: '5' }), CALLER)), 'max-forwards'), ['4']);
    assert.deepEqual(values(forwarded(handlePacket(context(), request({ maxForwards: null }), CALLER)), 'max-forwards'), ['70']);
    const hop = replied(handlePacket(context(), request({ maxForwards: '0' }), CALLER));
    assert.equal(hop.reason, 'too_many_hops');
    assert.equal(hop.message.type === 'response' && hop.message.status, 483);
    assert.equal(handlePacket(context(), request({ maxForwards: 'x' }), CALLER).action, 'malformed');
  });

  it('forwards a request whose URI names the edge itself', () => {
    const outcome = handlePacket(context(), request({ uri: `sip:bob@${EDGE.host}:${EDGE.port}` }), CALLER);
    assert.equal(outcome.action === 'forward' && outcome.to, UPSTREAM);
  });

  it('absorbs the ACK to its own 603 and never answers a denied ACK', () => {
    const stranger = { host: '198.51.100.99', port: 5062 };
    const rejection = replied(handlePacket(context(), request(), stranger));
    const to = header(rejection.message.headers, 'to')!;
    const ack = request({ method: 'ACK', to, cseq: '1 ACK' });
    assert.deepEqual(handlePacket(context(), ack, stranger), { action: 'drop', reason: 'ack_absorbed' });
    // Even once the source is allowed, the ACK belongs to the edge's own 603.
    assert.deepEqual(handlePacket(context(), ack, CALLER), { action: 'drop', reason: 'ack_absorbed' });
    const deniedAck = request({ method: 'ACK', to: '<sip:bob@a.example>;tag=uas', cseq: '1 ACK' });
    assert.deepEqual(handlePacket(context(), deniedAck, stranger), { action: 'drop', reason: 'ack_absorbed' });
    assert.equal(handlePacket(context(), deniedAck, CALLER).action, 'forward');
  });

  it('drops malformed requests: missing Via, From, Call-ID', () => {
    const good = request().toString('latin1');
    for (const cut of [/Via: [^\r]*\r\n/, /From: [^\r]*\r\n/, /Call-ID: [^\r]*\r\n/]) {
      assert.equal(handlePacket(context(), Buffer.from(good.replace(cut, ''), 'latin1'), CALLER).action, 'malformed');
    }
  });
});

describe('responses', () => {
  function viaOfForwarded(): string {
    return values(forwarded(handlePacket(context(), request(), CALLER)), 'via').join(', ');
  }

  const response = (via: string) =>
    Buffer.from(
      [
        'SIP/2.0 200 OK',
        `Via: ${via}`,
        'From: <sip:alice@a.example>;tag=f1',
        'To: <sip:bob@a.example>;tag=t1',
        'Call-ID: call-1@198.51.100.7',
        'CSeq: 1 INVITE',
        'Content-Length: 0',
        '',
        '',
      ].join('\r\n'),
      'latin1',
    );

  it('from upstream pop the edge Via (folded or not) and go to the received/rport of the next', () => {
    const outcome = handlePacket(context(), response(viaOfForwarded()), UPSTREAM);
    assert.equal(outcome.action === 'forward' && outcome.direction, 'response');
    assert.deepEqual(outcome.action === 'forward' && outcome.to, CALLER);
    assert.deepEqual(values(forwarded(outcome), 'via'), [
      'SIP/2.0/UDP 198.51.100.7:40000;branch=z9hG4bKcaller1;rport=40000;received=198.51.100.7',
    ]);
  });

  it('from anywhere but upstream, or without the edge Via on top, are dropped', () => {
    assert.deepEqual(handlePacket(context(), response(viaOfForwarded()), CALLER), {
      action: 'drop',
      reason: 'not_from_upstream',
    });
    assert.deepEqual(handlePacket(context(), response('SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKnotours'), UPSTREAM), {
      action: 'drop',
      reason: 'not_our_via',
    });
    const onlyOurs = viaOfForwarded().split(', ')[0]!;
    assert.deepEqual(handlePacket(context(), response(onlyOurs), UPSTREAM), { action: 'drop', reason: 'no_next_via' });
  });
});
