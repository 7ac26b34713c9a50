// Real SIP through the edge: sipp as the caller from several loopback addresses, the edge with a
// fake rule set, sipp as the UAS upstream (api.md §7, issue 9).
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { DEFAULT_REJECT } from '../../src/edge/reply.ts';
import { startEdge } from '../../src/edge/server.ts';
import { FakeRules } from './fake-rules.ts';
import { highPort, loopbackAddress, receivedMessages, runSipp, SCENARIO_DIR, sippMissing } from './sipp.ts';

const missing = sippMissing();
if (missing !== null && process.env.CI === 'true') {
  it('sipp is installed (CI runs the edge against real SIP)', () => assert.fail(missing));
}

describe('calls through the edge with sipp', { skip: missing ?? false }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'ipwarden-sipp-'));
  const rules = new FakeRules();
  const registry = new Registry();
  const uas = { host: loopbackAddress(), port: highPort() };
  const device = loopbackAddress();
  const trunk = loopbackAddress();
  const stranger = loopbackAddress();
  let edge: Awaited<ReturnType<typeof startEdge>>;

  before(async () => {
    rules.addTrunk(trunk, 'acct-trunk', 'trunk-1');
    rules.addRealm('a.example', { accountId: 'acct-a', allow: [device], userAgent: 'Yealink', devices: { alice: 'dev-alice' } });
    edge = await startEdge(
      { listen: [{ transport: 'udp', host: loopbackAddress(), port: 0 }], upstream: uas, reject: DEFAULT_REJECT },
      rules,
      { registry, logger: pino({ level: 'silent' }) },
    );
  });

  after(async () => {
    await edge?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** sipp as the UAS (scenarios/uas.xml), answering `calls` calls; resolves to the INVITEs it received. */
  function answer(calls: number): Promise<string[]> {
    const log = join(dir, `uas-${uas.port}-${Math.random()}.log`);
    const run = runSipp(
      ['-sf', join(SCENARIO_DIR, 'uas.xml'), '-i', uas.host, '-p', String(uas.port), '-m', String(calls), '-timeout', '15s',
        '-trace_msg', '-message_file', log],
      { cwd: dir, killAfterMs: 20_000 },
    );
    return run.then((result) => {
      assert.equal(result.code, 0, `UAS failed:\n${result.output.slice(-2000)}`);
      return receivedMessages(readFileSync(log, 'latin1')).filter((m) => m.startsWith('INVITE '));
    });
  }

  async function call(outcome: 'answered' | 'rejected', from: string, keys: { caller?: string; realm: string; ua: string }, calls = 1) {
    const result = await runSipp(
      [`${edge.address.host}:${edge.address.port}`, '-sf', join(SCENARIO_DIR, `uac-${outcome}.xml`),
        '-i', from, '-p', String(highPort()), '-m', String(calls), '-r', '20',
        '-key', 'caller', keys.caller ?? 'alice', '-key', 'realm', keys.realm, '-key', 'ua', keys.ua,
        '-timeout', '10s', '-timeout_error', '-recv_timeout', '4000'],
      { cwd: dir, killAfterMs: 15_000 },
    );
    assert.equal(result.code, 0, `expected ${calls} ${outcome} call(s) from ${from}; sipp said:\n${result.output.slice(-2000)}`);
  }

  const headerOf = (message: string, name: string) =>
    message.split('\n').filter((line) => line.toLowerCase().startsWith(`${name.toLowerCase()}:`)).map((l) => l.slice(name.length + 1).trim());

  it('completes calls from an allowed device, with its account and device, forged headers gone', async () => {
    const invites = answer(2);
    await call('answered', device, { realm: 'a.example', ua: 'Yealink SIP-T46S' }, 2);
    const received = await invites;
    assert.equal(received.length, 2);
    for (const invite of received) {
      assert.deepEqual(headerOf(invite, 'X-Account-ID'), ['acct-a']);
      assert.deepEqual(headerOf(invite, 'X-Device-ID'), ['dev-alice']);
      assert.deepEqual(headerOf(invite, 'X-Trunk-ID'), []);
    }
  });

  it('answers 603 to a source outside the list and to a user-agent mismatch', async () => {
    await call('rejected', stranger, { realm: 'a.example', ua: 'Yealink SIP-T46S' }, 2);
    await call('rejected', device, { realm: 'a.example', ua: 'friendly-scanner' });
    await call('rejected', stranger, { realm: 'nowhere.example', ua: 'Yealink' });
    const metrics = await registry.metrics();
    assert.match(metrics, /ipwarden_sip_requests_rejected_total\{reason="not_matched"\} 2\n/);
    assert.match(metrics, /ipwarden_sip_requests_rejected_total\{reason="user_agent_mismatch"\} 1\n/);
    assert.match(metrics, /ipwarden_sip_requests_rejected_total\{reason="unknown_realm"\} 1\n/);
    assert.match(metrics, /ipwarden_sip_packets_dropped_total\{reason="ack_absorbed"\} 4\n/);
  });

  it('lets a trunk address through whatever its From says, with X-Account-ID and X-Trunk-ID', async () => {
    const invites = answer(1);
    await call('answered', trunk, { caller: '+15551230000', realm: 'pbx.customer.example', ua: 'Asterisk' });
    const [invite] = await invites;
    assert.ok(invite);
    assert.deepEqual(headerOf(invite, 'X-Account-ID'), ['acct-trunk']);
    assert.deepEqual(headerOf(invite, 'X-Trunk-ID'), ['trunk-1']);
    assert.ok(!invite.includes('forged'));
  });

  it('enforces a rule change on the next call', async () => {
    const invites = answer(2);
    await call('answered', device, { realm: 'a.example', ua: 'Yealink' });
    rules.realms.get('a.example')!.allow = [];
    await call('rejected', device, { realm: 'a.example', ua: 'Yealink' });
    rules.realms.get('a.example')!.allow = [device];
    await call('answered', device, { realm: 'a.example', ua: 'Yealink' });
    assert.equal((await invites).length, 2, 'the denied call never reached the UAS');
  });
});
