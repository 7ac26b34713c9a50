// Crash safety (issue 8): SIGKILL the server in the middle of a stream of writes, restart it on
// the same database, and find every acknowledged write, and no half-written one.

import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { credentialsOf } from '../../src/services/passwords.ts';

const bin = join(import.meta.dirname, '..', '..', 'bin', 'ipwarden.js');
const dir = mkdtempSync(join(tmpdir(), 'ipwarden-crash-'));
const db = join(dir, 'crash.db');
after(() => rmSync(dir, { recursive: true, force: true }));

function cli(...args: string[]) {
  const result = spawnSync(process.execPath, [bin, ...args, '--db', db], { encoding: 'utf8' });
  assert.equal(result.status, 0, result.stderr);
  return result.stdout.trim();
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

async function startServer(port: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, [bin, 'serve', '--db', db, '--port', String(port), '--host', '127.0.0.1', '--log-level', 'silent'], { stdio: 'ignore' });
  for (let i = 0; i < 150; i++) {
    try {
      await fetch(`http://127.0.0.1:${port}/v2/health`);
      return child;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error('the server did not start');
}

async function call(port: number, method: string, path: string, token?: string, body?: unknown) {
  const response = await fetch(`http://127.0.0.1:${port}${path}`, {
    method,
    headers: token ? { 'x-auth-token': token } : {},
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: response.status, json: (await response.json()) as { auth_token?: string; data: any } };
}

async function login(port: number) {
  const r = await call(port, 'PUT', '/v2/user_auth', undefined, { data: { credentials: credentialsOf('admin', 'secret'), account_realm: 'crash.test' } });
  assert.equal(r.status, 201);
  return { token: r.json.auth_token!, accountId: r.json.data.account_id as string };
}

test('every acknowledged write survives SIGKILL, and no write is half-done', { timeout: 60_000 }, async () => {
  cli('create-account', 'Crash', 'crash.test', 'admin', 'secret');
  const pairs = 150;
  const ipOf = (i: number) => `198.${(i >> 8) + 1}.${i & 255}.1`;
  const csv = Array.from({ length: pairs * 2 }, (_, i) => `${ipOf(i)},zone-a,proxy.example`).join('\n');
  writeFileSync(join(dir, 'pool.csv'), `${csv}\n`);
  cli('ips', 'import', join(dir, 'pool.csv'));

  const port = await freePort();
  let server = await startServer(port);
  const { token, accountId } = await login(port);
  const tenant = (await call(port, 'PUT', `/v2/accounts/${accountId}`, token, { data: { name: 'Tenant', realm: 'tenant.crash.test' } })).json.data.id as string;

  // Each write is multi-row: a pair of IPs assigned together, or a trunk with its audit entry.
  const acknowledgedPairs: number[] = [];
  const acknowledgedTrunks: string[] = [];
  let next = 0;
  let stop = false;
  const worker = async () => {
    while (!stop && next < pairs) {
      const pair = next++;
      try {
        const r = await call(port, 'POST', `/v2/accounts/${tenant}/ips`, token, { data: { ips: [ipOf(2 * pair), ipOf(2 * pair + 1)] } });
        if (r.status === 200) acknowledgedPairs.push(pair);
        const t = await call(port, 'PUT', `/v2/accounts/${tenant}/trunks`, token, { data: { name: `trunk ${pair}` } });
        if (t.status === 201) acknowledgedTrunks.push(t.json.data.id as string);
      } catch {
        return; // the connection died with the server
      }
    }
  };
  const workers = Array.from({ length: 6 }, worker);
  // Kill once the stream is well under way, while requests are in flight.
  while (acknowledgedPairs.length < 40) await new Promise((r) => setTimeout(r, 5));
  server.kill('SIGKILL');
  stop = true;
  await Promise.all(workers);
  if (server.exitCode === null && server.signalCode === null) await once(server, 'exit');

  server = await startServer(port);
  try {
    const again = await login(port);
    const assigned = new Set(((await call(port, 'GET', `/v2/accounts/${tenant}/ips/assigned`, again.token)).json.data as { ip: string }[]).map((x) => x.ip));
    for (const pair of acknowledgedPairs) {
      assert.ok(assigned.has(ipOf(2 * pair)) && assigned.has(ipOf(2 * pair + 1)), `acknowledged pair ${pair} was lost`);
    }
    for (let pair = 0; pair < pairs; pair++) {
      assert.equal(assigned.has(ipOf(2 * pair)), assigned.has(ipOf(2 * pair + 1)), `pair ${pair} is half-assigned`);
    }
    const trunks = new Set(((await call(port, 'GET', `/v2/accounts/${tenant}/trunks`, again.token)).json.data as { id: string }[]).map((t) => t.id));
    for (const id of acknowledgedTrunks) assert.ok(trunks.has(id), `acknowledged trunk ${id} was lost`);
    console.log(`crash test: ${acknowledgedPairs.length} IP-pair assignments and ${acknowledgedTrunks.length} trunks acknowledged before SIGKILL, all found after restart; ${assigned.size / 2} pairs assigned, none half`);
  } finally {
    server.kill('SIGTERM');
  }
});
