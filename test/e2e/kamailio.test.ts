// api.md §9 end to end: a real Kamailio 5.6 whose permissions module is fed by `ipwarden serve`
// (address file + permissions.addressReload over jsonrpcs), configured with the exact lines of
// docs/kamailio.md, answers sipp's calls as ipwarden's own edge does; a trunk entry added through
// the API changes Kamailio's answer within a second; a failed reload is retried.

import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { kamailioMissing, runKamailio, type RunningKamailio } from '../../bench/sip/kamailio.ts';
import { kamailioRpc } from '../../src/sbc/kamailio-rpc.ts';
import { credentialsOf } from '../../src/services/passwords.ts';
import { highPort, receivedMessages, runSipp, SCENARIO_DIR, sippMissing } from '../edge/sipp.ts';

const missing = kamailioMissing() ?? sippMissing();
if (missing !== null && process.env.CI === 'true') {
  it('kamailio and sipp are installed (CI runs Kamailio fed by ipwarden)', () => assert.fail(missing));
}

const root = join(import.meta.dirname, '..', '..');
const bin = join(root, 'bin', 'ipwarden.js');

/** The Kamailio configuration of docs/kamailio.md, on this test's paths and addresses. */
function documentedConfig(replace: [string, string][]): string {
  const page = readFileSync(join(root, 'docs', 'kamailio.md'), 'utf8');
  const block = /```kamailio\n([\s\S]*?)```/.exec(page);
  assert.ok(block, 'docs/kamailio.md holds a ```kamailio block');
  let config = block[1]!;
  for (const [from, to] of replace) {
    assert.ok(config.includes(from), `the documented config has ${from}`);
    config = config.replace(from, to);
  }
  return config;
}

/** /metrics is served on the API's port only to this bearer token. */
const METRICS_TOKEN = 'e2e-metrics-token';

describe('Kamailio fed by ipwarden', { skip: missing ?? false, timeout: 180_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'ipwarden-kamailio-'));
  const db = join(dir, 'ipwarden.db');
  const addressFile = join(dir, 'address.list');
  const ctl = join(dir, 'kamailio_ctl');
  const kamailio = { host: '127.0.26.1', port: highPort() };
  const rpcPort = highPort();
  const edge = { host: '127.0.26.2', port: highPort() };
  const uas = { host: '127.0.26.3', port: highPort() };
  const http = { host: '127.0.26.4', port: highPort() };
  const base = `http://${http.host}:${http.port}`;
  const source = { allowed: '127.0.27.10', inSubnet: '127.0.27.70', denied: '127.0.27.200', added: '127.0.27.150', afterFailure: '127.0.27.151' };
  let server: ChildProcess;
  let running: RunningKamailio;
  let token: string;
  let tenant: string;
  let trunk: string;

  async function api(method: string, path: string, data?: unknown) {
    const response = await fetch(`${base}${path}`, { method, headers: { 'x-auth-token': token }, ...(data === undefined ? {} : { body: JSON.stringify({ data }) }) });
    const body = (await response.json()) as { data: any };
    assert.ok(response.status < 300, `${method} ${path}: ${response.status} ${JSON.stringify(body)}`);
    return body.data;
  }

  async function metric(name: string): Promise<number> {
    const text = await (await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } })).text();
    const line = text.split('\n').find((l) => l.startsWith(`${name} `));
    return line === undefined ? 0 : Number(line.split(' ')[1]);
  }

  async function until(what: string, ms: number, check: () => boolean | Promise<boolean>): Promise<void> {
    const deadline = Date.now() + ms;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  before(async () => {
    const created = spawnSync(process.execPath, [bin, 'create-account', 'Carrier', 'carrier.example', 'admin', 'secret', '--db', db], { encoding: 'utf8' });
    assert.equal(created.status, 0, created.stderr);
    // ipwarden first: it writes the address file Kamailio needs to start, and its first reloads
    // fail (nobody answers yet) until Kamailio is up.
    server = spawn(
      process.execPath,
      [bin, 'serve', '--db', db, '--port', String(http.port), '--host', http.host, '--log-level', 'silent', '--allow-private-trunk-ips',
        '--sip', `udp:${edge.host}:${edge.port}`, '--sip-upstream', `${uas.host}:${uas.port}`,
        '--kamailio-address-file', addressFile, '--kamailio-rpc', `http://${kamailio.host}:${rpcPort}/RPC`, '--metrics-token', METRICS_TOKEN,
        // One SIP worker: sipp's strict scenarios fail a call whose back-to-back datagrams two
        // workers relay out of order (README, The SIP edge); sip-workers.test.ts runs two.
        '--sip-workers', '1'],
      { stdio: ['ignore', 'ignore', 'inherit'] },
    );
    await until('ipwarden answers', 60_000, () => fetch(`${base}/v2/health`).then(() => true, () => false));
    const login = await fetch(`${base}/v2/user_auth`, { method: 'PUT', body: JSON.stringify({ data: { credentials: credentialsOf('admin', 'secret'), account_realm: 'carrier.example' } }) });
    const session = (await login.json()) as { auth_token: string; data: { account_id: string } };
    token = session.auth_token;
    tenant = (await api('PUT', `/v2/accounts/${session.data.account_id}`, { name: 'Acme', realm: 'acme.example' })).id;
    trunk = (await api('PUT', `/v2/accounts/${tenant}/trunks`, { name: 'PBX' })).id;
    await api('PUT', `/v2/accounts/${tenant}/trunks/${trunk}/ip_acls`, { ip_address: source.allowed });
    await api('PUT', `/v2/accounts/${tenant}/trunks/${trunk}/ip_acls`, { ip_address: '127.0.27.64/26' });
    await until('the address file holds both entries', 2000, () => readFileSync(addressFile, 'utf8').split('\n').length === 3);

    const config = join(dir, 'kamailio.cfg');
    let text = documentedConfig([
      ['#!KAMAILIO\n', '#!KAMAILIO\nlog_stderror=yes\ndebug=1\n'],
      // sipp's UAC sends ACK and BYE back to back; two workers may forward them out of order,
      // which the strict UAS scenario counts as a failed call.
      ['children=4', 'children=1'],
      ['listen=udp:0.0.0.0:5060', `listen=udp:${kamailio.host}:${kamailio.port}`],
      ['listen=tcp:127.0.0.1:5071', `listen=tcp:${kamailio.host}:${rpcPort}`],
      ['/etc/kamailio/ipwarden-address.list', addressFile],
      ['unix:/run/kamailio/kamailio_ctl', `unix:${ctl}`],
      ['forward("10.0.0.10", 5060)', `forward("${uas.host}", ${uas.port})`],
    ]);
    // A switch to make the RPC endpoint fail on purpose (the retry test), set through the ctl socket.
    text = text.replace('loadmodule "ctl.so"\n', 'loadmodule "ctl.so"\nloadmodule "htable.so"\nmodparam("htable", "htable", "ipw=>size=4;")\n');
    text = text.replace('  if ($hu =~ "^/RPC")', '  if ($sht(ipw=>fail) > 0) { $sht(ipw=>fail) = $sht(ipw=>fail) - 1; xhttp_reply("503", "Failing on purpose", "text/plain", ""); exit; }\n  if ($hu =~ "^/RPC")');
    writeFileSync(config, text);
    running = await runKamailio({ dir, config, listen: kamailio, mode: ['-DD'] });
  });

  after(async () => {
    await running?.stop();
    server?.kill('SIGTERM');
    if (server && server.exitCode === null) await once(server, 'exit');
    rmSync(dir, { recursive: true, force: true });
  });

  /** A sipp UAS taking `calls` calls; resolves with the INVITEs it received. */
  function answer(calls: number): Promise<string[]> {
    const log = join(dir, `uas-${Math.random()}.log`);
    return runSipp(['-sf', join(SCENARIO_DIR, 'uas.xml'), '-i', uas.host, '-p', String(uas.port), '-m', String(calls), '-timeout', '15s', '-trace_msg', '-message_file', log, '-trace_err', '-error_file', `${log}.err`], { cwd: dir, killAfterMs: 20_000 }).then((result) => {
      assert.equal(result.code, 0, `UAS failed:\n${result.output.slice(0, 1500)}\n${existsSync(`${log}.err`) ? readFileSync(`${log}.err`, 'latin1').slice(-1500) : ''}`);
      return receivedMessages(readFileSync(log, 'latin1')).filter((m) => m.startsWith('INVITE '));
    });
  }

  /** One sipp call from `from` to `to` that must end as `outcome` (200, or 603); the INVITE the UAS got. */
  async function call(to: { host: string; port: number }, from: string, outcome: 'answered' | 'rejected'): Promise<string | undefined> {
    const invites = outcome === 'answered' ? answer(1) : null;
    const result = await runSipp(
      [`${to.host}:${to.port}`, '-sf', join(SCENARIO_DIR, `uac-${outcome}.xml`), '-i', from, '-p', String(highPort()), '-m', '1',
        '-key', 'caller', '+15551230000', '-key', 'realm', 'pbx.example', '-key', 'ua', 'Asterisk', '-timeout', '10s', '-timeout_error', '-recv_timeout', '4000'],
      { cwd: dir, killAfterMs: 15_000 },
    );
    assert.equal(result.code, 0, `expected the call from ${from} to ${to.host}:${to.port} to be ${outcome}; sipp said:\n${result.output.slice(-1500)}`);
    return invites ? (await invites)[0] : undefined;
  }

  const header = (message: string | undefined, name: string) =>
    (message ?? '').split('\n').filter((l) => l.toLowerCase().startsWith(`${name.toLowerCase()}:`)).map((l) => l.slice(name.length + 1).trim());

  it('an allowed, a subnet-allowed and a denied source get the same answers from Kamailio as from the edge', async () => {
    for (const [from, outcome] of [
      [source.allowed, 'answered'],
      [source.inSubnet, 'answered'],
      [source.denied, 'rejected'],
    ] as const) {
      const viaEdge = await call(edge, from, outcome);
      const viaKamailio = await call(kamailio, from, outcome);
      if (outcome === 'answered') {
        // Kamailio's route sets the headers from the tag ipwarden wrote, as the edge sets them.
        assert.deepEqual(header(viaKamailio, 'X-Account-ID'), [tenant]);
        assert.deepEqual(header(viaKamailio, 'X-Trunk-ID'), [trunk]);
        assert.deepEqual(header(viaEdge, 'X-Account-ID'), [tenant]);
        assert.deepEqual(header(viaEdge, 'X-Trunk-ID'), [trunk]);
      }
    }
  });

  /**
   * Asks Kamailio about `from` with OPTIONS until its answer is no longer 603 (a stub UAS answers
   * what Kamailio forwards); resolves with the ms from `since` to that first answer.
   */
  async function untilKamailioForwards(from: string, since: number, ms: number): Promise<number> {
    const stub = createSocket('udp4');
    stub.bind(uas.port, uas.host);
    await once(stub, 'listening');
    stub.on('message', (bytes, peer) => {
      const request = bytes.toString();
      if (!request.startsWith('OPTIONS ')) return;
      const keep = request.split('\r\n').filter((l) => /^(via|from|to|call-id|cseq):/i.test(l));
      stub.send(['SIP/2.0 200 OK', ...keep, 'Content-Length: 0', '', ''].join('\r\n'), peer.port, peer.address);
    });
    const probe: Socket = createSocket('udp4');
    probe.bind(0, from);
    await once(probe, 'listening');
    const port = probe.address().port;
    try {
      for (let n = 0; ; n++) {
        const options = [`OPTIONS sip:probe@${kamailio.host}:${kamailio.port} SIP/2.0`, `Via: SIP/2.0/UDP ${from}:${port};branch=z9hG4bKprobe${n};rport`, 'Max-Forwards: 70', `From: <sip:probe@pbx.example>;tag=p${n}`, 'To: <sip:probe@pbx.example>', `Call-ID: probe-${n}@${from}`, `CSeq: ${n + 1} OPTIONS`, 'Content-Length: 0', '', ''].join('\r\n');
        probe.send(options, kamailio.port, kamailio.host);
        const status = await once(probe, 'message', { signal: AbortSignal.timeout(300) }).then(
          ([bytes]) => (bytes as Buffer).toString().split(' ')[1],
          () => 'none',
        );
        if (status === '200') return Date.now() - since;
        if (Date.now() - since > ms) throw new Error(`Kamailio still answers ${status} for ${from} after ${ms} ms`);
        await new Promise((r) => setTimeout(r, 20));
      }
    } finally {
      probe.close();
      stub.close();
    }
  }

  it('a trunk entry added through the API changes Kamailio\'s answer within 1 s', async () => {
    await call(kamailio, source.added, 'rejected');
    await api('PUT', `/v2/accounts/${tenant}/trunks/${trunk}/ip_acls`, { ip_address: source.added });
    const acknowledged = Date.now();
    const ms = await untilKamailioForwards(source.added, acknowledged, 5000);
    console.log(`Kamailio forwarded ${source.added} ${ms} ms after the API acknowledged the new entry`);
    assert.ok(ms < 1000, `${ms} ms`);
    await call(kamailio, source.added, 'answered');
  });

  it('a failed permissions.addressReload is logged, counted and retried until Kamailio has the new file', async () => {
    const errorsBefore = await metric('ipwarden_kamailio_reloads_total{result="error"}');
    const okBefore = await metric('ipwarden_kamailio_reloads_total{result="ok"}');
    const set = spawnSync('kamcmd', ['-s', `unix:${ctl}`, 'htable.seti', 'ipw', 'fail', '2'], { encoding: 'utf8' });
    assert.equal(set.status, 0, set.stderr);
    await api('PUT', `/v2/accounts/${tenant}/trunks/${trunk}/ip_acls`, { ip_address: source.afterFailure });
    const acknowledged = Date.now();
    // Two refusals (503), then the retries' backoff: 250 ms, 500 ms.
    const ms = await untilKamailioForwards(source.afterFailure, acknowledged, 8000);
    console.log(`after two failed reloads, Kamailio forwarded ${source.afterFailure} ${ms} ms after the change`);
    assert.ok(ms >= 250, `the first reload failed, so Kamailio cannot have had it at once (${ms} ms)`);
    await until('the successful reload is counted', 2000, async () => (await metric('ipwarden_kamailio_reloads_total{result="ok"}')) > okBefore);
    assert.equal((await metric('ipwarden_kamailio_reloads_total{result="error"}')) - errorsBefore, 2);
    assert.equal(await metric('ipwarden_kamailio_reload_pending'), 0);
  });

  it("the ctl socket (binrpc, as kamcmd speaks it) reloads too and reports Kamailio's faults", async () => {
    await kamailioRpc(`unix:${ctl}`)('permissions.addressReload');
    await assert.rejects(kamailioRpc(`unix:${ctl}`)('permissions.noSuchCommand'), /500 command permissions\.noSuchCommand not found/);
    const dump = spawnSync('kamcmd', ['-s', `unix:${ctl}`, 'permissions.addressDump'], { encoding: 'utf8' });
    assert.match(dump.stdout, new RegExp(`tag: ${tenant}:${trunk}`));
  });
});
