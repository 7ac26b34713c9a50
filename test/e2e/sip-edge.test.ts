// The whole product on live SIP (issue 9): `ipwarden serve --sip … --sip-upstream …` as a real
// process, rules written through the HTTP API, sipp as callers from several loopback addresses
// and as the UAS behind the edge. The edge reads the index the API writes: no HTTP hop, no mock.
// The same calls over UDP and over TCP (issue 27: sipp -t t1, one connection each way).

import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { freeTcpPort, highPort, loggedHeader, loopbackAddress, sippAnswer, sippCall, sippMissing } from '../edge/sipp.ts';
import { startServe, type ServeProcess } from './serve-process.ts';

const missing = sippMissing();
if (missing !== null && process.env.CI === 'true') {
  it('sipp is installed (CI runs the edge against real SIP)', () => assert.fail(missing));
}

/** /metrics is read on the API's port, with the token that opens it there. */
const METRICS_TOKEN = 'e2e-metrics-token';

interface Variant {
  transport: 'udp' | 'tcp';
  /** SIP workers: over UDP one, as sipp's strict scenarios fail a call whose back-to-back
   * datagrams two workers relay out of order (README, The SIP edge; sip-workers.test.ts runs
   * two); over TCP none, the edge in the API's process (sip-streams.test.ts runs two). */
  workers: number;
  /** The edge, the UAS, a phone, a stranger, a PBX. */
  addresses: () => [string, string, string, string, string];
  port: (host: string) => Promise<number>;
}

const VARIANTS: Variant[] = [
  { transport: 'udp', workers: 1, addresses: () => [loopbackAddress(), loopbackAddress(), loopbackAddress(), loopbackAddress(), loopbackAddress()], port: async () => highPort() },
  { transport: 'tcp', workers: 0, addresses: () => ['127.0.0.67', '127.0.0.68', '127.0.0.69', '127.0.0.70', '127.0.0.71'], port: freeTcpPort },
];

for (const { transport, workers, addresses, port } of VARIANTS) {
  describe(`ipwarden serve with its SIP edge over ${transport.toUpperCase()}, driven by sipp`, { skip: missing ?? false, timeout: 120_000 }, () => {
    const dir = mkdtempSync(join(tmpdir(), 'ipwarden-sip-e2e-'));
    const db = join(dir, 'edge.db');
    const httpPort = highPort();
    const [edgeHost, uasHost, phone, stranger, pbx] = addresses();
    let edgeAddress: { host: string; port: number };
    let uas: { host: string; port: number };
    let server: ChildProcess;
    let serving: ServeProcess;
    let tenant: string;
    let device: string;

    before(async () => {
      edgeAddress = { host: edgeHost, port: await port(edgeHost) };
      uas = { host: uasHost, port: await port(uasHost) };
      serving = await startServe(db, httpPort, 'carrier.example', [
        '--allow-private-trunk-ips', '--metrics-token', METRICS_TOKEN,
        '--sip', `${transport}:${edgeAddress.host}:${edgeAddress.port}`, '--sip-upstream', `${uas.host}:${uas.port}`,
        '--sip-workers', String(workers),
      ]);
      server = serving.process;
      tenant = (await serving.api('PUT', `/v2/accounts/${serving.masterId}`, { name: 'Acme', realm: 'acme.example' })).id;
      device = (await serving.api('PUT', `/v2/accounts/${tenant}/devices`, { name: 'Desk phone', sip: { username: 'alice' } })).id;
      await serving.api('POST', `/v2/accounts/${tenant}/access_lists`, { order: 'allow,deny', cidrs: [`${phone}/32`] });
      await serving.api('POST', `/v2/accounts/${tenant}/devices/${device}/access_lists`, { order: 'allow,deny', cidrs: ['0.0.0.0/0'], user_agent: '^Yealink' });
    });

    after(async () => {
      server?.kill('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    });

    const answer = (calls: number) => sippAnswer(dir, uas, calls, transport);
    const call = async (outcome: 'answered' | 'rejected', from: string, keys: { caller?: string; realm: string; ua: string }) =>
      sippCall(dir, edgeAddress, outcome, { host: from, port: await port(from) }, keys, transport);
    const header = loggedHeader;
    const escaped = (text: string) => text.replaceAll('.', '\\.');

    it('a device on the account list with the right user agent reaches the UAS, with its account and device', async () => {
      const invites = answer(1);
      await call('answered', phone, { realm: 'acme.example', ua: 'Yealink SIP-T46S' });
      const [invite] = await invites;
      assert.ok(invite);
      assert.deepEqual(header(invite, 'X-Account-ID'), [tenant]);
      assert.deepEqual(header(invite, 'X-Device-ID'), [device]);
      const [edgeVia, phoneVia] = header(invite, 'Via');
      const TRANSPORT = transport.toUpperCase();
      // Over TCP the Via names the listener's port; over UDP the port the worker relays from.
      assert.match(edgeVia!, new RegExp(`^SIP/2\\.0/${TRANSPORT} ${escaped(edgeAddress.host)}:${transport === 'tcp' ? edgeAddress.port : '\\d+'};branch=z9hG4bK-iw-`));
      // The phone's connection (its address and port) is what its responses go back on.
      assert.match(phoneVia!, new RegExp(`^SIP/2\\.0/${TRANSPORT} ${escaped(phone)}:\\d+;.*rport=\\d+`));
    });

    it('603 Rejected by ACL for a stranger, a wrong user agent and an unknown realm', async () => {
      await call('rejected', stranger, { realm: 'acme.example', ua: 'Yealink SIP-T46S' });
      await call('rejected', phone, { realm: 'acme.example', ua: 'friendly-scanner' });
      await call('rejected', phone, { realm: 'nowhere.example', ua: 'Yealink' });
      const metrics = await serving.metrics(METRICS_TOKEN);
      assert.match(metrics, /ipwarden_sip_requests_rejected_total\{reason="not_matched"\} 1\n/);
      assert.match(metrics, /ipwarden_sip_requests_rejected_total\{reason="user_agent_mismatch"\} 1\n/);
      assert.match(metrics, /ipwarden_sip_requests_rejected_total\{reason="unknown_realm"\} 1\n/);
    });

    it('a trunk IP ACL entry written through the API authenticates its source on the next call', async () => {
      await call('rejected', pbx, { caller: '+15551230000', realm: 'pbx.acme.example', ua: 'Asterisk' });
      const trunk = (await serving.api('PUT', `/v2/accounts/${tenant}/trunks`, { name: 'PBX' })).id;
      await serving.api('PUT', `/v2/accounts/${tenant}/trunks/${trunk}/ip_acls`, { ip_address: pbx, description: 'the PBX' });
      const invites = answer(1);
      await call('answered', pbx, { caller: '+15551230000', realm: 'pbx.acme.example', ua: 'Asterisk' });
      const [invite] = await invites;
      assert.ok(invite);
      assert.deepEqual(header(invite, 'X-Account-ID'), [tenant]);
      assert.deepEqual(header(invite, 'X-Trunk-ID'), [trunk]);
      // The edge's trunk lookups are counted as the API's are.
      const metrics = await serving.metrics(METRICS_TOKEN);
      assert.match(metrics, /ipwarden_decisions_total\{kind="trunk",result="match"\} [1-9]\d*\n/);
      assert.match(metrics, /ipwarden_decisions_total\{kind="trunk",result="no_match"\} [1-9]\d*\n/);
      if (transport === 'tcp') {
        // sipp -t t1 opens one connection a run: every call so far, and every message of each read from it.
        assert.match(metrics, /ipwarden_sip_connections_accepted_total\{transport="tcp"\} 6\n/);
        assert.match(metrics, /ipwarden_sip_stream_messages_received_total\{transport="tcp"\} [1-9]\d*\n/);
      }
    });

    it('an access-list change through the API is enforced on the very next call', async () => {
      await serving.api('POST', `/v2/accounts/${tenant}/access_lists`, { order: 'allow,deny', cidrs: [`${stranger}/32`] });
      await call('rejected', phone, { realm: 'acme.example', ua: 'Yealink' });
      const invites = answer(1);
      await call('answered', stranger, { realm: 'acme.example', ua: 'Yealink' });
      assert.equal((await invites).length, 1);
    });
  });
}
