// The HTTP part of `npm run bench` (issue 6, api.md §8): the real server (SQLite, token check,
// hierarchy check, info-level logging, metrics) and a bare Fastify hello world, each in its own
// process, driven in turn by autocannon -c 50 from this one. Medians of several runs, as ratios.

import autocannon from 'autocannon';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { credentialsOf } from '../src/services/passwords.ts';
import { median, type Target } from './core/measure.ts';

interface Run {
  rps: number;
  p50: number;
  p99: number;
  /** The server's CPU time per request, µs (Linux: /proc), or NaN. */
  cpuUs: number;
}

interface Row {
  name: string;
  runs: Run[];
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

async function waitFor(url: string, child: ChildProcess): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) throw new Error(`${url}: the server exited (${child.exitCode})`);
    try {
      await fetch(url);
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`${url} did not answer`);
}

const HELLO = `
import Fastify from 'fastify';
const app = Fastify();
app.get('/', async () => ({ hello: 'world' }));
await app.listen({ port: Number(process.argv[1]), host: '127.0.0.1' });
`;

// The same bytes as one of our answers, sent by Fastify for any GET with no work at all: what
// the request and response sizes alone allow (the token header, the envelope, the CORS headers).
const REPLAY = `
import Fastify from 'fastify';
const { headers, body } = JSON.parse(process.argv[2]);
const app = Fastify();
app.get('/*', (_request, reply) => { reply.headers(headers).send(body); });
await app.listen({ port: Number(process.argv[1]), host: '127.0.0.1' });
`;

async function api(base: string, method: string, path: string, token: string | undefined, body?: unknown) {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: { 'content-type': 'application/json', ...(token ? { 'x-auth-token': token } : {}) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const json = (await response.json()) as { auth_token?: string; data: Record<string, unknown> };
  if (response.status >= 300) throw new Error(`${method} ${path}: ${response.status} ${JSON.stringify(json)}`);
  return json;
}

/** CPU ticks (user + system) a process has used so far, from /proc/PID/stat; NaN elsewhere. */
function cpuTicks(pid: number | undefined): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return Number.NaN;
  }
}
const TICK_US = 10_000; // USER_HZ is 100 on Linux

async function load(server: ChildProcess, options: autocannon.Options): Promise<Run> {
  const before = cpuTicks(server.pid);
  const result = await autocannon({ connections: 50, ...options });
  const cpuUs = ((cpuTicks(server.pid) - before) * TICK_US) / result.requests.total;
  if (result.non2xx > 0 || result.errors > 0) throw new Error(`${options.url}: ${result.non2xx} non-2xx, ${result.errors} errors`);
  return { rps: result.requests.average, p50: result.latency.p50, p99: result.latency.p99, cpuUs };
}

/** Runs the comparison, prints its table, and returns its targets, met or not. */
export async function runHttpBench(quick: boolean): Promise<Target[]> {
  const seconds = quick ? 1 : 3;
  const repeats = quick ? 2 : 5;
  const dir = mkdtempSync(join(tmpdir(), 'ipwarden-bench-'));
  const db = join(dir, 'bench.db');
  const bin = join(import.meta.dirname, '..', 'bin', 'ipwarden.js');
  const children: ChildProcess[] = [];
  try {
    const created = spawnSync(process.execPath, [bin, 'create-account', 'Bench', 'bench.test', 'admin', 'secret', '--db', db], { encoding: 'utf8' });
    if (created.status !== 0) throw new Error(`create-account failed: ${created.stderr}`);

    const [apiPort, helloPort] = [await freePort(), await freePort()];
    const server = spawn(process.execPath, [bin, 'serve', '--db', db, '--port', String(apiPort), '--host', '127.0.0.1', '--metrics-port', '0', '--log-level', 'info'], { stdio: ['ignore', 'ignore', 'inherit'] });
    const hello = spawn(process.execPath, ['--input-type=module', '-e', HELLO, String(helloPort)], { stdio: ['ignore', 'ignore', 'inherit'], cwd: join(import.meta.dirname, '..') });
    children.push(server, hello);
    const base = `http://127.0.0.1:${apiPort}`;
    await Promise.all([waitFor(`${base}/v2/health`, server), waitFor(`http://127.0.0.1:${helloPort}/`, hello)]);

    // A parent's admin acting on a child account: the hierarchy check is exercised.
    const login = await api(base, 'PUT', '/v2/user_auth', undefined, { data: { credentials: credentialsOf('admin', 'secret'), account_realm: 'bench.test' } });
    const token = login.auth_token!;
    const master = login.data.account_id as string;
    const child = (await api(base, 'PUT', `/v2/accounts/${master}`, token, { data: { name: 'Tenant', realm: 'tenant.bench.test' } })).data.id as string;
    const cidrs = Array.from({ length: 1000 }, (_, i) => `10.${(i >> 8) & 255}.${i & 255}.0/24`);
    const list = { data: { order: 'allow,deny', cidrs } };
    await api(base, 'POST', `/v2/accounts/${child}/access_lists`, token, list);
    const headers = { 'x-auth-token': token, 'content-type': 'application/json' };
    const checkPath = `/v2/accounts/${child}/access_lists/check?ip=10.3.7.9&user_agent=bench`;
    const sample = await fetch(`${base}${checkPath}`, { headers });
    const replayed = {
      headers: Object.fromEntries([...sample.headers].filter(([name]) => !['date', 'connection', 'keep-alive', 'content-length'].includes(name))),
      body: await sample.text(),
    };
    const replayPort = await freePort();
    const replay = spawn(process.execPath, ['--input-type=module', '-e', REPLAY, String(replayPort), JSON.stringify(replayed)], { stdio: ['ignore', 'ignore', 'inherit'], cwd: join(import.meta.dirname, '..') });
    children.push(replay);
    await waitFor(`http://127.0.0.1:${replayPort}/`, replay);

    const rows: Row[] = [
      { name: 'Fastify hello world (floor)', runs: [] },
      { name: 'Fastify replaying a check answer', runs: [] },
      { name: 'GET …/access_lists/check', runs: [] },
      { name: 'GET /v2/access_lists/decide', runs: [] },
      { name: 'GET …/access_lists', runs: [] },
      { name: 'POST …/access_lists (writes)', runs: [] },
    ];
    const loads: [ChildProcess, autocannon.Options][] = [
      [hello, { url: `http://127.0.0.1:${helloPort}/` }],
      [replay, { url: `http://127.0.0.1:${replayPort}${checkPath}`, headers }],
      [server, { url: `${base}${checkPath}`, headers }],
      [server, { url: `${base}/v2/access_lists/decide?ip=10.3.7.9&realm=tenant.bench.test&username=phone&user_agent=bench`, headers }],
      [server, { url: `${base}/v2/accounts/${child}/access_lists`, headers }],
      [server, { url: `${base}/v2/accounts/${child}/access_lists`, method: 'POST', headers, body: JSON.stringify({ data: { order: 'allow,deny', cidrs: cidrs.slice(0, 20) } }), connections: 10 }],
    ];
    // A first, unrecorded pass warms both processes up (JIT, caches); then runs are interleaved.
    for (const [target, options] of loads) await load(target, { ...options, duration: 0.5 });
    for (let r = 0; r < repeats; r++) {
      for (const [i, [target, options]] of loads.entries()) rows[i]!.runs.push(await load(target, { ...options, duration: seconds }));
    }

    // A row's ratio is taken round by round, against the hello world run seconds before it, and
    // the median of those is the row's: the machine's speed drifts between rounds more than
    // within one (a median of each row's rates alone once put the check at 1.05× the hello world
    // when round by round it was 0.66×, 0.69× and 1.10×).
    const vsFloor = (row: Row) => median(row.runs.map((x, r) => x.rps / rows[0]!.runs[r]!.rps));
    console.log(`\nHTTP (autocannon -c 50, ${seconds} s × ${repeats}, medians; server and load in separate processes on 2 cores; CPU: the server's, per request;`);
    console.log('vs hello world: the median of the rounds\' ratios, each against the hello world run just before)');
    // Each run's rate is printed too: on a VM, runs of one server can differ by 2× (the kernel's cost
    // of waking the load generator changes with how busy it is), which a median alone hides.
    console.log(`${'endpoint'.padEnd(34)} ${'req/s'.padStart(9)} ${'p50 ms'.padStart(7)} ${'p99 ms'.padStart(7)} ${'CPU µs/req'.padStart(10)}  vs hello world  runs (k req/s)`);
    for (const row of rows) {
      const rps = median(row.runs.map((x) => x.rps));
      const runs = row.runs.map((x) => (x.rps / 1000).toFixed(1)).join(' ');
      console.log(`${row.name.padEnd(34)} ${Math.round(rps).toString().padStart(9)} ${median(row.runs.map((x) => x.p50)).toFixed(1).padStart(7)} ${median(row.runs.map((x) => x.p99)).toFixed(1).padStart(7)} ${median(row.runs.map((x) => x.cpuUs)).toFixed(0).padStart(10)}  ${`${vsFloor(row).toFixed(2)}×`.padStart(14)}  ${runs}`);
    }
    const check = vsFloor(rows[2]!);
    const read = vsFloor(rows[4]!);
    const ceiling = vsFloor(rows[1]!);
    console.log(
      `The replay sends the check's ${replayed.body.length}-byte answer and headers to a request of the same size, doing nothing else: ` +
        `at ${ceiling.toFixed(2)}× it is what those sizes alone allow; the check endpoint reaches ${(check / ceiling).toFixed(2)}× of it.`,
    );
    return [
      { what: 'HTTP decision endpoint ≥ 0.80× a bare Fastify hello world', met: check >= 0.8, detail: `${check.toFixed(2)}×` },
      { what: 'HTTP GET access_lists ≥ 0.50× a bare Fastify hello world', met: read >= 0.5, detail: `${read.toFixed(2)}×` },
    ];
  } finally {
    for (const child of children) child.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
}

