// SIP over TCP and TLS through `ipwarden serve` (issue 27), in the API's process and in SIP
// workers: a TLS caller on Node's tls with a certificate made at test time (Debian's sipp has no
// TLS) and sipp over TCP calling at once, sipp over TCP as the UAS upstream, and the connection
// limits tried by really opening too many connections. sip-edge.test.ts has the calls over TCP.

import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect as connectTls } from 'node:tls';
import { header, type SipMessage } from '../../src/edge/message.ts';
import { freeTcpPort, highPort, loggedHeader, sippAnswer, sippCall, sippMissing } from '../edge/sipp.ts';
import { StreamPeer } from '../edge/stream-peer.ts';
import { opensslMissing, selfSignedCertificate } from '../support/certificate.ts';
import { startServe, type ServeProcess } from './serve-process.ts';

const missing = sippMissing() ?? opensslMissing();
if (missing !== null && process.env.CI === 'true') {
  it('sipp and openssl are installed (CI runs the edge against real SIP)', () => assert.fail(missing));
}

/** /metrics is read on the API's port, with the token that opens it there. */
const METRICS_TOKEN = 'streams-metrics-token';
const EDGE = '127.0.0.60';
const UAS = '127.0.0.61';
const PHONE = '127.0.0.62';
const STRANGER = '127.0.0.63';
const TLS_PHONE = '127.0.0.65';
const CROWD = '127.0.0.66';
const PER_SOURCE = 4;

for (const workers of [0, 2]) {
  describe(`ipwarden serve --sip udp:,tcp:,tls: with --sip-workers ${workers}`, { skip: missing ?? false, timeout: 120_000 }, () => {
    const dir = mkdtempSync(join(tmpdir(), 'ipwarden-sip-streams-'));
    const db = join(dir, 'edge.db');
    const certificate = selfSignedCertificate(dir, 'edge', [EDGE]);
    const renewed = selfSignedCertificate(dir, 'renewed', [EDGE]);
    let tcp: { host: string; port: number };
    let tls: { host: string; port: number };
    let uas: { host: string; port: number };
    let server: ChildProcess;
    let serving: ServeProcess;
    let device: string;

    before(async () => {
      tcp = { host: EDGE, port: await freeTcpPort(EDGE) };
      tls = { host: EDGE, port: await freeTcpPort(EDGE) };
      uas = { host: UAS, port: await freeTcpPort(UAS) };
      serving = await startServe(db, highPort(), 'carrier.example', [
        '--metrics-token', METRICS_TOKEN,
        // Any combination: a repeated --sip, and listeners comma-separated in one.
        '--sip', `udp:${EDGE}:${highPort()}`, '--sip', `tcp:${tcp.host}:${tcp.port},tls:${tls.host}:${tls.port}`,
        '--sip-tls-cert', certificate.cert, '--sip-tls-key', certificate.key,
        '--sip-upstream', `${uas.host}:${uas.port}`, '--sip-workers', String(workers),
        '--sip-max-connections-per-source', String(PER_SOURCE),
      ]);
      server = serving.process;
      const tenant = (await serving.api('PUT', `/v2/accounts/${serving.masterId}`, { name: 'Acme', realm: 'acme.example' })).id;
      device = (await serving.api('PUT', `/v2/accounts/${tenant}/devices`, { name: 'Desk phone', sip: { username: 'alice' } })).id;
      await serving.api('POST', `/v2/accounts/${tenant}/access_lists`, { order: 'allow,deny', cidrs: [`${PHONE}/32`, `${TLS_PHONE}/32`] });
      await serving.api('POST', `/v2/accounts/${tenant}/devices/${device}/access_lists`, { order: 'allow,deny', cidrs: ['0.0.0.0/0'], user_agent: '^Yealink' });
    });

    after(async () => {
      server?.kill('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    });

    /** A whole call over TLS from TLS_PHONE: INVITE, provisional and 200 back, ACK, BYE and its 200 back, all on one connection. */
    async function tlsCall(callId: string): Promise<void> {
      const phone = await StreamPeer.connect('tls', tls, { localAddress: TLS_PHONE, ca: readFileSync(certificate.cert) });
      try {
        const { port } = phone.local;
        const request = (method: string, cseq: number, branch: string, toTag = '') =>
          [
            `${method} sip:bob@acme.example SIP/2.0`,
            `Via: SIP/2.0/TLS ${TLS_PHONE}:${port};branch=${branch}`,
            'Max-Forwards: 70',
            'From: <sip:alice@acme.example>;tag=tls-1',
            `To: <sip:bob@acme.example>${toTag}`,
            `Call-ID: ${callId}`,
            `CSeq: ${cseq} ${method}`,
            'User-Agent: Yealink SIP-T46S',
            `Contact: <sip:alice@${TLS_PHONE}:${port};transport=tls>`,
            'Content-Length: 0',
            '',
            '',
          ].join('\r\n');
        phone.send(request('INVITE', 1, 'z9hG4bKtls1'));
        let final: SipMessage;
        do final = await phone.next(5000);
        while (final.type === 'response' && final.status < 200);
        assert.equal(final.type === 'response' && final.status, 200, 'the UAS answered 200 through the edge');
        assert.equal(final.headers.filter((h) => h.key === 'via').length, 1, 'only the caller’s own Via comes back');
        const toTag = `;tag=${header(final.headers, 'to')!.split(';tag=')[1]}`;
        phone.send(request('ACK', 1, 'z9hG4bKtls2', toTag));
        phone.send(request('BYE', 2, 'z9hG4bKtls3', toTag));
        const bye = await phone.next(5000);
        assert.equal(bye.type === 'response' && `${bye.status} ${header(bye.headers, 'cseq')}`, '200 2 BYE');
      } finally {
        phone.close();
      }
    }

    it('a TLS caller and a sipp TCP caller at once: each call answered, each response on its own connection', async () => {
      const invites = sippAnswer(dir, uas, 2, 'tcp');
      const callId = `tls-call-${workers}`;
      await Promise.all([tlsCall(callId), sippCall(dir, tcp, 'answered', { host: PHONE, port: await freeTcpPort(PHONE) }, { realm: 'acme.example', ua: 'Yealink SIP-T46S' }, 'tcp')]);
      const received = await invites;
      assert.equal(received.length, 2);
      const overTls = received.find((invite) => loggedHeader(invite, 'Call-ID')[0] === callId);
      assert.ok(overTls, 'the TLS caller’s INVITE reached the UAS');
      assert.deepEqual(loggedHeader(overTls, 'X-Device-ID'), [device]);
      const [edgeVia, phoneVia] = loggedHeader(overTls, 'Via');
      assert.match(edgeVia!, new RegExp(`^SIP/2\\.0/TCP ${EDGE.replaceAll('.', '\\.')}:${tcp.port};`), 'relayed upstream over TCP, naming the TCP listener');
      assert.match(phoneVia!, new RegExp(`^SIP/2\\.0/TLS ${TLS_PHONE.replaceAll('.', '\\.')}:\\d+;branch=z9hG4bKtls1;rport=\\d+;received=`));
    });

    /** An OPTIONS from an unknown realm on `peer`: the edge's 603 comes back on it. */
    async function answered(peer: StreamPeer, from: string, id: string): Promise<void> {
      peer.send([`OPTIONS sip:x@acme.example SIP/2.0`, `Via: SIP/2.0/TCP ${from}:${peer.local.port};branch=z9hG4bK${id}`, 'From: <sip:a@nowhere.example>;tag=c',
        'To: <sip:x@nowhere.example>', `Call-ID: ${id}`, 'CSeq: 1 OPTIONS', 'Content-Length: 0', '', ''].join('\r\n'));
      const answer = await peer.next();
      assert.equal(answer.type === 'response' && answer.status, 603);
    }

    it(`a source gets ${PER_SOURCE} connections (--sip-max-connections-per-source), over all the workers, and no more; others are not held up`, async () => {
      const held = await Promise.all(Array.from({ length: PER_SOURCE }, () => StreamPeer.connect('tcp', tcp, { localAddress: CROWD })));
      const other = await StreamPeer.connect('tcp', tcp, { localAddress: STRANGER });
      try {
        // Each one answered has been admitted.
        for (const [i, peer] of held.entries()) await answered(peer, CROWD, `crowd-${i}`);
        const extra = await StreamPeer.connect('tcp', tcp, { localAddress: CROWD });
        await extra.closedWithin(3000);
        await answered(other, STRANGER, 'other');
        const text = await serving.metrics(METRICS_TOKEN);
        assert.match(text, /ipwarden_sip_connections_refused_total\{transport="tcp",reason="per_source"\} 1\n/);
        assert.match(text, /ipwarden_sip_connections_open\{transport="tcp"\} [5-9]/);
        assert.match(text, /ipwarden_sip_connections_accepted_total\{transport="tls"\} 1\n/);
      } finally {
        for (const peer of [...held, other]) peer.close();
      }
    });
    it('SIGHUP: a renewed certificate serves the next connections, in every worker, and the server goes on', async () => {
      const presented = async () => {
        const socket = connectTls({ host: EDGE, port: tls.port, rejectUnauthorized: false });
        await once(socket, 'secureConnect');
        const fingerprint = socket.getPeerX509Certificate()!.fingerprint256;
        socket.destroy();
        return fingerprint;
      };
      const wanted = new X509Certificate(readFileSync(renewed.cert)).fingerprint256;
      copyFileSync(renewed.key, certificate.key);
      copyFileSync(renewed.cert, certificate.cert);
      server.kill('SIGHUP');
      // Connections are dealt to the workers in turn: four in a row reach each of two.
      const started = Date.now();
      for (;;) {
        const seen = [await presented(), await presented(), await presented(), await presented()];
        if (seen.every((f) => f === wanted)) break;
        if (Date.now() - started > 5000) assert.fail('the renewed certificate is not served by every worker');
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.equal(server.exitCode, null, 'SIGHUP did not stop the server');
      assert.equal((await fetch(`${serving.base}/v2/health`)).status, 200);
    });
  });
}
