// The `ipwarden` command as real processes (api.md §2, §3): create-account, the ips maintenance
// verbs, --help, and the CLI writing to the database a running server reads.

import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { credentialsOf } from '../../src/services/passwords.ts';
import { baseEnv, BIN, cli } from '../support/cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'ipwarden-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));

let dbCounter = 0;
const freshDb = () => join(dir, `db${++dbCounter}.sqlite`);

/** The summary table's rows as objects keyed by the header. */
function summaryRows(out: string): Record<string, string>[] {
  const lines = out.trimEnd().split('\n');
  const header = lines[0]!.trim().split(/\s{2,}/);
  return lines.slice(1).map((line) => {
    const cells = line.trim().split(/\s{2,}/);
    return Object.fromEntries(header.map((h, i) => [h, cells[i] ?? '']));
  });
}

describe('the maintenance verbs', { concurrency: true }, () => {
  test('create-account (first is the superduper), ips add, assign, release, delete and summary [HOST]', async () => {
    const db = freshDb();
    const first = await cli(db, 'create-account', 'Master', 'master.test', 'admin', 'secret');
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /^[0-9a-f]{32}\n$/);
    const second = await cli(db, 'create-account', 'Tenant', 'tenant.test', 'boss', 'pw');
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, /^[0-9a-f]{32}\n$/);
    assert.notEqual(first.stdout, second.stdout);
    const account = second.stdout.trim();

    const added = await cli(db, 'ips', 'add', '1.2.3.4', 'us-east', 'proxy1.us-east.myswitch.com');
    assert.equal(added.code, 0, added.stderr);
    assert.equal(added.stdout, 'added IP 1.2.3.4 to available dedicated ips\n');
    const v6 = await cli(db, 'ips', 'add', '2001:DB8:0::7', 'eu-west', 'proxy2.example.com');
    assert.equal(v6.stdout, 'added IP 2001:db8::7 to available dedicated ips\n');
    const dup = await cli(db, 'ips', 'add', '1.2.3.4', 'us-east', 'proxy1.us-east.myswitch.com');
    assert.notEqual(dup.code, 0);
    assert.equal(dup.stdout, '');

    const assigned = await cli(db, 'ips', 'assign', '1.2.3.4', account);
    assert.equal(assigned.code, 0, assigned.stderr);
    let summary = await cli(db, 'ips', 'summary');
    assert.equal(summary.code, 0, summary.stderr);
    assert.deepEqual(summary.stdout.split('\n')[0]!.trim().split(/\s{2,}/), ['IP', 'Status', 'Zone', 'Host', 'Account']);
    assert.deepEqual(summaryRows(summary.stdout), [
      { IP: '1.2.3.4', Status: 'assigned', Zone: 'us-east', Host: 'proxy1.us-east.myswitch.com', Account: account },
      { IP: '2001:db8::7', Status: 'available', Zone: 'eu-west', Host: 'proxy2.example.com', Account: '' },
    ]);
    const byHost = await cli(db, 'ips', 'summary', 'proxy2.example.com');
    assert.deepEqual(summaryRows(byHost.stdout).map((r) => r.IP), ['2001:db8::7']);

    // An assigned IP cannot be deleted; released, it can.
    const refused = await cli(db, 'ips', 'delete', '1.2.3.4');
    assert.notEqual(refused.code, 0);
    const released = await cli(db, 'ips', 'release', '1.2.3.4');
    assert.equal(released.code, 0, released.stderr);
    const deleted = await cli(db, 'ips', 'delete', '1.2.3.4');
    assert.equal(deleted.code, 0, deleted.stderr);
    summary = await cli(db, 'ips', 'summary');
    assert.deepEqual(summaryRows(summary.stdout).map((r) => [r.IP, r.Status]), [['2001:db8::7', 'available']]);
  });

  test('ips import: a bad file reports every bad row by line and writes nothing; a good file imports all', async () => {
    const db = freshDb();
    const badFile = join(dir, 'bad.csv');
    writeFileSync(badFile, ['ip,zone,host', '10.9.0.1,us-east,p1.example.com', '10.9.0.300,us-east,p1.example.com', '10.9.0.2,,p1.example.com', '', '10.9.0.3,us-east,p3.example.com', '10.9.0.1,us-west,p9.example.com'].join('\n'));
    const bad = await cli(db, 'ips', 'import', badFile);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /line 3\b/);
    assert.match(bad.stderr, /line 4\b/);
    assert.match(bad.stderr, /line 7\b/);
    assert.doesNotMatch(bad.stderr, /line 2\b|line 6\b/);
    assert.equal(summaryRows((await cli(db, 'ips', 'summary')).stdout).length, 0);

    const goodFile = join(dir, 'good.csv');
    writeFileSync(goodFile, 'ip,zone,host\n10.9.0.1,us-east,p1.example.com\n2001:db8::1, us-west , p2.example.com\r\n10.9.0.2,us-east,p1.example.com\n');
    const good = await cli(db, 'ips', 'import', goodFile);
    assert.equal(good.code, 0, good.stderr);
    const rows = summaryRows((await cli(db, 'ips', 'summary')).stdout);
    assert.deepEqual(rows.map((r) => [r.IP, r.Status, r.Zone, r.Host]), [
      ['10.9.0.1', 'available', 'us-east', 'p1.example.com'],
      ['10.9.0.2', 'available', 'us-east', 'p1.example.com'],
      ['2001:db8::1', 'available', 'us-west', 'p2.example.com'],
    ]);
  });

  test('--help lists the verbs and exits 0', async () => {
    const help = await cli(freshDb(), '--help');
    assert.equal(help.code, 0);
    for (const verb of ['serve', 'create-account', 'ips']) assert.match(help.stdout, new RegExp(`\\b${verb}\\b`));
  });
});

describe('the CLI and a running server on one database', () => {
  const db = freshDb();
  const port = 20000 + Math.floor(Math.random() * 30000);
  const base = `http://127.0.0.1:${port}`;
  let server: ChildProcess;
  let serverErr = '';
  let token: string;

  const api = async (method: string, path: string, body?: unknown) => {
    const response = await fetch(`${base}${path}`, { method, headers: { 'x-auth-token': token ?? '', 'content-type': 'application/json' }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    return { status: response.status, body: (await response.json()) as any };
  };

  before(async () => {
    const master = await cli(db, 'create-account', 'Master', 'master.test', 'admin', 'secret');
    assert.equal(master.code, 0, master.stderr);
    server = spawn(process.execPath, [BIN, 'serve', '--port', String(port), '--host', '127.0.0.1'], { env: baseEnv(db), stdio: ['ignore', 'ignore', 'pipe'] });
    server.stderr!.on('data', (chunk) => (serverErr += chunk));
    const deadline = Date.now() + 15_000;
    for (;;) {
      const up = await new Promise<boolean>((resolve) => {
        const socket = connect(port, '127.0.0.1', () => (socket.destroy(), resolve(true)));
        socket.on('error', () => resolve(false));
      });
      if (up) break;
      if (server.exitCode !== null || Date.now() > deadline) throw new Error(`server did not start: ${serverErr}`);
      await sleep(100);
    }
    const login = await fetch(`${base}/v2/user_auth`, { method: 'PUT', body: JSON.stringify({ data: { credentials: credentialsOf('admin', 'secret'), account_realm: 'master.test' } }) });
    assert.equal(login.status, 201);
    const body = (await login.json()) as { auth_token: string; data: { is_superduper_admin: boolean } };
    token = body.auth_token;
    // The first account the CLI created is the superduper.
    assert.equal(body.data.is_superduper_admin, true);
  });
  after(async () => {
    if (server && server.exitCode === null) {
      const exited = new Promise((resolve) => server.once('close', resolve));
      server.kill('SIGTERM');
      await Promise.race([exited, sleep(5000)]);
      if (server.exitCode === null) server.kill('SIGKILL');
    }
  });

  test('an IP added by the CLI is in the server pool', async () => {
    const added = await cli(db, 'ips', 'add', '198.51.100.20', 'us-east', 'proxy1.example.com');
    assert.equal(added.stdout, 'added IP 198.51.100.20 to available dedicated ips\n');
    const pool = await api('GET', '/v2/ips');
    assert.equal(pool.status, 200);
    assert.deepEqual(pool.body.data, [{ id: '198.51.100.20', ip: '198.51.100.20', zone: 'us-east', host: 'proxy1.example.com', status: 'available', type: 'dedicated_ip' }]);
    // And the server's assignment shows in the CLI's summary.
    const master = (await api('GET', '/v2/token_auth')).body.data.account_id;
    assert.equal((await api('POST', `/v2/accounts/${master}/ips/198.51.100.20`)).status, 200);
    const rows = summaryRows((await cli(db, 'ips', 'summary')).stdout);
    assert.deepEqual(rows, [{ IP: '198.51.100.20', Status: 'assigned', Zone: 'us-east', Host: 'proxy1.example.com', Account: master }]);
  });

  test("an account created by the CLI is known to the server's decide endpoint within a second", async () => {
    const unknown = await api('GET', '/v2/access_lists/decide?ip=192.0.2.1&realm=cli-made.test&username=x');
    assert.equal(unknown.status, 200);
    assert.equal(unknown.body.data.reason, 'unknown_realm');
    const created = await cli(db, 'create-account', 'CLI Made', 'cli-made.test', 'boss', 'pw');
    assert.equal(created.code, 0, created.stderr);
    const id = created.stdout.trim();
    const start = Date.now();
    let data: any;
    for (;;) {
      data = (await api('GET', '/v2/access_lists/decide?ip=192.0.2.1&realm=cli-made.test&username=x')).body.data;
      if (data.account_id === id || Date.now() - start > 3000) break;
      await sleep(25);
    }
    const elapsed = Date.now() - start;
    assert.equal(data.account_id, id, JSON.stringify(data));
    assert.notEqual(data.reason, 'unknown_realm');
    assert.equal(data.decision, 'allow');
    assert.ok(elapsed < 1000, `known after ${elapsed} ms`);
    // The new account's admin can log in to the server at once.
    const login = await fetch(`${base}/v2/user_auth`, { method: 'PUT', body: JSON.stringify({ data: { credentials: credentialsOf('boss', 'pw'), account_name: 'CLI Made' } }) });
    assert.equal(login.status, 201);
  });
});

test("a quiet server's log lines show within a second, though the log is buffered", async () => {
  const db = freshDb();
  const port = 20000 + Math.floor(Math.random() * 20000);
  const env = { ...baseEnv(db), IPWARDEN_LOG_LEVEL: 'info' };
  const server = spawn(process.execPath, [BIN, 'serve', '--port', String(port), '--host', '127.0.0.1'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  server.stdout!.on('data', (chunk) => (out += chunk));
  const seen = async (what: RegExp) => {
    const deadline = Date.now() + 1000;
    while (!what.test(out) && Date.now() < deadline && server.exitCode === null) await sleep(20);
    return what.test(out);
  };
  try {
    const started = Date.now() + 15_000;
    while (!/"msg":"ipwarden serving"/.test(out)) {
      assert.ok(Date.now() < started && server.exitCode === null, `no start line: ${out}`);
      await sleep(50);
    }
    const health = await fetch(`http://127.0.0.1:${port}/v2/health`);
    assert.equal(health.status, 200);
    assert.ok(await seen(/"url":"\/v2\/health","remote":"127\.0\.0\.1","status":200/), `no request line within a second: ${out}`);
    // A line still gathered when the server is told to stop is written before it exits.
    assert.equal((await fetch(`http://127.0.0.1:${port}/v2/health?last=1`)).status, 200);
    const exited = new Promise((resolve) => server.once('close', resolve));
    server.kill('SIGTERM');
    await exited;
    assert.match(out, /"url":"\/v2\/health\?last=1"/);
  } finally {
    server.kill('SIGTERM');
  }
});
