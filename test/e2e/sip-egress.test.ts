// Outbound calls through dedicated IPs (api.md §7.1, issue 21) on live SIP: `ipwarden serve` as
// a real process holding sockets on its host's pool IPs, the platform as a sipp UAC placing calls
// from the upstream's address, and a carrier that records the source of every packet it gets.

import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { header } from '../../src/edge/message.ts';
import { parseVia } from '../../src/edge/via.ts';
import { startCarrier, type Carrier } from '../edge/carrier.ts';
import { highPort, runSipp, SCENARIO_DIR, sippMissing } from '../edge/sipp.ts';
import { startServe } from './serve-process.ts';

const missing = sippMissing();
if (missing !== null && process.env.CI === 'true') {
  it('sipp is installed (CI runs the edge against real SIP)', () => assert.fail(missing));
}

const HOST = 'edge-1.test';
const EDGE = { host: '127.0.21.1', port: highPort() };
const PLATFORM = '127.0.21.2';
/** The platform's own SIP port, where the edge sends inbound calls (--sip-upstream). */
const UPSTREAM_PORT = highPort();
/** A carrier calling in, known by a trunk IP ACL entry. */
const CARRIER_TRUNK = '127.0.21.60';
const EGRESS_PORT = highPort();
const IP_A = '127.0.21.11';
const IP_B = '127.0.21.12';
const IP_SPARE = '127.0.21.13';
const IP_LATE = '127.0.21.14';
/** TEST-NET-1: on no interface of this machine. */
const IP_ABSENT = '192.0.2.1';
const IP_OTHER_HOST = '127.0.21.20';
/** /metrics is read on the API's port, with the token that opens it there. */
const METRICS_TOKEN = 'egress-metrics-token';

describe('outbound calls through dedicated IPs, with sipp as the platform', { skip: missing ?? false, timeout: 120_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'ipwarden-egress-e2e-'));
  const db = join(dir, 'edge.db');
  const httpPort = highPort();
  const base = `http://127.0.0.1:${httpPort}`;
  let server: ChildProcess;
  let carrier: Carrier;
  let token: string;
  let accountA: string;
  let accountB: string;

  async function api(method: string, path: string, data?: unknown) {
    const response = await fetch(`${base}${path}`, { method, headers: { 'x-auth-token': token }, ...(data === undefined ? {} : { body: JSON.stringify({ data }) }) });
    const body = (await response.json()) as { data: any };
    assert.ok(response.status < 300, `${method} ${path}: ${response.status} ${JSON.stringify(body)}`);
    return body.data;
  }

  async function egressHealth(): Promise<Array<{ ip: string; bound: boolean; error: string | null }>> {
    // The sockets are shown to a superduper admin, as the index's sizes are.
    const health = (await (await fetch(`${base}/v2/health`, { headers: { 'x-auth-token': token } })).json()) as { data: { sip: { egress: Array<{ ip: string; bound: boolean; error: string | null }> } } };
    return health.data.sip.egress;
  }

  async function untilHealth(condition: (egress: Awaited<ReturnType<typeof egressHealth>>) => boolean, what: string): Promise<number> {
    const started = performance.now();
    for (;;) {
      if (condition(await egressHealth())) return performance.now() - started;
      if (performance.now() - started > 5000) assert.fail(`${what}: ${JSON.stringify(await egressHealth())}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  before(async () => {
    carrier = await startCarrier('127.0.21.50');
    const served = await startServe(db, httpPort, 'platform.example', [
      '--sip', `udp:${EDGE.host}:${EDGE.port}`, '--allow-private-trunk-ips', '--sip-upstream', `${PLATFORM}:${UPSTREAM_PORT}`, '--sip-host', HOST, '--sip-egress-port', String(EGRESS_PORT),
      '--metrics-token', METRICS_TOKEN,
      // One SIP worker (as sip-edge.test.ts): the edge runs in a worker sharing the dedicated IPs'
      // sockets, and sipp's strict scenarios see no datagrams relayed out of order.
      '--sip-workers', '1',
    ]);
    server = served.process;
    token = served.token;
    const master = served.masterId;
    accountA = (await api('PUT', `/v2/accounts/${master}`, { name: 'Tenant A', realm: 'a.example' })).id;
    accountB = (await api('PUT', `/v2/accounts/${master}`, { name: 'Tenant B', realm: 'b.example' })).id;
    for (const ip of [IP_A, IP_B, IP_SPARE, IP_ABSENT]) await api('PUT', '/v2/ips', { ip, zone: 'local', host: HOST });
    await api('PUT', '/v2/ips', { ip: IP_OTHER_HOST, zone: 'local', host: 'edge-2.test' });
    await api('POST', `/v2/accounts/${accountA}/ips`, { ips: [IP_A] });
    await api('POST', `/v2/accounts/${accountB}/ips`, { ips: [IP_B] });
  });

  after(async () => {
    server?.kill('SIGTERM');
    await carrier?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** `calls` calls for `account`, sent by the platform to `via` (the edge's main socket by default). */
  async function place(account: string, calls: number, via: { host: string; port: number } = EDGE, scenario = 'platform-call.xml') {
    const result = await runSipp(
      [`${carrier.address.host}:${carrier.address.port}`, '-rsa', `${via.host}:${via.port}`, '-sf', join(SCENARIO_DIR, scenario),
        '-i', PLATFORM, '-p', String(highPort()), '-m', String(calls), '-key', 'account', account, '-cid_str', `${account}-%u-%p@%s`,
        '-timeout', '10s', '-timeout_error', '-recv_timeout', '4000'],
      { cwd: dir, killAfterMs: 15_000 },
    );
    assert.equal(result.code, 0, `${scenario} for ${account} via ${via.host}:${via.port}; sipp said:\n${result.output.slice(-1500)}`);
  }

  /** What the carrier got of `account`'s calls since `from`: per call, its methods and the sources. */
  function callsOf(account: string, from = 0) {
    const calls = new Map<string, { methods: string[]; sources: Set<string>; vias: Set<string>; internal: string[] }>();
    for (const { source, request } of carrier.packets.slice(from)) {
      const callId = header(request.headers, 'call-id')!;
      if (!callId.startsWith(`${account}-`)) continue;
      let call = calls.get(callId);
      if (call === undefined) calls.set(callId, (call = { methods: [], sources: new Set(), vias: new Set(), internal: [] }));
      if (!call.methods.includes(request.method)) call.methods.push(request.method);
      call.sources.add(`${source.host}:${source.port}`);
      const top = parseVia(header(request.headers, 'via')!);
      call.vias.add(`${top.host}:${top.port}`);
      for (const h of request.headers) if (/^x-(account|trunk|device)-id$/.test(h.key)) call.internal.push(`${h.name}: ${h.value}`);
    }
    return [...calls.values()];
  }

  function assertLeftFrom(account: string, ip: string, calls: number, from: number) {
    const seen = callsOf(account, from);
    assert.equal(seen.length, calls, `${calls} calls of ${account} reached the carrier`);
    for (const call of seen) {
      assert.deepEqual(call.methods, ['INVITE', 'ACK', 'BYE']);
      assert.deepEqual([...call.sources], [`${ip}:${EGRESS_PORT}`], 'every packet of the call came from the account’s IP');
      assert.deepEqual([...call.vias], [`${ip}:${EGRESS_PORT}`], 'the top Via names that address');
      assert.deepEqual(call.internal, [], 'no internal header reached the carrier');
    }
  }

  it('holds a socket on each IP of its host, and reports the one it cannot bind without stopping', async () => {
    await untilHealth((egress) => egress.filter((e) => e.bound).length === 3 && egress.some((e) => e.error !== null), 'three bound, one failed');
    const egress = await egressHealth();
    assert.deepEqual(egress.map((e) => e.ip).sort(), [IP_A, IP_B, IP_SPARE, IP_ABSENT].sort());
    const absent = egress.find((e) => e.ip === IP_ABSENT)!;
    assert.equal(absent.bound, false);
    assert.match(absent.error!, /EADDRNOTAVAIL/);
  });

  it('each account’s whole calls leave from its own dedicated IP, without the internal headers', async () => {
    const from = carrier.packets.length;
    await place(accountA, 2);
    await place(accountB, 2);
    assertLeftFrom(accountA, IP_A, 2, from);
    assertLeftFrom(accountB, IP_B, 2, from);
  });

  it('sent to the account’s own dedicated IP, a call leaves from it; sent to another tenant’s, it is refused with 403', async () => {
    const from = carrier.packets.length;
    await place(accountA, 1, { host: IP_A, port: EGRESS_PORT });
    assertLeftFrom(accountA, IP_A, 1, from);
    const before = carrier.packets.length;
    await place(accountA, 1, { host: IP_B, port: EGRESS_PORT }, 'platform-refused.xml');
    assert.equal(carrier.packets.length, before, 'nothing of the refused call reached the carrier');
    const metrics = await (await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } })).text();
    assert.match(metrics, /ipwarden_sip_requests_rejected_total\{reason="dedicated_ip_not_assigned"\} 1\n/);
    // Three requests a call (a retransmitted INVITE counts again).
    const sent = (ip: string) => Number(metrics.match(new RegExp(`^ipwarden_sip_egress_requests_total\\{ip="${ip}"\\} (\\d+)$`, 'm'))?.[1]);
    assert.ok(sent(IP_A) >= 9 && sent(IP_B) >= 6, `sent from A's IP ${sent(IP_A)}, from B's ${sent(IP_B)}`);
  });

  it('a reassigned IP moves the next call', async () => {
    await api('DELETE', `/v2/accounts/${accountA}/ips/${IP_A}`);
    await api('POST', `/v2/accounts/${accountB}/ips/${IP_A}`);
    await api('POST', `/v2/accounts/${accountA}/ips/${IP_SPARE}`);
    const from = carrier.packets.length;
    await place(accountA, 1);
    await place(accountB, 1);
    assertLeftFrom(accountA, IP_SPARE, 1, from);
    // B now holds .11 and .12: the first in /ips/assigned order.
    assertLeftFrom(accountB, IP_A, 1, from);
  });

  it('a carrier calling a dedicated IP is judged as on the main socket and reaches the platform from that IP with X-Dedicated-IP', async () => {
    const trunk = (await api('PUT', `/v2/accounts/${accountB}/trunks`, { name: 'Carrier in' })).id;
    await api('PUT', `/v2/accounts/${accountB}/trunks/${trunk}/ip_acls`, { ip_address: CARRIER_TRUNK, description: 'carrier' });
    const upstream = createSocket('udp4');
    const caller = createSocket('udp4');
    try {
      await new Promise<void>((done) => upstream.bind(UPSTREAM_PORT, PLATFORM, () => done()));
      await new Promise<void>((done) => caller.bind(0, CARRIER_TRUNK, () => done()));
      const received = new Promise<{ text: string; from: string }>((done) => upstream.once('message', (bytes, rinfo) => done({ text: bytes.toString('latin1'), from: `${rinfo.address}:${rinfo.port}` })));
      const invite = [`INVITE sip:+15550001111@${IP_B}:${EGRESS_PORT} SIP/2.0`, `Via: SIP/2.0/UDP ${CARRIER_TRUNK}:${caller.address().port};branch=z9hG4bKin1`,
        'Max-Forwards: 70', 'From: <sip:+15551230000@carrier.example>;tag=c1', `To: <sip:+15550001111@${IP_B}>`, 'Call-ID: inbound-1@carrier', 'CSeq: 1 INVITE',
        'X-Dedicated-IP: 127.0.21.11', 'Content-Length: 0', '', ''].join('\r\n');
      caller.send(invite, EGRESS_PORT, IP_B);
      const { text, from } = await received;
      assert.equal(from, `${IP_B}:${EGRESS_PORT}`);
      const lines = text.split('\r\n');
      assert.deepEqual(lines.filter((l) => /^x-dedicated-ip:/i.test(l)), [`X-Dedicated-IP: ${IP_B}`]);
      assert.ok(lines.includes(`X-Trunk-ID: ${trunk}`), text);
      assert.match(lines.find((l) => l.startsWith('Via:'))!, new RegExp(`^Via: SIP/2\\.0/UDP ${IP_B.replaceAll('.', '\\.')}:${EGRESS_PORT};`));
    } finally {
      upstream.close();
      caller.close();
    }
  });

  it('follows the pool within a second: an IP added to its host is bound, one removed is let go', async () => {
    await api('PUT', '/v2/ips', { ip: IP_LATE, zone: 'local', host: HOST });
    const bound = await untilHealth((egress) => egress.some((e) => e.ip === IP_LATE && e.bound), 'the added IP bound');
    assert.ok(bound < 1000, `bound after ${bound.toFixed(0)} ms`);
    await api('DELETE', `/v2/ips/${IP_LATE}`);
    await untilHealth((egress) => !egress.some((e) => e.ip === IP_LATE), 'the removed IP let go');
  });
});
