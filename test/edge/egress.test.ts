// api.md §7.1 on the pure pipeline: which socket an outbound request leaves from, what the carrier
// receives, the 403 for a dedicated IP that is not the account's, inbound calls on a dedicated IP,
// and responses coming back through the socket the request left from.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { EgressContext } from '../../src/edge/egress.ts';
import { header, parseMessage, type SipMessage } from '../../src/edge/message.ts';
import { handlePacket, type EdgeContext, type Outcome } from '../../src/edge/pipeline.ts';
import { DEFAULT_REJECT } from '../../src/edge/reply.ts';
import type { EgressReader } from '../../src/services/egress-pool.ts';
import { FakeRules } from './fake-rules.ts';

const EDGE = { host: '192.0.2.10', port: 5060 };
const UPSTREAM = { host: '192.0.2.20', port: 5080 };
/** The platform sends from the upstream's host, from any port. */
const PLATFORM = { host: UPSTREAM.host, port: 5090 };
const CARRIER = { host: '198.51.100.40', port: 5070 };
const EGRESS_PORT = 5062;
const IP_A = '192.0.2.101';
const IP_A2 = '192.0.2.102';
const IP_B = '192.0.2.201';

/** Assignments and bound sockets the tests set at will. */
class FakePool implements EgressReader {
  readonly assigned = new Map<string, string>();
  readonly order = new Map<string, string[]>();
  readonly bound = new Set<string>();

  assign(ip: string, account: string, bound = true): this {
    this.assigned.set(ip, account);
    this.order.set(account, [...(this.order.get(account) ?? []), ip]);
    if (bound) this.bound.add(ip);
    return this;
  }

  assigneeOf(ip: string): string | null {
    return this.assigned.get(ip) ?? null;
  }

  heldFor(accountId: string): readonly string[] {
    return this.order.get(accountId) ?? [];
  }
}

function context(pool: FakePool, rules = new FakeRules()): EdgeContext {
  const egress: EgressContext = { pool, port: EGRESS_PORT, holds: (ip) => pool.bound.has(ip) };
  return { rules, self: EDGE, upstream: UPSTREAM, reject: DEFAULT_REJECT, branchKey: 'test-key', egress };
}

/** A datagram: the start line, the headers, and an empty body. */
function sip(startLine: string, headers: string[]): Buffer {
  return Buffer.from([startLine, ...headers, 'Content-Length: 0', '', ''].join('\r\n'), 'latin1');
}

/** The platform's request for `account` (none: null), with the internal headers the edge must strip. */
function outbound(spec: { method?: string; uri?: string; account?: string | null } = {}): Buffer {
  const method = spec.method ?? 'INVITE';
  const account = spec.account === null ? [] : [`X-Account-ID: ${spec.account ?? 'acct-a'}`];
  return sip(`${method} ${spec.uri ?? `sip:+15551230000@${CARRIER.host}:${CARRIER.port}`} SIP/2.0`, [
    `Via: SIP/2.0/UDP ${PLATFORM.host}:${PLATFORM.port};branch=z9hG4bKplatform1;rport`,
    'Max-Forwards: 70',
    'From: "Acme" <sip:+15550001111@acme.example>;tag=p1',
    'To: <sip:+15551230000@carrier.example>',
    'Call-ID: out-1@platform',
    `CSeq: 1 ${method}`,
    ...account,
    'X-Trunk-ID: trunk-should-go',
    'X-Device-ID: device-should-go',
  ]);
}

function parsed(bytes: Buffer): SipMessage {
  const message = parseMessage(bytes);
  assert.ok(message);
  return message;
}

function forwarded(outcome: Outcome) {
  assert.equal(outcome.action, 'forward', JSON.stringify(outcome));
  if (outcome.action !== 'forward') throw new Error('unreachable');
  return { ...outcome, message: parsed(outcome.bytes) };
}

const vias = (message: SipMessage) => message.headers.filter((h) => h.key === 'via').map((h) => h.value);

describe('outbound requests from the platform (api.md §7.1)', () => {
  it('on the main socket: leave from the account’s first dedicated IP held here, to the Request-URI, internal headers gone', () => {
    const pool = new FakePool().assign(IP_A, 'acct-a').assign(IP_A2, 'acct-a');
    const out = forwarded(handlePacket(context(pool), outbound(), PLATFORM));
    assert.equal(out.direction, 'outbound');
    assert.equal(out.from, IP_A);
    assert.deepEqual(out.to, CARRIER);
    const [top, platform] = vias(out.message);
    assert.match(top!, new RegExp(`^SIP/2\\.0/UDP ${IP_A}:${EGRESS_PORT};branch=z9hG4bK`));
    assert.match(platform!, /branch=z9hG4bKplatform1/);
    for (const name of ['x-account-id', 'x-trunk-id', 'x-device-id']) assert.equal(header(out.message.headers, name), undefined, name);
    assert.equal(header(out.message.headers, 'max-forwards'), '69');
  });

  it('skips an assigned IP whose socket is not bound, and leaves from the main socket when none is held', () => {
    const pool = new FakePool().assign(IP_A, 'acct-a', false).assign(IP_A2, 'acct-a');
    assert.equal(forwarded(handlePacket(context(pool), outbound(), PLATFORM)).from, IP_A2);
    const none = forwarded(handlePacket(context(new FakePool()), outbound(), PLATFORM));
    assert.equal(none.from, undefined);
    assert.match(vias(none.message)[0]!, new RegExp(`^SIP/2\\.0/UDP ${EDGE.host}:${EDGE.port};`));
  });

  it('on a dedicated IP’s socket: sent from it when the IP is the account’s, else 403 Dedicated IP Not Assigned', () => {
    const pool = new FakePool().assign(IP_A, 'acct-a').assign(IP_B, 'acct-b');
    assert.equal(forwarded(handlePacket(context(pool), outbound(), PLATFORM, false, IP_A)).from, IP_A);
    for (const account of ['acct-a', null]) {
      const refused = handlePacket(context(pool), outbound({ account }), PLATFORM, false, IP_B);
      assert.equal(refused.action, 'reject');
      if (refused.action !== 'reject') return;
      assert.equal(refused.reason, 'dedicated_ip_not_assigned');
      const reply = parsed(refused.reply!.bytes);
      assert.equal(reply.type === 'response' && `${reply.status} ${reply.reason}`, '403 Dedicated IP Not Assigned');
      assert.deepEqual(refused.reply!.to, PLATFORM);
    }
    // An available IP is no one's.
    assert.equal(handlePacket(context(new FakePool()), outbound(), PLATFORM, false, IP_A).action, 'reject');
    // The ACK of a refused INVITE is not answered.
    assert.deepEqual(handlePacket(context(pool), outbound({ method: 'ACK' }), PLATFORM, false, IP_B), { action: 'reject', reason: 'dedicated_ip_not_assigned' });
  });

  it('every request of a call leaves from the same address with the INVITE’s branch for its CANCEL', () => {
    const pool = new FakePool().assign(IP_A, 'acct-a');
    const invite = forwarded(handlePacket(context(pool), outbound(), PLATFORM));
    const cancel = forwarded(handlePacket(context(pool), outbound({ method: 'CANCEL' }), PLATFORM));
    assert.equal(vias(cancel.message)[0], vias(invite.message)[0]);
    for (const method of ['ACK', 'BYE']) {
      const out = forwarded(handlePacket(context(pool), outbound({ method, uri: `sip:carrier@${CARRIER.host}:${CARRIER.port}` }), PLATFORM));
      assert.equal(out.from, IP_A, method);
    }
  });

  it('sends to port 5060 when the Request-URI names none, and hands a host name to the socket layer to resolve', () => {
    const pool = new FakePool().assign(IP_A, 'acct-a');
    assert.deepEqual(forwarded(handlePacket(context(pool), outbound({ uri: `sip:+1555@${CARRIER.host}` }), PLATFORM)).to, { host: CARRIER.host, port: 5060 });
    assert.deepEqual(forwarded(handlePacket(context(pool), outbound({ uri: 'sip:+1555@Carrier.Example:5999;transport=udp' }), PLATFORM)).to, { host: 'carrier.example', port: 5999 });
    assert.deepEqual(handlePacket(context(pool), outbound({ uri: 'tel:+15551230000' }), PLATFORM), { action: 'drop', reason: 'unroutable' });
  });

  it('a request from the upstream’s host naming the edge itself is not outbound: it is judged and sent upstream', () => {
    const rules = new FakeRules().addTrunk(UPSTREAM.host, 'acct-pbx', 'trunk-pbx');
    const pool = new FakePool().assign(IP_A, 'acct-a');
    for (const uri of [`sip:bob@${EDGE.host}:${EDGE.port}`, `sip:bob@${IP_A}:${EGRESS_PORT}`]) {
      const out = forwarded(handlePacket(context(pool, rules), outbound({ uri }), PLATFORM));
      assert.equal(out.direction, 'request', uri);
      assert.deepEqual(out.to, UPSTREAM);
    }
  });
});

describe('inbound requests on a dedicated IP (api.md §7.1)', () => {
  it('are judged as on the main socket and reach the upstream from that IP with X-Dedicated-IP', () => {
    const rules = new FakeRules().addTrunk(CARRIER.host, 'acct-a', 'trunk-1');
    const pool = new FakePool().assign(IP_A, 'acct-a');
    const invite = sip(`INVITE sip:+15550001111@${IP_A}:${EGRESS_PORT} SIP/2.0`, [
      `Via: SIP/2.0/UDP ${CARRIER.host}:${CARRIER.port};branch=z9hG4bKcarrier1`, 'Max-Forwards: 70', 'From: <sip:+15551230000@carrier.example>;tag=c1',
      `To: <sip:+15550001111@${IP_A}>`, 'Call-ID: in-1@carrier', 'CSeq: 1 INVITE', 'X-Dedicated-IP: 192.0.2.201',
    ]);
    const out = forwarded(handlePacket(context(pool, rules), invite, CARRIER, false, IP_A));
    assert.equal(out.direction, 'request');
    assert.deepEqual(out.to, UPSTREAM);
    assert.equal(out.from, IP_A);
    assert.deepEqual(out.message.headers.filter((h) => h.key === 'x-dedicated-ip').map((h) => h.value), [IP_A]);
    assert.equal(header(out.message.headers, 'x-trunk-id'), 'trunk-1');
    assert.match(vias(out.message)[0]!, new RegExp(`^SIP/2\\.0/UDP ${IP_A}:${EGRESS_PORT};`));
    // A stranger is refused there as anywhere.
    const denied = handlePacket(context(pool, new FakeRules()), invite, { host: '198.51.100.99', port: 5060 }, false, IP_A);
    assert.equal(denied.action, 'reject');
  });
});

describe('responses to outbound requests (api.md §7.1)', () => {
  function responseTo(request: Outcome, status = '200 OK'): Buffer {
    const out = forwarded(request);
    const keep = out.message.headers.filter((h) => ['via', 'from', 'to', 'call-id', 'cseq'].includes(h.key));
    return sip(`SIP/2.0 ${status}`, keep.map((h) => `${h.name}: ${h.value}`));
  }

  it('come back from the carrier to the socket the request left from and go to the platform from it', () => {
    const pool = new FakePool().assign(IP_A, 'acct-a');
    const response = responseTo(handlePacket(context(pool), outbound(), PLATFORM));
    const out = forwarded(handlePacket(context(pool), response, CARRIER, false, IP_A));
    assert.equal(out.direction, 'response');
    assert.equal(out.from, IP_A);
    assert.deepEqual(out.to, PLATFORM);
    assert.equal(vias(out.message).length, 1);
    // Not through another socket: the Via names IP_A.
    assert.deepEqual(handlePacket(context(pool), response, CARRIER), { action: 'drop', reason: 'not_our_via' });
  });

  it('are relayed from a carrier only towards the platform, never to a third party', () => {
    const pool = new FakePool().assign(IP_A, 'acct-a');
    const forged = sip('SIP/2.0 200 OK', [
      `Via: SIP/2.0/UDP ${IP_A}:${EGRESS_PORT};branch=z9hG4bK-iw-AAAAAAAAAAAAAAAA`, 'Via: SIP/2.0/UDP 198.51.100.66:5060;branch=z9hG4bKvictim',
      'From: <sip:a@b>;tag=1', 'To: <sip:c@d>;tag=2', 'Call-ID: x', 'CSeq: 1 INVITE',
    ]);
    assert.deepEqual(handlePacket(context(pool), forged, CARRIER, false, IP_A), { action: 'drop', reason: 'not_from_upstream' });
    // Towards the platform, a branch the edge did not make is refused too.
    const toPlatform = Buffer.from(forged.toString('latin1').replace('198.51.100.66:5060', `${PLATFORM.host}:${PLATFORM.port}`), 'latin1');
    assert.deepEqual(handlePacket(context(pool), toPlatform, CARRIER, false, IP_A), { action: 'drop', reason: 'bad_branch_mac' });
  });
});

describe('issue 27: outbound over TCP and TLS, as the Request-URI asks', () => {
  it('`;transport=tcp` and `sips:` (or `;transport=tls`) leave over TCP and TLS, their Via saying so; sips: defaults to 5061', () => {
    const pool = new FakePool().assign(IP_A, 'acct-a');
    for (const [uri, transport, port] of [
      [`sip:+1555@${CARRIER.host}:${CARRIER.port};transport=TCP`, 'tcp', CARRIER.port],
      [`sips:+1555@${CARRIER.host}`, 'tls', 5061],
      [`sip:+1555@${CARRIER.host};transport=tls`, 'tls', 5061],
      [`sip:+1555;npdi@${CARRIER.host}:${CARRIER.port};user=phone;transport=udp?subject=x`, 'udp', CARRIER.port],
    ] as const) {
      const out = forwarded(handlePacket(context(pool), outbound({ uri }), PLATFORM));
      assert.equal(out.transport, transport, uri);
      assert.equal(out.from, IP_A);
      assert.deepEqual(out.to, { host: CARRIER.host, port }, uri);
      assert.match(vias(out.message)[0]!, new RegExp(`^SIP/2\\.0/${transport.toUpperCase()} ${IP_A}:${EGRESS_PORT};branch=`), uri);
    }
  });

  it('a transport the edge does not speak is unroutable', () => {
    const pool = new FakePool().assign(IP_A, 'acct-a');
    assert.deepEqual(handlePacket(context(pool), outbound({ uri: `sip:+1555@${CARRIER.host};transport=sctp` }), PLATFORM), { action: 'drop', reason: 'unroutable' });
  });

  it('the carrier’s response on the connection from the dedicated IP goes to the platform over UDP from that IP’s socket', () => {
    const pool = new FakePool().assign(IP_A, 'acct-a');
    const request = forwarded(handlePacket(context(pool), outbound({ uri: `sip:+1555@${CARRIER.host}:${CARRIER.port};transport=tcp` }), PLATFORM));
    const keep = request.message.headers.filter((h) => ['via', 'from', 'to', 'call-id', 'cseq'].includes(h.key));
    const response = sip('SIP/2.0 200 OK', keep.map((h) => `${h.name}: ${h.value}`));
    const out = forwarded(handlePacket(context(pool), response, CARRIER, false, IP_A, 'tcp'));
    assert.equal(out.direction, 'response');
    assert.equal(out.transport, 'udp');
    assert.equal(out.from, IP_A);
    assert.deepEqual(out.to, PLATFORM);
  });
});
