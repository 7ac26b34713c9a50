import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { header, parseMessage, type SipMessage } from '../../src/edge/message.ts';
import { handlePacket, isNewCall, type EdgeContext, type Outcome } from '../../src/edge/pipeline.ts';
import { DEFAULT_REJECT } from '../../src/edge/reply.ts';
import { FakeRules } from './fake-rules.ts';

const EDGE = { host: '192.0.2.10', port: 5060 };
const UPSTREAM = { host: '192.0.2.20', port: 5080 };
const CALLER = { host: '198.51.100.7', port: 40000 };
const TRUNK = { host: '203.0.113.50', port: 5060 };
const KEY = 'k'.repeat(43);

function context(rules = defaultRules()): EdgeContext {
  return { rules, self: EDGE, upstream: UPSTREAM, reject: DEFAULT_REJECT, branchKey: KEY };
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
    assert.match(vias[0]!, /^SIP\/2\.0\/UDP 192\.0\.2\.10:5060;branch=z9hG4bK-iw-[\w-]{27}$/);
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

  it('tells its own ACK by the To line however it is written, before parsing the rest', () => {
    const stranger = { host: '198.51.100.99', port: 5062 };
    const to = header(replied(handlePacket(context(), request(), stranger)).message.headers, 'to')!;
    const absorbed = { action: 'drop', reason: 'ack_absorbed' };
    const ack = request({ method: 'ACK', to, cseq: '1 ACK' }).toString('latin1');
    for (const written of [ack.replace('\r\nTo: ', '\r\nt: '), ack.replace('\r\nTo: ', '\r\nTO :'), ack.replace(';tag=', ' ;TAG = ')]) {
      assert.deepEqual(handlePacket(context(), Buffer.from(written, 'latin1'), CALLER), absorbed, written);
    }
    // A To line continued on the next is left to the whole parse, which absorbs it as well.
    const continued = ack.replace(`\r\nTo: ${to}`, `\r\nTo: <sip:bob@a.example>\r\n ${to.slice(to.indexOf(';'))}`);
    assert.notEqual(continued, ack);
    assert.deepEqual(handlePacket(context(), Buffer.from(continued, 'latin1'), CALLER), absorbed);
    // Nothing of it is sent anywhere, so what else it holds does not matter: even no Via.
    assert.deepEqual(handlePacket(context(), Buffer.from(ack.replace(/\r\nVia: [^\r]*/, ''), 'latin1'), CALLER), absorbed);
    // The edge's tag as a URI parameter, or in From, is not the edge's tag on the To header.
    for (const other of [
      request({ method: 'ACK', to: '<sip:bob@a.example;tag=iwr-x>;tag=uas', cseq: '1 ACK' }),
      request({ method: 'ACK', to: '<sip:bob@a.example>;tag=uas', from: '<sip:alice@a.example>;tag=iwr-x', cseq: '1 ACK' }),
      Buffer.from(ack.replace('ACK ', 'ack '), 'latin1'),
    ]) {
      assert.notDeepEqual(handlePacket(context(), other, CALLER), absorbed, other.toString('latin1'));
    }
  });

  it('answers a retransmission with the very same 603, and another call with another To tag', () => {
    const stranger = { host: '198.51.100.99', port: 5062 };
    const toTag = (bytes: Buffer) => header(replied(handlePacket(context(), bytes, stranger)).message.headers, 'to');
    assert.equal(toTag(request()), toTag(request()));
    assert.notEqual(toTag(request()), toTag(request({ via: [`SIP/2.0/UDP ${CALLER.host}:${CALLER.port};branch=z9hG4bKcaller2;rport`] })));
  });

  it('tells a new call from its start and To line (isNewCall), and nothing else', () => {
    assert.equal(isNewCall(request()), true);
    assert.equal(isNewCall(Buffer.from(request().toString('latin1').replace('\r\nTo: ', '\r\nt: '), 'latin1')), true);
    assert.equal(isNewCall(request({ to: '<sip:bob@a.example>;tag=b1' })), false, 'in a dialog');
    assert.equal(isNewCall(request({ to: '<sip:bob@a.example;tag=b1>' })), true, 'a URI parameter is no tag');
    assert.equal(isNewCall(request({ method: 'BYE' })), false);
    assert.equal(isNewCall(request({ method: 'ACK' })), false);
    assert.equal(isNewCall(Buffer.from(request().toString('latin1').replace('INVITE ', 'invite '), 'latin1')), false);
    // Whatever cannot be told at a glance is not a new call to it: the edge then reads it whole.
    assert.equal(isNewCall(Buffer.from(request().toString('latin1').replace('\r\nTo: <sip:bob@a.example>', '\r\nTo:\r\n <sip:bob@a.example>'), 'latin1')), false);
    assert.equal(isNewCall(request().subarray(0, 60)), false);
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

describe('issue 20: what the edge refuses to relay', () => {
  const text = (bytes: Buffer) => bytes.toString('latin1');
  const withHead = (mutate: (head: string) => string) => Buffer.from(mutate(text(request())), 'latin1');

  it('a bare LF inside a header value cannot smuggle an internal header upstream', () => {
    const smuggled = withHead((t) => t.replace('User-Agent: Yealink SIP-T46S', 'Subject: x\nX-Account-ID: victim\r\nUser-Agent: Yealink SIP-T46S'));
    assert.deepEqual(handlePacket(context(), smuggled, CALLER).action, 'malformed');
    // Without the LF the same header is stripped as usual.
    const plain = withHead((t) => t.replace('User-Agent: Yealink', 'X-Account-ID: victim\r\nUser-Agent: Yealink'));
    assert.deepEqual(values(forwarded(handlePacket(context(), plain, CALLER)), 'x-account-id'), ['acct-a']);
  });

  it('any control character but HTAB in the start line or a header value makes the message malformed', () => {
    const controls = [...Array.from({ length: 32 }, (_, c) => c).filter((c) => c !== 9), 127];
    for (const c of controls) {
      const char = String.fromCharCode(c);
      for (const where of ['start', 'value', 'name-end'] as const) {
        const bytes = withHead((t) =>
          where === 'start'
            ? t.replace('sip:bob@a.example SIP/2.0', `sip:bob${char}@a.example SIP/2.0`)
            : where === 'value'
              ? t.replace('Call-ID: call-1', `Call-ID: call${char}-1`)
              : t.replace('Content-Length: 0', `Content-Length: 0${char}`),
        );
        const outcome = handlePacket(context(), bytes, CALLER);
        assert.equal(outcome.action, 'malformed', `0x${c.toString(16)} in ${where}: ${JSON.stringify(outcome)}`);
      }
    }
    const tab = withHead((t) => t.replace('User-Agent: Yealink SIP-T46S', 'User-Agent: Yealink\tSIP-T46S'));
    assert.equal(handlePacket(context(), tab, CALLER).action, 'forward');
  });

  it('a bare CR, or an LF right after a CRLF, is no line end either', () => {
    for (const edit of ['Call-ID: a\rb', 'Call-ID: a\r\n\nCSeq: 1 INVITE', 'Call-ID: a\n\r\n']) {
      const bytes = withHead((t) => t.replace('Call-ID: call-1@198.51.100.7', edit));
      assert.equal(handlePacket(context(), bytes, CALLER).action, 'malformed', JSON.stringify(edit));
    }
  });

  it('datagrams over 8 KiB or with more than 100 header lines are malformed', () => {
    const padded = (n: number) => withHead((t) => t.replace('User-Agent:', `X-Pad: ${'p'.repeat(n)}\r\nUser-Agent:`));
    const base = request().length + 'X-Pad: \r\n'.length;
    assert.equal(handlePacket(context(), padded(8192 - base), CALLER).action, 'forward');
    assert.equal(handlePacket(context(), padded(8193 - base), CALLER).action, 'malformed');
    const lines = (n: number) => withHead((t) => t.replace('User-Agent:', `${'X-L: 1\r\n'.repeat(n)}User-Agent:`));
    const existing = text(request()).split('\r\n\r\n')[0]!.split('\r\n').length - 1;
    assert.equal(handlePacket(context(), lines(100 - existing), CALLER).action, 'forward');
    assert.equal(handlePacket(context(), lines(101 - existing), CALLER).action, 'malformed');
  });

  it('Max-Forwards above 70 leaves lowered to 70', () => {
    for (const [given, sent] of [['255', '70'], ['71', '70'], ['70', '69'], ['2', '1']]) {
      assert.deepEqual(values(forwarded(handlePacket(context(), request({ maxForwards: given }), CALLER)), 'max-forwards'), [sent]);
    }
  });

  it("a request that comes back carrying a Via the edge wrote is a loop: 482, and an ACK is dropped", () => {
    // The upstream sends the edge's own request back to it, as a proxy does: its Via on top.
    const loopBack = (method: string, cseq: string, to?: string) => {
      const sent = forwarded(handlePacket(context(), request({ method, cseq, ...(to ? { to } : {}) }), CALLER));
      const vias = values(sent, 'via');
      return request({ method, cseq, ...(to ? { to } : {}), via: [`SIP/2.0/UDP ${UPSTREAM.host}:${UPSTREAM.port};branch=z9hG4bKup`, ...vias] });
    };
    const loop = replied(handlePacket(context(), loopBack('INVITE', '1 INVITE'), CALLER));
    assert.equal(loop.reason, 'loop_detected');
    assert.equal(loop.message.type === 'response' && `${loop.message.status} ${loop.message.reason}`, '482 Loop Detected');
    assert.deepEqual(handlePacket(context(), loopBack('ACK', '1 ACK', '<sip:bob@a.example>;tag=u'), CALLER), { action: 'drop', reason: 'loop_detected' });
    // Whichever port wrote it (each SIP worker has its own), the branch MAC says it is ours.
    const otherWorker = { ...context(), self: { ...EDGE, port: 5099 } };
    assert.equal(replied(handlePacket(otherWorker, loopBack('INVITE', '1 INVITE'), CALLER)).reason, 'loop_detected');
    // A Via of the edge's shape that the edge did not write is no loop: another edge, or a forgery.
    const lookalike = request({ via: [`SIP/2.0/UDP ${CALLER.host}:${CALLER.port};branch=z9hG4bKc;rport`, `SIP/2.0/UDP ${EDGE.host}:${EDGE.port};branch=z9hG4bK-iw-${'x'.repeat(27)}`, 'SIP/2.0/UDP 198.51.100.1;branch=z9hG4bKz'] });
    assert.equal(handlePacket(context(), lookalike, CALLER).action, 'forward');
  });
});

describe('issue 20: responses cannot be steered', () => {
  const forwardedVias = (ctx = context()) => values(forwarded(handlePacket(ctx, request(), CALLER)), 'via');
  const response = (vias: string[]) =>
    Buffer.from(
      ['SIP/2.0 180 Ringing', ...vias.map((v) => `Via: ${v}`), 'From: <sip:alice@a.example>;tag=f1', 'To: <sip:bob@a.example>;tag=t1',
        'Call-ID: call-1@198.51.100.7', 'CSeq: 1 INVITE', 'Content-Length: 0', '', ''].join('\r\n'),
      'latin1',
    );

  it("only the upstream's own port may answer, not another port of its host", () => {
    assert.equal(handlePacket(context(), response(forwardedVias()), UPSTREAM).action, 'forward');
    assert.deepEqual(handlePacket(context(), response(forwardedVias()), { host: UPSTREAM.host, port: UPSTREAM.port + 1 }), {
      action: 'drop',
      reason: 'not_from_upstream',
    });
  });

  it('a response whose next hop was rewritten, or whose branch another key made, is dropped', () => {
    const [ours, sender] = forwardedVias();
    const victim = 'SIP/2.0/UDP 203.0.113.99:5060;branch=z9hG4bKcaller1;rport=5060;received=203.0.113.99';
    assert.deepEqual(handlePacket(context(), response([ours!, victim]), UPSTREAM), { action: 'drop', reason: 'bad_branch_mac' });
    const samePortOtherHost = sender!.replace('received=198.51.100.7', 'received=198.51.100.8');
    assert.deepEqual(handlePacket(context(), response([ours!, samePortOtherHost]), UPSTREAM), { action: 'drop', reason: 'bad_branch_mac' });
    const otherKey = { ...context(), branchKey: 'j'.repeat(43) };
    assert.deepEqual(handlePacket(otherKey, response([ours!, sender!]), UPSTREAM), { action: 'drop', reason: 'bad_branch_mac' });
    // A guessed branch of the right shape fails too.
    const guessed = ours!.replace(/branch=z9hG4bK-iw-.*/, `branch=z9hG4bK-iw-${'A'.repeat(27)}`);
    assert.deepEqual(handlePacket(context(), response([guessed, sender!]), UPSTREAM), { action: 'drop', reason: 'bad_branch_mac' });
  });

  it("is relayed by whichever SIP worker it reaches: the port in the edge's Via may be another worker's", () => {
    const otherWorker = { ...context(), self: { ...EDGE, port: 5099 } };
    assert.equal(handlePacket(otherWorker, response(forwardedVias()), UPSTREAM).action, 'forward');
    const otherHost = { ...context(), self: { ...EDGE, host: '192.0.2.11' } };
    assert.deepEqual(handlePacket(otherHost, response(forwardedVias()), UPSTREAM), { action: 'drop', reason: 'not_our_via' });
  });

  it('a retransmission and the CANCEL of an INVITE get the same MACed branch', () => {
    const invite = forwardedVias()[0];
    assert.equal(forwardedVias()[0], invite);
    const cancel = values(forwarded(handlePacket(context(), request({ method: 'CANCEL', cseq: '1 CANCEL' }), CALLER)), 'via')[0];
    assert.equal(cancel, invite);
  });
});

describe('issue 27: messages from TCP and TLS connections', () => {
  const EDGE_TCP = { host: '192.0.2.10', port: 5062 };
  const EDGE_TLS = { host: '192.0.2.12', port: 5061 };
  const streams = () => ({ ...context(), streams: { tcp: EDGE_TCP, tls: EDGE_TLS } });
  /** A caller's request over `transport`, its Via naming that transport and its listening port (not its connection's). */
  const over = (transport: 'TCP' | 'TLS', extra: string[] = []) =>
    request({ via: [`SIP/2.0/${transport} ${CALLER.host}:5060;branch=z9hG4bKstream1`], extra });
  const response = (vias: string[]) =>
    Buffer.from(
      ['SIP/2.0 200 OK', ...vias.map((v) => `Via: ${v}`), 'From: <sip:alice@a.example>;tag=f1', 'To: <sip:bob@a.example>;tag=t1',
        'Call-ID: call-1@198.51.100.7', 'CSeq: 1 INVITE', 'Content-Length: 0', '', ''].join('\r\n'),
      'latin1',
    );

  it('go upstream over TCP with a TCP Via naming the TCP listener, the sender Via stamped with its connection', () => {
    for (const [transport, arrival] of [['TCP', 'tcp'], ['TLS', 'tls']] as const) {
      const outcome = handlePacket(streams(), over(transport), CALLER, false, undefined, arrival);
      assert.equal(outcome.action === 'forward' && `${outcome.direction} ${outcome.transport}`, 'request tcp');
      const [ours, sender] = values(forwarded(outcome), 'via');
      assert.match(ours!, /^SIP\/2\.0\/TCP 192\.0\.2\.10:5062;branch=z9hG4bK-iw-/);
      // Without rport asked: the connection's address and port are recorded all the same.
      assert.equal(sender, `SIP/2.0/${transport} 198.51.100.7:5060;branch=z9hG4bKstream1;rport=40000;received=198.51.100.7`);
    }
  });

  it('the same message over UDP still goes over UDP, its Via left alone when it asked for nothing', () => {
    const outcome = handlePacket(streams(), request({ via: [`SIP/2.0/UDP ${CALLER.host}:40000;branch=z9hG4bKdg`] }), CALLER);
    assert.equal(outcome.action === 'forward' && outcome.transport, 'udp');
    assert.deepEqual(values(forwarded(outcome), 'via').slice(1), [`SIP/2.0/UDP ${CALLER.host}:40000;branch=z9hG4bKdg`]);
  });

  it('responses go back over the transport of the next Via, to the connection it names', () => {
    for (const [transport, arrival] of [['TCP', 'tcp'], ['TLS', 'tls']] as const) {
      const vias = values(forwarded(handlePacket(streams(), over(transport), CALLER, false, undefined, arrival)), 'via');
      const outcome = handlePacket(streams(), response(vias), UPSTREAM, false, undefined, 'tcp');
      assert.equal(outcome.action === 'forward' && outcome.transport, arrival);
      assert.deepEqual(outcome.action === 'forward' && outcome.to, CALLER);
    }
  });

  it('answers (603) go to the connection too', () => {
    const denied = { ...CALLER, host: '198.51.100.99' };
    const reply = replied(handlePacket(streams(), over('TLS'), denied, false, undefined, 'tls'));
    assert.deepEqual(reply.to, denied);
    assert.equal(reply.message.type === 'response' && reply.message.status, 603);
  });

  it('the branch MAC binds the transport the request came on: a response cannot be moved onto another', () => {
    const [ours, sender] = values(forwarded(handlePacket(streams(), over('TCP'), CALLER, false, undefined, 'tcp')), 'via');
    const claimed = sender!.replace('SIP/2.0/TCP', 'SIP/2.0/UDP');
    assert.deepEqual(handlePacket(streams(), response([ours!, claimed]), UPSTREAM, false, undefined, 'tcp'), { action: 'drop', reason: 'bad_branch_mac' });
    // A Via claiming TLS on a request that came over UDP: its response is not sent to a TLS connection.
    const forged = handlePacket(streams(), request({ via: [`SIP/2.0/TLS ${CALLER.host}:40000;branch=z9hG4bKf;rport`] }), CALLER);
    const [edgeVia, forgedVia] = values(forwarded(forged), 'via');
    assert.deepEqual(handlePacket(streams(), response([edgeVia!, forgedVia!]), UPSTREAM), { action: 'drop', reason: 'bad_branch_mac' });
  });

  it('a response is taken only from the upstream connection, and its Via must be the stream listener’s', () => {
    const vias = values(forwarded(handlePacket(streams(), over('TCP'), CALLER, false, undefined, 'tcp')), 'via');
    const otherConnection = { host: UPSTREAM.host, port: 45000 };
    assert.deepEqual(handlePacket(streams(), response(vias), otherConnection, false, undefined, 'tcp'), { action: 'drop', reason: 'not_from_upstream' });
    // Arriving over UDP, the edge looks for its UDP address in the Via.
    assert.deepEqual(handlePacket({ ...streams(), self: { host: '192.0.2.11', port: 5060 } }, response(vias), UPSTREAM), { action: 'drop', reason: 'not_our_via' });
  });

  it('a message cut from a stream must end where its Content-Length says', () => {
    const longer = Buffer.concat([over('TCP'), Buffer.from('extra')]);
    assert.equal(handlePacket(streams(), longer, CALLER, false, undefined, 'tcp').action, 'malformed');
    // Over UDP the extra bytes are cut off, as ever.
    assert.equal(handlePacket(streams(), Buffer.concat([request(), Buffer.from('extra')]), CALLER).action, 'forward');
  });

  it('a request back through the edge over TCP is a loop too, its Via naming the TCP listener’s address', () => {
    const ctx = { ...context(), streams: { tcp: { host: '192.0.2.13', port: 5062 } } };
    const vias = values(forwarded(handlePacket(ctx, over('TCP'), CALLER, false, undefined, 'tcp')), 'via');
    assert.match(vias[0]!, /^SIP\/2\.0\/TCP 192\.0\.2\.13:5062;/);
    const looped = request({ via: [`SIP/2.0/TCP ${CALLER.host}:5060;branch=z9hG4bKagain`, ...vias] });
    assert.equal(replied(handlePacket(ctx, looped, CALLER, false, undefined, 'tcp')).reason, 'loop_detected');
  });
});
