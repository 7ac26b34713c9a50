// The SIP edge on several worker processes (issue 22): `ipwarden serve --sip-workers 2` as a real
// process, rules written through its API, INVITEs from plain UDP sockets. Every worker enforces a
// change on the packets after the write is answered; a worker killed is replaced while the other
// serves on, and the API process never restarts.

import assert from 'node:assert/strict';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseMessage, type SipMessage } from '../../src/edge/message.ts';
import { highPort, loopbackAddress } from '../edge/sipp.ts';
import { startServe } from './serve-process.ts';


async function udp(host: string): Promise<Socket> {
  const socket = createSocket('udp4');
  socket.bind(0, host);
  await once(socket, 'listening');
  return socket;
}

/** The command lines of the SIP workers: the server's children that run the worker module, each starting with its pid. */
function workers(server: ChildProcess): string[] {
  try {
    const children = execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(server.pid)], { encoding: 'utf8' }).split('\n');
    return children.filter((line) => line.includes('edge-worker.ts'));
  } catch {
    return [];
  }
}

function workerPids(server: ChildProcess): number[] {
  return workers(server).map((line) => Number.parseInt(line.trim(), 10));
}

/** A worker's heap is never shrunk in a lull, nor its young generation started small (edge/worker-heap.ts): its traffic would pay for it. */
function assertWorkerHeapFlags(server: ChildProcess): void {
  for (const line of workers(server)) assert.match(line, / --no-memory-reducer --min-semi-space-size=16 /);
}

/**
 * Reaped by its parent. Not merely a zombie: the process's main thread turns zombie while its
 * other threads still exit, and its sockets close only with the last of them.
 */
function gone(pid: number): boolean {
  return !existsSync(`/proc/${pid}`);
}

/** /metrics is read on the API's port, with the token that opens it there. */
const METRICS_TOKEN = 'e2e-metrics-token';

/** A metric line, asserted without printing the whole exposition on failure. */
function hasLine(metrics: string, pattern: RegExp): void {
  assert.ok(pattern.test(metrics), `${pattern} not in /metrics:\n${metrics.split('\n').filter((l) => l.startsWith('ipwarden_sip')).join('\n')}`);
}

async function until<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, ms = 10_000): Promise<T> {
  for (const started = Date.now(); Date.now() - started < ms; await new Promise((r) => setTimeout(r, 25))) {
    const value = await probe();
    if (value !== undefined) return value;
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('ipwarden serve --sip-workers 2', { timeout: 120_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'ipwarden-sip-workers-'));
  const db = join(dir, 'edge.db');
  const httpPort = highPort();
  const base = `http://127.0.0.1:${httpPort}`;
  const edge = { host: loopbackAddress(), port: highPort() };
  const pbxAddress = loopbackAddress();
  let server: ChildProcess;
  let upstream: Socket;
  let pbx: Socket;
  let token: string;
  let tenant: string;
  let trunk: string;
  const atUpstream: SipMessage[] = [];
  const atPbx: SipMessage[] = [];
  let calls = 0;

  async function api(method: string, path: string, data?: unknown) {
    const response = await fetch(`${base}${path}`, { method, headers: { 'x-auth-token': token }, ...(data === undefined ? {} : { body: JSON.stringify({ data }) }) });
    const body = (await response.json()) as { data: any };
    assert.ok(response.status < 300, `${method} ${path}: ${response.status} ${JSON.stringify(body)}`);
    return body.data;
  }

  /**
   * Sends `n` new calls from the PBX, ten at a time (a burst the edge could fall behind on would
   * be answered 503 on a busy machine), and returns how many went upstream and how many got 603.
   */
  async function invite(n: number): Promise<{ forwarded: number; rejected: number }> {
    const first = calls;
    const { port } = pbx.address();
    const ours = (m: SipMessage) => Number(m.headers.find((h) => h.key === 'call-id')?.value.slice(5)) >= first;
    const answered = () => ({
      forwarded: atUpstream.filter((m) => m.type === 'request' && ours(m)).length,
      rejected: atPbx.filter((m) => m.type === 'response' && m.status === 603 && ours(m)).length,
      other: atPbx.filter((m) => m.type === 'response' && m.status !== 603 && ours(m)).length,
    });
    while (calls - first < n) {
      const batch = Math.min(10, n - (calls - first));
      for (let i = 0; i < batch; i++) {
        const id = `call-${calls++}`;
        pbx.send(
          [`INVITE sip:+15550001@${edge.host} SIP/2.0`, `Via: SIP/2.0/UDP ${pbxAddress}:${port};branch=z9hG4bK${id}`, 'Max-Forwards: 70',
            'From: <sip:+15551234@pbx.example>;tag=a', 'To: <sip:+15550001@pbx.example>', `Call-ID: ${id}`, 'CSeq: 1 INVITE', 'Content-Length: 0', '', ''].join('\r\n'),
          edge.port,
          edge.host,
        );
      }
      await until(`answers to calls ${first}-${calls - 1}`, () => {
        const seen = answered();
        return seen.forwarded + seen.rejected + seen.other >= calls - first ? true : undefined;
      });
    }
    const { forwarded, rejected, other } = answered();
    const others = atPbx.filter((m) => m.type === 'response' && m.status !== 603 && ours(m)).map((m) => m.type === 'response' && `${m.status} ${m.reason}`);
    assert.equal(other, 0, `every call was decided, none answered otherwise: ${others.join(', ')}`);
    return { forwarded, rejected };
  }

  before(async () => {
    upstream = await udp('127.0.0.1');
    pbx = await udp(pbxAddress);
    upstream.on('message', (bytes) => atUpstream.push(parseMessage(bytes)!));
    pbx.on('message', (bytes) => atPbx.push(parseMessage(bytes)!));
    const serving = await startServe(db, httpPort, 'carrier.example', [
      '--allow-private-trunk-ips', '--metrics-token', METRICS_TOKEN,
      '--sip', `udp:${edge.host}:${edge.port}`, '--sip-upstream', `127.0.0.1:${upstream.address().port}`, '--sip-workers', '2',
    ]);
    server = serving.process;
    token = serving.token;
    tenant = (await api('PUT', `/v2/accounts/${serving.masterId}`, { name: 'Acme', realm: 'acme.example' })).id;
    trunk = (await api('PUT', `/v2/accounts/${tenant}/trunks`, { name: 'PBX' })).id;
  });

  after(async () => {
    server?.kill('SIGTERM');
    upstream?.close();
    pbx?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs two worker processes besides the API', () => {
    assert.equal(workerPids(server).length, 2);
    assertWorkerHeapFlags(server);
  });

  it('every packet after a write is answered is decided by the new rule, whichever worker reads it', async () => {
    assert.deepEqual(await invite(100), { forwarded: 0, rejected: 100 });
    const entry = await api('PUT', `/v2/accounts/${tenant}/trunks/${trunk}/ip_acls`, { ip_address: pbxAddress });
    assert.deepEqual(await invite(100), { forwarded: 100, rejected: 0 });
    await api('DELETE', `/v2/accounts/${tenant}/trunks/${trunk}/ip_acls/${entry.id}`);
    assert.deepEqual(await invite(100), { forwarded: 0, rejected: 100 });
    await api('PUT', `/v2/accounts/${tenant}/trunks/${trunk}/ip_acls`, { ip_address: pbxAddress });
    assert.deepEqual(await invite(100), { forwarded: 100, rejected: 0 });
    // The workers' counters reach /metrics, added up.
    const metrics = await (await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } })).text();
    hasLine(metrics, /ipwarden_sip_requests_rejected_total\{reason="unknown_realm"\} 200\n/);
    hasLine(metrics, /ipwarden_sip_packets_forwarded_total\{direction="request"\} 200\n/);
    hasLine(metrics, /ipwarden_sip_workers 2\n/);
    // The console's figures add the workers' counters up too.
    const stats = (await (await fetch(`${base}/v2/stats`, { headers: { 'x-auth-token': token } })).json()) as { data: { sip: unknown } };
    assert.deepEqual(stats.data.sip, { forwarded: 200, rejected: 200 });
  });

  it('a killed worker is replaced while the other serves on, and the API keeps running', async () => {
    const [victim, survivor] = workerPids(server);
    assert.ok(victim && survivor);
    process.kill(victim, 'SIGKILL');
    // Datagrams already queued at the dying worker's socket die with it (callers resend them):
    // once it is gone, no call is lost, the survivor's socket takes the whole address.
    await until('the killed worker gone', () => (gone(victim) ? true : undefined));
    assert.deepEqual(await invite(50), { forwarded: 50, rejected: 0 });
    const replaced = await until('a replacement worker', () => {
      const pids = workerPids(server);
      return pids.length === 2 && !pids.includes(victim) ? pids : undefined;
    });
    assert.ok(replaced.includes(survivor));
    assertWorkerHeapFlags(server);
    assert.equal(server.exitCode, null, 'the API process did not restart');
    assert.equal((await fetch(`${base}/v2/health`)).status, 200);
    const metrics = await until('two workers listening', async () => {
      const text = await (await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } })).text();
      return /ipwarden_sip_workers 2\n/.test(text) ? text : undefined;
    });
    hasLine(metrics, /ipwarden_sip_worker_restarts 1\n/);
    // The replacement built its index from the store: with the survivor killed too, it decides alone.
    process.kill(survivor, 'SIGKILL');
    await until('the second replacement', () => (workerPids(server).filter((p) => p !== survivor).length === 2 ? true : undefined));
    // Each worker binds the address itself: with both dead, it is bound again once one listens.
    await until('two workers listening again', async () => {
      const text = await (await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } })).text();
      return /ipwarden_sip_workers 2\n/.test(text) ? true : undefined;
    });
    assert.deepEqual(await invite(50), { forwarded: 50, rejected: 0 });
  });
});
