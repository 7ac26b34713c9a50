// The edge on real UDP sockets on loopback: a caller, the edge, and an upstream that answers.
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { parseMessage, type SipMessage } from '../../src/edge/message.ts';
import { DEFAULT_REJECT } from '../../src/edge/reply.ts';
import { startEdge, type EdgeOptions } from '../../src/edge/server.ts';
import { FakeRules } from './fake-rules.ts';

async function udp(host: string): Promise<Socket> {
  // This process reads 32 datagrams a turn from it while the edge beside it may send a batch of
  // 64 replies a turn: room for the backlog, as a peer in a process of its own would not need.
  const socket = createSocket({ type: 'udp4', recvBufferSize: 1 << 20 });
  socket.bind(0, host);
  await once(socket, 'listening');
  return socket;
}

async function receive(socket: Socket, ms = 2000): Promise<{ message: SipMessage; from: { address: string; port: number } }> {
  const [bytes, from] = (await once(socket, 'message', { signal: AbortSignal.timeout(ms) })) as [Buffer, { address: string; port: number }];
  const message = parseMessage(bytes);
  assert.ok(message);
  return { message, from };
}

const headerValues = (message: SipMessage, key: string) => message.headers.filter((h) => h.key === key).map((h) => h.value);

describe('startEdge on a wildcard address', () => {
  it('writes in its Via the local address it reaches upstream from, not 0.0.0.0', async () => {
    const upstream = await udp('127.0.0.1');
    const caller = await udp('127.0.0.4');
    const rules = new FakeRules().addTrunk('127.0.0.4', 'acct-t', 'trunk-t');
    const edge = await startEdge(
      { listen: [{ transport: 'udp', host: '0.0.0.0', port: 0 }], upstream: { host: 'localhost', port: upstream.address().port }, reject: DEFAULT_REJECT },
      rules,
      { registry: new Registry(), logger: pino({ level: 'silent' }) },
    );
    try {
      const { port } = caller.address();
      caller.send(
        `OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.4:${port};branch=z9hG4bKw\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: w\r\nCSeq: 1 OPTIONS\r\n\r\n`,
        edge.address.port,
        '127.0.0.1',
      );
      const { message } = await receive(upstream);
      assert.match(headerValues(message, 'via')[0]!, new RegExp(`^SIP/2\\.0/UDP 127\\.0\\.0\\.1:${edge.address.port};branch=`));
    } finally {
      await edge.close();
      upstream.close();
      caller.close();
    }
  });
});

describe('startEdge', () => {
  const rules = new FakeRules();
  const registry = new Registry();
  let edge: Awaited<ReturnType<typeof startEdge>>;
  let upstream: Socket;
  let trunk: Socket;
  let stranger: Socket;

  before(async () => {
    upstream = await udp('127.0.0.1');
    trunk = await udp('127.0.0.2');
    stranger = await udp('127.0.0.3');
    rules.addTrunk('127.0.0.2', 'acct-t', 'trunk-t');
    edge = await startEdge(
      { listen: [{ transport: 'udp', host: '127.0.0.1', port: 0 }], upstream: { host: '127.0.0.1', port: upstream.address().port }, reject: DEFAULT_REJECT },
      rules,
      { registry, logger: pino({ level: 'silent' }) },
    );
  });

  after(async () => {
    await edge.close();
    for (const socket of [upstream, trunk, stranger]) socket.close();
  });

  function invite(from: Socket, branch: string): Buffer {
    const { address, port } = from.address();
    return Buffer.from(
      [
        'INVITE sip:bob@a.example SIP/2.0',
        `Via: SIP/2.0/UDP ${address}:${port};branch=${branch};rport`,
        'From: <sip:alice@a.example>;tag=1',
        'To: <sip:bob@a.example>',
        `Call-ID: ${branch}`,
        'CSeq: 1 INVITE',
        'Content-Length: 0',
        '',
        '',
      ].join('\r\n'),
    );
  }

  it('reports the ephemeral port it bound', () => {
    assert.equal(edge.address.host, '127.0.0.1');
    assert.ok(edge.address.port > 0);
  });

  it('relays a trunk call upstream and the answer back by Via', async () => {
    trunk.send(invite(trunk, 'z9hG4bKt1'), edge.address.port, '127.0.0.1');
    const atUpstream = await receive(upstream);
    assert.deepEqual(headerValues(atUpstream.message, 'x-trunk-id'), ['trunk-t']);
    assert.equal(atUpstream.from.port, edge.address.port, 'sent from the edge socket');

    // Answer the way sipp does: all Vias folded into one header.
    const vias = headerValues(atUpstream.message, 'via');
    const ok = ['SIP/2.0 200 OK', `Via: ${vias.join(', ')}`, 'From: <sip:alice@a.example>;tag=1', 'To: <sip:bob@a.example>;tag=2',
      'Call-ID: z9hG4bKt1', 'CSeq: 1 INVITE', 'Content-Length: 0', '', ''].join('\r\n');
    upstream.send(ok, edge.address.port, '127.0.0.1');
    const atTrunk = await receive(trunk);
    assert.equal(atTrunk.message.type === 'response' && atTrunk.message.status, 200);
    assert.deepEqual(headerValues(atTrunk.message, 'via'), [vias[1]]);
  });

  it('answers a denied source 603 and counts it, counts malformed packets', async () => {
    stranger.send(invite(stranger, 'z9hG4bKs1'), edge.address.port, '127.0.0.1');
    const answer = await receive(stranger);
    assert.equal(answer.message.type === 'response' && `${answer.message.status} ${answer.message.reason}`, '603 Rejected by ACL');
    stranger.send('not sip at all\r\n\r\n', edge.address.port, '127.0.0.1');

    // The second datagram is handled once the next one (from the same sender) has been.
    stranger.send(invite(stranger, 'z9hG4bKs2'), edge.address.port, '127.0.0.1');
    await receive(stranger);
    const text = await registry.metrics();
    assert.match(text, /ipwarden_sip_requests_rejected_total\{reason="unknown_realm"\} 2/);
    assert.match(text, /ipwarden_sip_packets_malformed_total 1/);
    assert.match(text, /ipwarden_sip_packets_forwarded_total\{direction="request"\} 1/);
    assert.match(text, /ipwarden_sip_packets_forwarded_total\{direction="response"\} 1/);
    assert.match(text, /ipwarden_sip_packets_received_total 5/);
  });
});

describe('startEdge when handling a packet throws', () => {
  it('logs the failure once, not once a packet, and keeps serving', async () => {
    const lines: Array<{ msg: string; suppressed?: number }> = [];
    const logger = pino({ level: 'error' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
    const broken = {
      trunkEntryFor(): never {
        throw new Error('index bug');
      },
      decideByRealm(): never {
        throw new Error('index bug');
      },
    };
    const upstream = await udp('127.0.0.1');
    const caller = await udp('127.0.0.4');
    const registry = new Registry();
    const edge = await startEdge(
      { listen: [{ transport: 'udp', host: '127.0.0.1', port: 0 }], upstream: { host: '127.0.0.1', port: upstream.address().port }, reject: DEFAULT_REJECT },
      broken,
      { registry, logger },
    );
    try {
      const { port } = caller.address();
      for (let i = 0; i < 50; i++) {
        caller.send(
          `OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.4:${port};branch=z9hG4bK${i}\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: ${i}\r\nCSeq: 1 OPTIONS\r\n\r\n`,
          edge.address.port,
          '127.0.0.1',
        );
      }
      // Every packet is handled (and counted) before the test looks at the log.
      for (let waited = 0; waited < 2000 && !/internal_error"\} 50/.test(await registry.metrics()); waited += 20) {
        await new Promise((done) => setTimeout(done, 20));
      }
      assert.match(await registry.metrics(), /ipwarden_sip_packets_dropped_total\{reason="internal_error"\} 50/);
      assert.deepEqual(lines.map((l) => l.msg), ['SIP packet handling failed']);
    } finally {
      await edge.close();
      upstream.close();
      caller.close();
    }
  });
});

describe('startEdge when it falls behind (issue 22: no congestion collapse)', () => {
  it('answers new calls 503 with Retry-After while in-dialog requests flow on, and takes calls again once caught up', async () => {
    const behind = await behindEdge(1);
    const { atTrunk, atUpstream, registry } = behind;
    try {
      // 600 datagrams at once, 1 ms of work each: the last waits about 600 ms without shedding.
      const sent = { INVITE: 0, BYE: 0 };
      for (let i = 0; i < 600; i++) {
        const method = i % 4 === 3 ? 'BYE' : 'INVITE';
        sent[method]++;
        behind.send(method, `c${i}`, method === 'BYE');
      }
      await until(async () => atTrunk.length + atUpstream.length >= sent.INVITE + sent.BYE - staleOf(await registry.metrics()), 5000);

      const byes = atUpstream.filter((m) => m.type === 'request' && m.method === 'BYE');
      const shed = atTrunk.filter((m) => m.type === 'response' && m.status === 503);
      const invitesOn = atUpstream.filter((m) => m.type === 'request' && m.method === 'INVITE');
      assert.equal(byes.length, sent.BYE, 'every in-dialog request went on');
      assert.ok(shed.length > 0, 'some new calls were answered 503');
      assert.ok(invitesOn.length > 0, 'the calls read before the backlog grew went on');
      // Those that waited past 500 ms were dropped unread instead (the next test).
      assert.equal(shed.length + invitesOn.length + staleOf(await registry.metrics()), sent.INVITE);
      assert.ok(shed.every((m) => m.headers.some((h) => h.key === 'retry-after' && /^\d+$/.test(h.value))));
      assert.ok(shed.every((m) => m.type === 'response' && m.reason === 'Service Unavailable'));
      const metrics = await registry.metrics();
      assert.match(metrics, new RegExp(`ipwarden_sip_requests_rejected_total\\{reason="overload"\\} ${shed.length}\\b`));
      assert.match(metrics, /ipwarden_sip_queue_delay_seconds_bucket\{le="0\.5"\} \d+/);
      await behind.takesNewCalls();
    } finally {
      await behind.close();
    }
  });

  it("drops a new call's INVITE unread once it waited past the caller's first retransmission, and nothing else", async () => {
    // Shedding out of the way: only the stale drop acts (at 150 ms here, as at 500 ms in production).
    const behind = await behindEdge(5, { socket: 'batch', shedAfterMs: 60_000, staleAfterMs: 150 });
    const { atTrunk, atUpstream, registry } = behind;
    const received = async () => Number(/ipwarden_sip_packets_received_total (\d+)/.exec(await registry.metrics())?.[1]);
    try {
      // 300 datagrams at once, 5 ms of work each read whole: 1.5 s of work if nothing were dropped.
      const sent = { INVITE: 0, BYE: 0, reINVITE: 0 };
      for (let i = 0; i < 300; i++) {
        const kind = i % 5 === 3 ? 'BYE' : i % 5 === 4 ? 'reINVITE' : 'INVITE';
        sent[kind]++;
        behind.send(kind === 'BYE' ? 'BYE' : 'INVITE', `c${i}`, kind !== 'INVITE');
      }
      await until(async () => (await received()) === 300, 5000);
      await until(async () => atUpstream.length >= 300 - staleOf(await registry.metrics()), 2000);
      const stale = staleOf(await registry.metrics());
      const on = (method: string, inDialog: boolean) =>
        atUpstream.filter((m) => m.type === 'request' && m.method === method && m.headers.some((h) => h.key === 'to' && h.value.includes('tag=') === inDialog)).length;
      assert.ok(stale > 0, 'some new calls waited too long');
      assert.ok(on('INVITE', false) > 0, 'the calls read in time went on');
      assert.equal(on('INVITE', false) + stale, sent.INVITE, 'every other new call went on');
      assert.equal(on('BYE', true), sent.BYE, 'every in-dialog request went on, however long it waited');
      assert.equal(on('INVITE', true), sent.reINVITE, 'a re-INVITE is in a dialog');
      assert.deepEqual(atTrunk, [], 'nothing was answered');
      await behind.takesNewCalls();
    } finally {
      await behind.close();
    }
  });
});

/**
 * An edge whose every decision costs `ms` of CPU, a trunk (127.0.0.2) calling through it, and
 * what the trunk and the upstream hear back.
 */
async function behindEdge(ms: number, options: Partial<EdgeOptions> = {}) {
  const rules = new FakeRules().addTrunk('127.0.0.2', 'acct-t', 'trunk-t');
  const work = { ms };
  const slow = { trunkEntryFor: (ip: string) => (busy(work.ms), rules.trunkEntryFor(ip)), decideByRealm: rules.decideByRealm.bind(rules) };
  const upstream = await udp('127.0.0.1');
  const trunk = await udp('127.0.0.2');
  const registry = new Registry();
  const edge = await startEdge(
    { listen: [{ transport: 'udp', host: '127.0.0.1', port: 0 }], upstream: { host: '127.0.0.1', port: upstream.address().port }, reject: DEFAULT_REJECT, ...options },
    slow,
    { registry, logger: pino({ level: 'silent' }) },
  );
  const atTrunk: SipMessage[] = [];
  const atUpstream: SipMessage[] = [];
  trunk.on('message', (bytes) => atTrunk.push(parseMessage(bytes)!));
  upstream.on('message', (bytes) => atUpstream.push(parseMessage(bytes)!));
  const send = (method: string, id: string, toTag: boolean) => trunk.send(sipRequest(trunk.address().port, method, id, toTag), edge.address.port, '127.0.0.1');
  return {
    registry,
    atTrunk,
    atUpstream,
    send,
    /** Caught up (decisions cheap again), the next new call goes on. */
    async takesNewCalls() {
      work.ms = 0;
      atUpstream.length = 0;
      send('INVITE', 'after', false);
      await until(() => atUpstream.length > 0, 2000);
      assert.equal(atUpstream[0]?.type === 'request' && atUpstream[0].method, 'INVITE');
    },
    async close() {
      await edge.close();
      upstream.close();
      trunk.close();
    },
  };
}

function busy(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until);
}

function sipRequest(port: number, method: string, id: string, toTag: boolean): string {
  return [`${method} sip:bob@a.example SIP/2.0`, `Via: SIP/2.0/UDP 127.0.0.2:${port};branch=z9hG4bK${method}${id}`, 'From: <sip:alice@a.example>;tag=1',
    `To: <sip:bob@a.example>${toTag ? ';tag=2' : ''}`, `Call-ID: ${id}`, `CSeq: 2 ${method}`, 'Content-Length: 0', '', ''].join('\r\n');
}

function staleOf(metrics: string): number {
  return Number(/ipwarden_sip_packets_dropped_total\{reason="stale"\} (\d+)/.exec(metrics)?.[1] ?? 0);
}

async function until(done: () => boolean | Promise<boolean>, ms: number): Promise<void> {
  for (const started = Date.now(); !(await done()) && Date.now() - started < ms; ) await new Promise((r) => setTimeout(r, 10));
}
