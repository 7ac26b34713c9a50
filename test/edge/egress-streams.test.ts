// Outbound through a dedicated IP over TCP and TLS (api.md §7.1, issue 27), on real sockets: the
// platform sends over UDP, the Request-URI asks for TCP (`;transport=tcp`) or TLS (`sips:`), and
// the edge opens, and keeps, a connection from the dedicated IP to the carrier.
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { header, parseMessage, type SipMessage } from '../../src/edge/message.ts';
import { DEFAULT_REJECT } from '../../src/edge/reply.ts';
import { startEdge, type RunningEdge } from '../../src/edge/server.ts';
import type { EgressSource } from '../../src/services/egress-pool.ts';
import { opensslMissing, selfSignedCertificate } from '../support/certificate.ts';
import { FakeRules } from './fake-rules.ts';
import { listenForPeers, type StreamPeer } from './stream-peer.ts';

const EDGE = '127.0.0.72';
const PLATFORM = '127.0.0.73';
const DEDICATED = '127.0.0.78';
const CARRIER = '127.0.0.79';
const ACCOUNT = 'acct-out';

describe('outbound over TCP and TLS from a dedicated IP', { skip: opensslMissing() ?? false }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'ipwarden-egress-streams-'));
  const carrierCertificate = selfSignedCertificate(dir, 'carrier', [CARRIER]);
  const stranger = selfSignedCertificate(dir, 'stranger', [CARRIER]);
  const pool: EgressSource = {
    hosted: () => [DEDICATED],
    onHostedChange: null,
    assigneeOf: (ip) => (ip === DEDICATED ? ACCOUNT : null),
    heldFor: (account) => (account === ACCOUNT ? [DEDICATED] : []),
  };
  let platform: Socket;
  let egressPort: number;
  let edge: RunningEdge;
  let carriers: { tcp: Awaited<ReturnType<typeof listenForPeers>>; tls: Awaited<ReturnType<typeof listenForPeers>>; untrusted: Awaited<ReturnType<typeof listenForPeers>> };

  before(async () => {
    platform = createSocket('udp4');
    await new Promise<void>((done) => platform.bind(0, PLATFORM, () => done()));
    const tlsOf = (files: { cert: string; key: string }) => ({ cert: readFileSync(files.cert), key: readFileSync(files.key) });
    carriers = {
      tcp: await listenForPeers(CARRIER),
      tls: await listenForPeers(CARRIER, tlsOf(carrierCertificate)),
      untrusted: await listenForPeers(CARRIER, tlsOf(stranger)),
    };
    // The dedicated IP's UDP port, named in the edge's Vias: a free one.
    const probe = createSocket('udp4');
    await new Promise<void>((done) => probe.bind(0, DEDICATED, () => done()));
    egressPort = probe.address().port;
    await new Promise<void>((done) => probe.close(() => done()));
    edge = await startEdge(
      {
        listen: [{ transport: 'udp', host: EDGE, port: 0 }],
        upstream: { host: PLATFORM, port: platform.address().port },
        reject: DEFAULT_REJECT,
        egress: { pool, port: egressPort },
        // The carrier's certificate is its own CA: trusted as a carrier's private CA would be.
        tls: { ca: carrierCertificate.cert },
      },
      new FakeRules(),
      { registry: new Registry(), logger: pino({ level: 'silent' }) },
    );
    for (let i = 0; !edge.egress().every((s) => s.bound); i++) {
      if (i > 100) throw new Error(`the dedicated IP did not bind: ${JSON.stringify(edge.egress())}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  });

  after(async () => {
    await edge.close();
    platform.close();
    for (const carrier of Object.values(carriers)) await carrier.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function send(method: string, uri: string, callId: string): void {
    const { port } = platform.address();
    const request = [`${method} ${uri} SIP/2.0`, `Via: SIP/2.0/UDP ${PLATFORM}:${port};branch=z9hG4bK${callId}${method};rport`, 'Max-Forwards: 70',
      'From: <sip:+15550001111@platform.example>;tag=p', `To: <${uri}>`, `Call-ID: ${callId}`, `CSeq: 1 ${method}`, `X-Account-ID: ${ACCOUNT}`, 'Content-Length: 0', '', ''].join('\r\n');
    platform.send(request, edge.address.port, EDGE);
  }

  async function atPlatform(): Promise<{ message: SipMessage; from: string }> {
    const [bytes, rinfo] = (await once(platform, 'message', { signal: AbortSignal.timeout(3000) })) as [Buffer, { address: string; port: number }];
    return { message: parseMessage(bytes)!, from: `${rinfo.address}:${rinfo.port}` };
  }

  function answer(carrier: StreamPeer, request: SipMessage): void {
    const keep = request.headers.filter((h) => ['via', 'from', 'to', 'call-id', 'cseq'].includes(h.key));
    carrier.send(['SIP/2.0 200 OK', ...keep.map((h) => `${h.name}: ${h.value}`), 'Content-Length: 0', '', ''].join('\r\n'));
  }

  for (const [transport, uri] of [
    ['tcp', () => `sip:+15551230000@${CARRIER}:${carriers.tcp.address.port};transport=tcp`],
    ['tls', () => `sips:+15551230000@${CARRIER}:${carriers.tls.address.port}`],
  ] as const) {
    it(`${transport}: the call leaves from the dedicated IP on one kept connection, the answers reach the platform from that IP`, async () => {
      const callId = `out-${transport}`;
      send('INVITE', uri(), callId);
      const connection = await carriers[transport].next();
      assert.equal(connection.socket.remoteAddress, DEDICATED, 'the connection comes from the dedicated IP');
      const invite = await connection.next();
      assert.match(header(invite.headers, 'via')!, new RegExp(`^SIP/2\\.0/${transport.toUpperCase()} ${DEDICATED.replaceAll('.', '\\.')}:${egressPort};branch=`));
      assert.equal(header(invite.headers, 'x-account-id'), undefined);
      answer(connection, invite);
      const ok = await atPlatform();
      assert.equal(ok.message.type === 'response' && ok.message.status, 200);
      assert.equal(ok.from, `${DEDICATED}:${egressPort}`, 'the 200 comes to the platform from the dedicated IP’s socket');
      send('BYE', uri(), callId);
      const bye = await connection.next();
      assert.equal(bye.type === 'request' && bye.method, 'BYE');
      assert.equal(carriers[transport].peers.length, 1, 'the BYE took the same connection');
    });
  }

  it('a carrier whose certificate is not trusted gets nothing', async () => {
    send('INVITE', `sips:+15551230000@${CARRIER}:${carriers.untrusted.address.port}`, 'out-untrusted');
    // The edge connects, and gives up in the handshake: no connection is ever established.
    for (let i = 0; carriers.untrusted.connections() === 0; i++) {
      if (i > 100) assert.fail('the edge never tried the carrier');
      await new Promise((r) => setTimeout(r, 20));
    }
    await assert.rejects(carriers.untrusted.next(500));
  });
});
