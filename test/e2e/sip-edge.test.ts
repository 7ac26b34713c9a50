// The whole product on live SIP (issue 9): `ipwarden serve --sip … --sip-upstream …` as a real
// process, rules written through the HTTP API, sipp as callers from several loopback addresses
// and as the UAS behind the edge. The edge reads the index the API writes: no HTTP hop, no mock.

import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { highPort, loopbackAddress, receivedMessages, runSipp, SCENARIO_DIR, sippMissing } from '../edge/sipp.ts';
import { startServe } from './serve-process.ts';

const missing = sippMissing();
if (missing !== null && process.env.CI === 'true') {
  it('sipp is installed (CI runs the edge against real SIP)', () => assert.fail(missing));
}

/** /metrics is read on the API's port, with the token that opens it there. */
const METRICS_TOKEN = 'e2e-metrics-token';

describe('ipwarden serve with its SIP edge, driven by sipp', { skip: missing ?? false, timeout: 120_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'ipwarden-sip-e2e-'));
  const db = join(dir, 'edge.db');
  const httpPort = highPort();
  const base = `http://127.0.0.1:${httpPort}`;
  const edgeAddress = { host: loopbackAddress(), port: highPort() };
  const uas = { host: loopbackAddress(), port: highPort() };
  const phone = loopbackAddress();
  const stranger = loopbackAddress();
  const pbx = loopbackAddress();
  let server: ChildProcess;
  let token: string;
  let tenant: string;
  let device: string;

  async function api(method: string, path: string, data?: unknown) {
    const response = await fetch(`${base}${path}`, { method, headers: { 'x-auth-token': token }, ...(data === undefined ? {} : { body: JSON.stringify({ data }) }) });
    const body = (await response.json()) as { data: any };
    assert.ok(response.status < 300, `${method} ${path}: ${response.status} ${JSON.stringify(body)}`);
    return body.data;
  }

  before(async () => {
    const serving = await startServe(db, httpPort, 'carrier.example', [
      '--allow-private-trunk-ips', '--metrics-token', METRICS_TOKEN,
      '--sip', `udp:${edgeAddress.host}:${edgeAddress.port}`, '--sip-upstream', `${uas.host}:${uas.port}`,
      // One SIP worker: sipp's strict scenarios fail a call whose back-to-back datagrams two
      // workers relay out of order (README, The SIP edge); sip-workers.test.ts runs two.
      '--sip-workers', '1',
    ]);
    server = serving.process;
    token = serving.token;
    tenant = (await api('PUT', `/v2/accounts/${serving.masterId}`, { name: 'Acme', realm: 'acme.example' })).id;
    device = (await api('PUT', `/v2/accounts/${tenant}/devices`, { name: 'Desk phone', sip: { username: 'alice' } })).id;
    await api('POST', `/v2/accounts/${tenant}/access_lists`, { order: 'allow,deny', cidrs: [`${phone}/32`] });
    await api('POST', `/v2/accounts/${tenant}/devices/${device}/access_lists`, { order: 'allow,deny', cidrs: ['0.0.0.0/0'], user_agent: '^Yealink' });
  });

  after(async () => {
    server?.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  });

  function answer(calls: number): Promise<string[]> {
    const log = join(dir, `uas-${Math.random()}.log`);
    return runSipp(['-sf', join(SCENARIO_DIR, 'uas.xml'), '-i', uas.host, '-p', String(uas.port), '-m', String(calls), '-timeout', '15s', '-trace_msg', '-message_file', log], {
      cwd: dir,
      killAfterMs: 20_000,
    }).then((result) => {
      assert.equal(result.code, 0, `UAS failed:\n${result.output.slice(-2000)}`);
      return receivedMessages(readFileSync(log, 'latin1')).filter((m) => m.startsWith('INVITE '));
    });
  }

  async function call(outcome: 'answered' | 'rejected', from: string, keys: { caller?: string; realm: string; ua: string }) {
    const result = await runSipp(
      [`${edgeAddress.host}:${edgeAddress.port}`, '-sf', join(SCENARIO_DIR, `uac-${outcome}.xml`), '-i', from, '-p', String(highPort()), '-m', '1',
        '-key', 'caller', keys.caller ?? 'alice', '-key', 'realm', keys.realm, '-key', 'ua', keys.ua, '-timeout', '10s', '-timeout_error', '-recv_timeout', '4000'],
      { cwd: dir, killAfterMs: 15_000 },
    );
    assert.equal(result.code, 0, `expected an ${outcome} call from ${from}; sipp said:\n${result.output.slice(-1500)}`);
  }

  const header = (message: string, name: string) =>
    message.split('\n').filter((l) => l.toLowerCase().startsWith(`${name.toLowerCase()}:`)).map((l) => l.slice(name.length + 1).trim());

  it('a device on the account list with the right user agent reaches the UAS, with its account and device', async () => {
    const invites = answer(1);
    await call('answered', phone, { realm: 'acme.example', ua: 'Yealink SIP-T46S' });
    const [invite] = await invites;
    assert.ok(invite);
    assert.deepEqual(header(invite, 'X-Account-ID'), [tenant]);
    assert.deepEqual(header(invite, 'X-Device-ID'), [device]);
  });

  it('603 Rejected by ACL for a stranger, a wrong user agent and an unknown realm', async () => {
    await call('rejected', stranger, { realm: 'acme.example', ua: 'Yealink SIP-T46S' });
    await call('rejected', phone, { realm: 'acme.example', ua: 'friendly-scanner' });
    await call('rejected', phone, { realm: 'nowhere.example', ua: 'Yealink' });
    const metrics = await (await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } })).text();
    assert.match(metrics, /ipwarden_sip_requests_rejected_total\{reason="not_matched"\} 1\n/);
    assert.match(metrics, /ipwarden_sip_requests_rejected_total\{reason="user_agent_mismatch"\} 1\n/);
    assert.match(metrics, /ipwarden_sip_requests_rejected_total\{reason="unknown_realm"\} 1\n/);
  });

  it('a trunk IP ACL entry written through the API authenticates its source on the next call', async () => {
    await call('rejected', pbx, { caller: '+15551230000', realm: 'pbx.acme.example', ua: 'Asterisk' });
    const trunk = (await api('PUT', `/v2/accounts/${tenant}/trunks`, { name: 'PBX' })).id;
    await api('PUT', `/v2/accounts/${tenant}/trunks/${trunk}/ip_acls`, { ip_address: pbx, description: 'the PBX' });
    const invites = answer(1);
    await call('answered', pbx, { caller: '+15551230000', realm: 'pbx.acme.example', ua: 'Asterisk' });
    const [invite] = await invites;
    assert.ok(invite);
    assert.deepEqual(header(invite, 'X-Account-ID'), [tenant]);
    assert.deepEqual(header(invite, 'X-Trunk-ID'), [trunk]);
    // The edge's trunk lookups are counted as the API's are.
    const metrics = await (await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } })).text();
    assert.match(metrics, /ipwarden_decisions_total\{kind="trunk",result="match"\} [1-9]\d*\n/);
    assert.match(metrics, /ipwarden_decisions_total\{kind="trunk",result="no_match"\} [1-9]\d*\n/);
  });

  it('an access-list change through the API is enforced on the very next call', async () => {
    await api('POST', `/v2/accounts/${tenant}/access_lists`, { order: 'allow,deny', cidrs: [`${stranger}/32`] });
    await call('rejected', phone, { realm: 'acme.example', ua: 'Yealink' });
    const invites = answer(1);
    await call('answered', stranger, { realm: 'acme.example', ua: 'Yealink' });
    assert.equal((await invites).length, 1);
  });
});
