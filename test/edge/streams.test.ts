// The edge's TCP and TLS connections on real sockets (issue 27): the kept upstream connection,
// keep-alives, and every limit tried for real: too many connections, a malformed or oversized
// stream, bytes held per connection and per source, a caller that never reads, idle and trickling
// connections; and a renewed TLS certificate.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect as connectTcp, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as connectTls } from 'node:tls';
import { after, afterEach, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import type { Endpoint } from '../../src/edge/endpoint.ts';
import { header } from '../../src/edge/message.ts';
import { DEFAULT_REJECT } from '../../src/edge/reply.ts';
import { DEFAULT_STREAM_LIMITS, startEdge, type RunningEdge, type StreamLimits } from '../../src/edge/server.ts';
import { opensslMissing, selfSignedCertificate } from '../support/certificate.ts';
import { FakeRules } from './fake-rules.ts';
import { listenForPeers, StreamPeer } from './stream-peer.ts';

const EDGE = '127.0.0.74';
const UPSTREAM = '127.0.0.73';
const CALLER = '127.0.0.75';
const OTHER = '127.0.0.76';
const THIRD = '127.0.0.77';

const rules = new FakeRules().addRealm('a.example', { accountId: 'acct-a', allow: [CALLER, OTHER, THIRD] });

function invite(peer: StreamPeer, callId: string, extra: string[] = []): string {
  const { host, port } = peer.local;
  return [
    'INVITE sip:bob@a.example SIP/2.0',
    `Via: SIP/2.0/TCP ${host}:${port};branch=z9hG4bK${callId}`,
    'Max-Forwards: 70',
    'From: <sip:alice@a.example>;tag=1',
    'To: <sip:bob@a.example>',
    `Call-ID: ${callId}`,
    'CSeq: 1 INVITE',
    ...extra,
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
}

/** An OPTIONS the edge answers itself (an unknown realm: 603), `padding` bytes long in its Call-ID. */
function unknownRealm(callId: string, padding = 0): string {
  return ['OPTIONS sip:x@nowhere.example SIP/2.0', `Via: SIP/2.0/TCP ${CALLER}:5060;branch=z9hG4bK${callId}`, 'From: <sip:a@nowhere.example>;tag=1',
    'To: <sip:x@nowhere.example>', `Call-ID: ${callId}${'x'.repeat(padding)}`, 'CSeq: 1 OPTIONS', 'Content-Length: 0', '', ''].join('\r\n');
}

/** The upstream's 200 to a request it got: the Vias copied, sent back on the edge's connection. */
function okTo(request: Awaited<ReturnType<StreamPeer['next']>>): string {
  const keep = request.headers.filter((h) => ['via', 'from', 'to', 'call-id', 'cseq'].includes(h.key));
  return ['SIP/2.0 200 OK', ...keep.map((h) => `${h.name}: ${h.value}`), 'Content-Length: 0', '', ''].join('\r\n');
}

async function edgeWith(limits: Partial<StreamLimits>, upstream: Endpoint, extra: { tls?: { cert: string; key: string } } = {}) {
  const registry = new Registry();
  const edge = await startEdge(
    {
      listen: [{ transport: 'tcp', host: EDGE, port: 0 }, ...(extra.tls ? [{ transport: 'tls' as const, host: EDGE, port: 0 }] : [])],
      upstream,
      reject: DEFAULT_REJECT,
      streamLimits: { ...DEFAULT_STREAM_LIMITS, ...limits },
      ...(extra.tls ? { tls: extra.tls } : {}),
    },
    rules,
    { registry, logger: pino({ level: 'silent' }) },
  );
  const at = (transport: 'tcp' | 'tls') => edge.listeners.find((l) => l.transport === transport)!;
  const metric = async (pattern: RegExp) => {
    const text = await registry.metrics();
    return text.match(pattern)?.[1];
  };
  return { edge, at, metric };
}

/** A connection the edge has admitted: it answered a keep-alive ping with its pong. */
async function admitted(from: string, to: Endpoint): Promise<Socket> {
  const socket = connectTcp({ host: to.host, port: to.port, localAddress: from });
  socket.on('error', () => {});
  await once(socket, 'connect');
  socket.write('\r\n\r\n');
  const [pong] = (await once(socket, 'data', { signal: AbortSignal.timeout(3000) })) as [Buffer];
  assert.equal(pong.toString(), '\r\n');
  return socket;
}

function closedWithin(socket: Socket, ms = 3000): Promise<void> {
  if (socket.destroyed) return Promise.resolve();
  return once(socket, 'close', { signal: AbortSignal.timeout(ms) }).then(() => undefined);
}

describe('the connection to the upstream', () => {
  let upstream: Awaited<ReturnType<typeof listenForPeers>>;
  let running: Awaited<ReturnType<typeof edgeWith>>;

  before(async () => {
    upstream = await listenForPeers(UPSTREAM);
    running = await edgeWith({}, upstream.address);
  });
  after(async () => {
    await running.edge.close();
    await upstream.close();
  });

  it('carries every caller’s requests, one kept connection, each response going back on its caller’s connection', async () => {
    const [a, b] = await Promise.all([StreamPeer.connect('tcp', running.at('tcp'), { localAddress: CALLER }), StreamPeer.connect('tcp', running.at('tcp'), { localAddress: OTHER })]);
    try {
      a.send(invite(a, 'kept-a'));
      const link = await upstream.next();
      const first = await link.next();
      b.send(invite(b, 'kept-b'));
      const second = await link.next();
      assert.equal(upstream.peers.length, 1, 'both requests came on one connection');
      link.send(okTo(second));
      link.send(okTo(first));
      const [toA, toB] = [await a.next(), await b.next()];
      assert.equal(header(toA.headers, 'call-id'), 'kept-a');
      assert.equal(header(toB.headers, 'call-id'), 'kept-b');
    } finally {
      a.close();
      b.close();
    }
  });

  it('is opened again for the next request once the upstream closes it; a response for a caller gone is dropped', async () => {
    const caller = await StreamPeer.connect('tcp', running.at('tcp'), { localAddress: CALLER });
    caller.send(invite(caller, 'before-close'));
    const link = upstream.peers.at(-1)!;
    const request = await link.next();
    caller.close();
    // Once the edge has seen it go (the kept upstream connection alone is open).
    await waitFor(async () => (await running.metric(/connections_open\{transport="tcp"\} (\d+)/)) === '1');
    link.send(okTo(request));
    await waitFor(async () => (await running.metric(/ipwarden_sip_packets_dropped_total\{reason="no_connection"\} (\d+)/)) === '1');
    link.close();
    await link.closed;
    const again = await StreamPeer.connect('tcp', running.at('tcp'), { localAddress: CALLER });
    try {
      again.send(invite(again, 'after-close'));
      const reopened = await upstream.next();
      assert.equal(header((await reopened.next()).headers, 'call-id'), 'after-close');
    } finally {
      again.close();
    }
  });

  it('answers a keep-alive ping (CRLFCRLF) with a pong (CRLF), RFC 5626', async () => {
    const socket = await admitted(CALLER, running.at('tcp'));
    socket.destroy();
  });
});

describe('limits per connection and per source', () => {
  let upstream: Awaited<ReturnType<typeof listenForPeers>>;
  const opened: Socket[] = [];
  const open = async (from: string, to: Endpoint) => {
    const socket = await admitted(from, to);
    opened.push(socket);
    return socket;
  };

  before(async () => {
    upstream = await listenForPeers(UPSTREAM);
  });
  afterEach(() => {
    for (const socket of opened.splice(0)) socket.destroy();
  });
  after(() => upstream.close());

  it('a source holds at most maxConnectionsPerSource, the edge at most maxConnections; the others are refused at once', async () => {
    const { edge, at, metric } = await edgeWith({ maxConnectionsPerSource: 3, maxConnections: 5 }, upstream.address);
    try {
      for (let i = 0; i < 3; i++) await open(CALLER, at('tcp'));
      const fourth = connectTcp({ host: EDGE, port: at('tcp').port, localAddress: CALLER }).on('error', () => {});
      await closedWithin(fourth);
      await open(OTHER, at('tcp'));
      await open(OTHER, at('tcp'));
      const sixth = connectTcp({ host: EDGE, port: at('tcp').port, localAddress: THIRD }).on('error', () => {});
      await closedWithin(sixth);
      assert.equal(await metric(/connections_refused_total\{transport="tcp",reason="per_source"\} (\d+)/), '1');
      assert.equal(await metric(/connections_refused_total\{transport="tcp",reason="total"\} (\d+)/), '1');
      // A connection closed gives its place back.
      opened.shift()!.destroy();
      await waitFor(async () => (await metric(/connections_open\{transport="tcp"\} (\d+)/)) === '4');
      await open(THIRD, at('tcp'));
    } finally {
      await edge.close();
    }
  });

  it('a malformed or oversized stream closes that connection only', async () => {
    const { edge, at, metric } = await edgeWith({}, upstream.address);
    try {
      const bystander = await StreamPeer.connect('tcp', at('tcp'), { localAddress: OTHER });
      const noLength = await open(CALLER, at('tcp'));
      noLength.write('OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bKa\r\n\r\n');
      await closedWithin(noLength);
      const endless = await open(CALLER, at('tcp'));
      endless.write(`OPTIONS sip:x SIP/2.0\r\nX-Pad: ${'a'.repeat(9000)}`);
      await closedWithin(endless);
      const badHeader = await open(CALLER, at('tcp'));
      badHeader.write('OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bKa\r\nbad header line\r\nContent-Length: 0\r\n\r\n');
      await closedWithin(badHeader);
      bystander.send(unknownRealm('still-served'));
      assert.equal((await bystander.next()).type, 'response');
      bystander.close();
      assert.equal(await metric(/connections_closed_total\{transport="tcp",reason="malformed"\} (\d+)/), '3');
    } finally {
      await edge.close();
    }
  });

  it('an incomplete message over maxBufferedPerConnection, or a source’s over maxBufferedPerSource, is cut off', async () => {
    const { edge, at, metric } = await edgeWith({ maxBufferedPerConnection: 4096, maxBufferedPerSource: 6000 }, upstream.address);
    try {
      const big = await open(CALLER, at('tcp'));
      big.write(`OPTIONS sip:x SIP/2.0\r\nX-Pad: ${'a'.repeat(5000)}`);
      await closedWithin(big);
      const first = await open(CALLER, at('tcp'));
      first.write(`OPTIONS sip:x SIP/2.0\r\nX-Pad: ${'a'.repeat(3500)}`);
      await waitFor(async () => (await metric(/connections_closed_total\{transport="tcp",reason="buffer"\} (\d+)/)) === '1');
      const second = await open(CALLER, at('tcp'));
      second.write(`OPTIONS sip:x SIP/2.0\r\nX-Pad: ${'a'.repeat(3500)}`);
      await closedWithin(second);
      // The first, under both limits, is still there; another source is not held to this one's bytes.
      assert.equal(first.destroyed, false);
      const other = await open(OTHER, at('tcp'));
      other.write(`OPTIONS sip:x SIP/2.0\r\nX-Pad: ${'a'.repeat(3500)}`);
      assert.equal(await metric(/connections_closed_total\{transport="tcp",reason="buffer"\} (\d+)/), '2');
    } finally {
      await edge.close();
    }
  });

  it('a caller that never reads its answers is cut off once what waits for it passes maxBufferedPerConnection', async () => {
    const { edge, at, metric } = await edgeWith({ maxBufferedPerConnection: 65_536 }, upstream.address);
    try {
      const deaf = await StreamPeer.connect('tcp', at('tcp'), { localAddress: CALLER });
      deaf.socket.pause();
      deaf.send(invite(deaf, 'deaf', [`Subject: ${'x'.repeat(6000)}`]));
      const link = await upstream.next();
      // The upstream's retransmitted 200s (6 KiB each, the Subject copied) are relayed while the
      // caller, quiet now, reads none: the kernel's buffers fill, then the edge's.
      const request = await link.next();
      const ok = okTo(request).replace('Content-Length: 0', `Subject: ${'x'.repeat(6000)}\r\nContent-Length: 0`);
      // (A paused socket notices nothing: the edge's count says when it cut the caller off.)
      const cut = async () => (await metric(/connections_closed_total\{transport="tcp",reason="buffer"\} (\d+)/)) === '1';
      for (let batch = 0; batch < 40 && !(await cut()); batch++) {
        if (!link.socket.write(ok.repeat(50))) await once(link.socket, 'drain');
      }
      assert.ok(await cut(), 'the deaf caller was cut off');
      deaf.close();
      link.close();
    } finally {
      await edge.close();
    }
  });

  it('a connection idle for idleTimeoutMs is closed, and so is one trickling a message a byte at a time', async () => {
    const { edge, at, metric } = await edgeWith({ idleTimeoutMs: 150 }, upstream.address);
    try {
      const idle = await open(CALLER, at('tcp'));
      await closedWithin(idle, 2000);
      const trickle = await open(CALLER, at('tcp'));
      const message = unknownRealm('trickle');
      // A byte every 40 ms renews the idle timer, but the message has taken too long after 150 ms.
      let sent = 0;
      while (sent < message.length && !trickle.destroyed) {
        trickle.write(message[sent++]!);
        await new Promise((r) => setTimeout(r, 40));
      }
      await closedWithin(trickle, 2000);
      assert.ok(sent < 20, `cut off after ${sent} of ${message.length} bytes`);
      assert.equal(await metric(/connections_closed_total\{transport="tcp",reason="idle"\} (\d+)/), '2');
    } finally {
      await edge.close();
    }
  });
});

describe('TLS', { skip: opensslMissing() ?? false }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'ipwarden-sip-tls-'));
  const first = selfSignedCertificate(dir, 'first', [EDGE]);
  const second = selfSignedCertificate(dir, 'second', [EDGE]);
  const files = { cert: join(dir, 'edge.crt'), key: join(dir, 'edge.key') };
  let upstream: Awaited<ReturnType<typeof listenForPeers>>;
  let running: Awaited<ReturnType<typeof edgeWith>>;
  let edge: RunningEdge;

  before(async () => {
    copyFileSync(first.cert, files.cert);
    copyFileSync(first.key, files.key);
    upstream = await listenForPeers(UPSTREAM);
    running = await edgeWith({ idleTimeoutMs: 300 }, upstream.address, { tls: files });
    edge = running.edge;
  });
  after(async () => {
    await edge.close();
    await upstream.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** The fingerprint of the certificate the edge's TLS listener presents now. */
  async function presented(): Promise<string> {
    const socket = connectTls({ host: EDGE, port: running.at('tls').port, rejectUnauthorized: false });
    await once(socket, 'secureConnect');
    const fingerprint = socket.getPeerX509Certificate()!.fingerprint256;
    socket.destroy();
    return fingerprint;
  }
  const fingerprintOf = (file: string) => new X509Certificate(readFileSync(file)).fingerprint256;

  it('serves a caller over TLS: its request goes upstream over TCP, the answer comes back on its TLS connection', async () => {
    const caller = await StreamPeer.connect('tls', running.at('tls'), { localAddress: CALLER, ca: readFileSync(first.cert) });
    try {
      caller.send(invite(caller, 'over-tls').replace('SIP/2.0/TCP', 'SIP/2.0/TLS'));
      const link = await upstream.next();
      const request = await link.next();
      assert.match(request.headers.find((h) => h.key === 'via')!.value, /^SIP\/2\.0\/TCP /);
      link.send(okTo(request));
      const answer = await caller.next();
      assert.equal(answer.type === 'response' && answer.status, 200);
    } finally {
      caller.close();
    }
  });

  it('a handshake never begun is closed at the idle timeout', async () => {
    const silent = connectTcp({ host: EDGE, port: running.at('tls').port, localAddress: OTHER }).on('error', () => {});
    await once(silent, 'connect');
    await closedWithin(silent, 2000);
  });

  it('a renewed certificate serves the next connection: at once on reloadTls (SIGHUP), and when the files change', async () => {
    assert.equal(await presented(), fingerprintOf(first.cert));
    copyFileSync(second.cert, files.cert);
    copyFileSync(second.key, files.key);
    edge.reloadTls();
    assert.equal(await presented(), fingerprintOf(second.cert));
    // A half-written pair (the key first) leaves the one serving in place; the watch picks up the whole pair.
    copyFileSync(first.key, files.key);
    edge.reloadTls();
    assert.equal(await presented(), fingerprintOf(second.cert));
    copyFileSync(first.cert, files.cert);
    await waitFor(async () => (await presented()) === fingerprintOf(first.cert), 6000);
  });
});

async function waitFor(condition: () => Promise<boolean>, ms = 3000): Promise<void> {
  const started = Date.now();
  while (!(await condition())) {
    if (Date.now() - started > ms) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
