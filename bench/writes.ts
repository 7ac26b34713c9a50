// The Writes part of `npm run bench` (issue 23): single trunk IP ACL entries written through the
// real HTTP API, 16 in flight, on top of tables of existing entries of growing size, on SQLite and
// PostgreSQL; a bulk import of many entries through the API's array PUT; the largest event-loop
// delay the server saw during each load; and beside them the floor of the same store written
// directly (no HTTP, no rules). Existing entries are seeded by the store's direct insert.

import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { loadConfig } from '../src/config.ts';
import { startServices } from '../src/main.ts';
import { bootstrapAccount } from '../src/services/bootstrap.ts';
import { SYSTEM_ACTOR } from '../src/services/actor.ts';
import { credentialsOf } from '../src/services/passwords.ts';
import type { IpAclRow, TrunkRow } from '../src/store/port.ts';
import { formatRate, table, type Target } from './core/measure.ts';
import { freePort } from './http.ts';
import type { ClientJob, ClientReport } from './writes-client.ts';

const PG_BASE = process.env.IPWARDEN_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const PG_SCHEMA = 'ipwarden_bench_writes';
const IN_FLIGHT = 16;
const ENTRIES_PER_TRUNK = 1000;

/** What the server's loop turns were made of during a load (Linux; bench/writes-server.ts). */
interface Turns {
  longest: { ms: number; runningMs: number; waitingMs: number };
  mostRunningMs: number;
}

interface Load {
  seconds: number;
  count: number;
  maxDelayMs: number;
  p99DelayMs: number;
  /** The longest garbage collection pause (perf_hooks 'gc' entries). */
  gcMaxMs: number;
  /** The same loop delay in an idle process beside the server (bench/idle-loop.ts): the machine's floor. */
  idle: { maxMs: number; p99Ms: number };
  turns: Turns | null;
  /** CPU time (user + system, all threads) per request: the server's, and this process's (the load's client). */
  serverCpuUs: number;
  clientCpuUs: number;
}

/** A load's loop delay, and (Linux) the longest turn's time on a core and waiting for one. */
function delayOf(load: Load): string {
  const turns = load.turns === null ? '' : `; longest turn ${load.turns.longest.ms.toFixed(1)} ms: ran ${load.turns.longest.runningMs.toFixed(1)}, waited for a core ${load.turns.longest.waitingMs.toFixed(1)}; most run in a turn ${load.turns.mostRunningMs.toFixed(1)} ms`;
  return `loop delay max ${load.maxDelayMs.toFixed(1)} ms, p99 ${load.p99DelayMs.toFixed(1)} ms (an idle process's: max ${load.idle.maxMs.toFixed(1)}, p99 ${load.idle.p99Ms.toFixed(1)}), longest GC pause ${load.gcMaxMs.toFixed(1)} ms${turns}`;
}

const dotted = (n: number) => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
const sizeName = (n: number) => (n >= 1e6 ? `${n / 1e6} M` : `${n / 1e3} k`);

async function postgresReachable(): Promise<boolean> {
  const client = new pg.Client({ connectionString: PG_BASE, connectionTimeoutMillis: 2000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query(`DROP SCHEMA IF EXISTS ${PG_SCHEMA} CASCADE`);
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

function pgUrl(): string {
  const url = new URL(PG_BASE);
  url.searchParams.set('options', `-c search_path=${PG_SCHEMA}`);
  return url.toString();
}

/** Store settings (as CLI flags) for a fresh database of `kind`. */
async function freshDatabase(kind: 'sqlite' | 'postgres', dir: string, n: number): Promise<Record<string, string>> {
  if (kind === 'sqlite') return { db: join(dir, `writes-${n}.db`) };
  const client = new pg.Client(PG_BASE);
  await client.connect();
  await client.query(`DROP SCHEMA IF EXISTS ${PG_SCHEMA} CASCADE`);
  await client.end();
  return { databaseUrl: pgUrl() };
}

/** The master account, and `existing` entries written straight into the store; returns the direct-insert rates. */
async function seed(flags: Record<string, string>, existing: number): Promise<{ bulkRowsPerSecond: number; singlePerSecond: number }> {
  const services = await startServices(loadConfig({ ...flags, logLevel: 'silent' }, {}));
  try {
    const { store } = services.ctx;
    const master = await bootstrapAccount(services.ctx, SYSTEM_ACTOR, { name: 'Master', realm: 'master.bench', username: 'admin', password: 'secret' });
    const at = new Date().toISOString();
    const trunk = (i: number): TrunkRow => ({ id: `seed-trunk-${i}`, accountId: master.id, name: `Seed ${i}`, enabled: true, revision: '1-a', created: at, modified: at });
    const entry = (trunkId: string, address: number, id: string): IpAclRow => ({
      id,
      trunkId,
      accountId: master.id,
      ipAddress: dotted(address),
      family: 4,
      rangeLo: address.toString(16).padStart(8, '0'),
      rangeHi: address.toString(16).padStart(8, '0'),
      prefix: 32,
      description: 'seeded',
      enabled: true,
      revision: '1-a',
      createdAt: at.slice(0, 19) + 'Z',
      updatedAt: at.slice(0, 19) + 'Z',
    });
    // Existing entries: 11.0.0.0 onwards, 1,000 a trunk, 10,000 a transaction.
    const started = performance.now();
    const chunk = 10_000;
    for (let from = 0; from < existing; from += chunk) {
      const count = Math.min(chunk, existing - from);
      await store.transaction(async (tx) => {
        for (let t = from / ENTRIES_PER_TRUNK; t < (from + count) / ENTRIES_PER_TRUNK; t++) await tx.insertTrunk(trunk(t));
        await tx.insertIpAcls(Array.from({ length: count }, (_, i) => entry(`seed-trunk-${Math.floor((from + i) / ENTRIES_PER_TRUNK)}`, 0x0b000000 + from + i, `seed-${from + i}`)));
      });
    }
    const bulkRowsPerSecond = existing / ((performance.now() - started) / 1000);
    // The single-row floor: one entry a transaction, as many in flight as the API load.
    await store.transaction((tx) => tx.insertTrunk(trunk(-1)));
    const singles = 1000;
    let next = 0;
    const singleStarted = performance.now();
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async () => {
        while (next < singles) {
          const i = next++;
          await store.transaction((tx) => tx.insertIpAcl(entry('seed-trunk--1', 0x0e000000 + i, `single-${i}`)));
        }
      }),
    );
    return { bulkRowsPerSecond, singlePerSecond: singles / ((performance.now() - singleStarted) / 1000) };
  } finally {
    await services.close();
  }
}

/** Sends `message` (unless null) to `child` and resolves with its first reply holding `key`. */
function ask(child: ChildProcess, message: string | null, key: string): Promise<Record<string, any>> {
  return new Promise((resolve, reject) => {
    const onMessage = (reply: Record<string, any>) => {
      if (!(key in reply)) return;
      child.off('message', onMessage);
      child.off('exit', onExit);
      resolve(reply);
    };
    const onExit = (code: number | null) => reject(new Error(`a bench process exited (${code})`));
    child.on('message', onMessage);
    child.once('exit', onExit);
    if (message !== null) child.send(message);
  });
}

/** A child process of this directory, under tsx, with IPC; resolves once it says it is ready. */
async function forkReady(file: string, args: string[] = []): Promise<ChildProcess> {
  const child = fork(join(import.meta.dirname, file), args, { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  await ask(child, null, 'ready');
  return child;
}

async function stopChild(child: ChildProcess): Promise<void> {
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.send('stop');
  await exited;
}

class BenchServer {
  private constructor(
    private readonly child: ChildProcess,
    private readonly idle: ChildProcess,
    readonly base: string,
  ) {}

  /** The server, on `flags`, measured beside `idle` (bench/idle-loop.ts). */
  static async start(flags: Record<string, string>, idle: ChildProcess): Promise<BenchServer> {
    const port = await freePort();
    const settings = { ...flags, port: String(port), host: '127.0.0.1', metricsPort: '0', logLevel: 'info', maxIpAclsPerTrunk: '1000' };
    return new BenchServer(await forkReady('writes-server.ts', [JSON.stringify(settings)]), idle, `http://127.0.0.1:${port}`);
  }

  async request(method: string, path: string, token: string | undefined, body?: unknown): Promise<{ auth_token?: string; data: any }> {
    const response = await fetch(`${this.base}${path}`, {
      method,
      headers: { 'content-type': 'application/json', ...(token ? { 'x-auth-token': token } : {}) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const json = (await response.json()) as { auth_token?: string; data: any };
    if (response.status >= 300) throw new Error(`${method} ${path}: ${response.status} ${JSON.stringify(json).slice(0, 300)}`);
    return json;
  }

  /**
   * Sends `count` PUTs, the i-th made by `request(i)`, `inFlight` at a time, from the load
   * generator's own low-priority process (writes-client.ts, started before the load is timed);
   * any answer not 2xx fails. Measures the server's largest loop delay and its CPU meanwhile;
   * rates and CPU are per entry, `entriesEach` a request.
   */
  async load(count: number, inFlight: number, token: string, request: (i: number) => { path: string; body: unknown }, entriesEach = 1): Promise<Load> {
    const job: ClientJob = { url: this.base, token, inFlight, requests: Array.from({ length: count }, (_, i) => request(i)).map(({ path, body }) => ({ path, body: JSON.stringify(body) })) };
    const client = await forkReady('writes-client.ts');
    await Promise.all([ask(this.child, 'reset', 'reset'), ask(this.idle, 'reset', 'reset')]);
    const reported = nextMessage(client);
    client.send(job);
    const report = await reported;
    if (!('seconds' in report)) throw new Error('error' in report ? report.error : 'the load generator did not report');
    const [{ maxMs, p99Ms, cpuUs, turns, gcMaxMs }, idle] = await Promise.all([ask(this.child, 'report', 'maxMs'), ask(this.idle, 'report', 'maxMs')]);
    const entries = count * entriesEach;
    return { seconds: report.seconds, count: entries, maxDelayMs: maxMs, p99DelayMs: p99Ms, gcMaxMs, idle: { maxMs: idle.maxMs, p99Ms: idle.p99Ms }, turns, serverCpuUs: cpuUs / entries, clientCpuUs: report.cpuUs / entries };
  }

  stop(): Promise<void> {
    return stopChild(this.child);
  }
}

/** The child's next message; rejects if it exits first. */
function nextMessage(child: ChildProcess): Promise<ClientReport> {
  return new Promise((resolve, reject) => {
    child.once('message', resolve);
    child.once('exit', (code) => reject(new Error(`the load generator exited (${code})`)));
  });
}

interface SizeRow {
  store: string;
  existing: number;
  api: Load;
  singlePerSecond: number;
}

interface BulkRow {
  store: string;
  bulk: Load;
  bulkRowsPerSecond: number;
}

export async function runWritesBench(quick: boolean): Promise<Target[]> {
  // --quick keeps to its time budget: SQLite alone, small tables, a small bulk (its targets are
  // then checked at those sizes; the full run's are the issue's).
  const sizes = quick ? [1_000, 10_000] : [1_000, 10_000, 100_000, 1_000_000];
  const writes = quick ? 500 : 3_000;
  const warmUp = quick ? 500 : 1_000;
  const bulkEntries = quick ? 5_000 : 100_000;
  const stores: ('sqlite' | 'postgres')[] = ['sqlite'];
  if (quick) console.log('--quick: SQLite only (the full run adds PostgreSQL)');
  else if (await postgresReachable()) stores.push('postgres');
  else console.log(`PostgreSQL not reachable at ${PG_BASE}: its rows are skipped`);
  const dir = mkdtempSync(join(tmpdir(), 'ipwarden-bench-writes-'));
  const idle = await forkReady('idle-loop.ts');
  const sizeRows: SizeRow[] = [];
  const bulkRows: BulkRow[] = [];
  let n = 0;
  try {
    for (const kind of stores) {
      for (const [s, existing] of sizes.entries()) {
        const flags = await freshDatabase(kind, dir, ++n);
        const floor = await seed(flags, existing);
        const server = await BenchServer.start(flags, idle);
        try {
          const login = await server.request('PUT', '/v2/user_auth', undefined, { data: { credentials: credentialsOf('admin', 'secret'), account_realm: 'master.bench' } });
          const token = login.auth_token!;
          const master = login.data.account_id as string;
          const account = (await server.request('PUT', `/v2/accounts/${master}`, token, { data: { name: 'Writer', realm: `writer${n}.bench` } })).data.id as string;
          const newTrunk = async () => (await server.request('PUT', `/v2/accounts/${account}/trunks`, token, { data: { name: 'T' } })).data.id as string;
          const trunks: string[] = [];
          for (let t = 0; t < Math.ceil(writes / ENTRIES_PER_TRUNK); t++) trunks.push(await newTrunk());
          // A first, unrecorded pass warms the new server process up (JIT, caches), as in the HTTP
          // section: 15.0.0.0 onwards on a trunk of its own, deleted (and its entries) after.
          const warmTrunk = await newTrunk();
          await server.load(warmUp, IN_FLIGHT, token, (i) => ({ path: `/v2/accounts/${account}/trunks/${warmTrunk}/ip_acls`, body: { data: { ip_address: dotted(0x0f000000 + i) } } }));
          await server.request('DELETE', `/v2/accounts/${account}/trunks/${warmTrunk}`, token);
          // Single entries: 12.0.0.0 onwards, each its own request.
          const api = await server.load(writes, IN_FLIGHT, token, (i) => ({ path: `/v2/accounts/${account}/trunks/${trunks[Math.floor(i / ENTRIES_PER_TRUNK)]}/ip_acls`, body: { data: { ip_address: dotted(0x0c000000 + i) } } }));
          const stored = (await server.request('GET', `/v2/accounts/${account}/ip_acls`, token)).data as unknown[];
          if (stored.length !== writes) throw new Error(`${stored.length} entries stored, not ${writes}`);
          sizeRows.push({ store: kind, existing, api, singlePerSecond: floor.singlePerSecond });
          console.log(`   ${kind}, ${sizeName(existing)} existing: API writes ${formatRate(api.count / api.seconds)} (direct ${formatRate(floor.singlePerSecond)}), ${delayOf(api)}; CPU a write: server ${api.serverCpuUs.toFixed(0)} µs, client ${api.clientCpuUs.toFixed(0)} µs`);
          if (s === 0) {
            // The bulk import: 13.0.0.0 onwards, a trunk's 1,000 entries a request, on fresh trunks.
            const requests = bulkEntries / ENTRIES_PER_TRUNK;
            const fresh: string[] = [];
            for (let t = 0; t < requests; t++) fresh.push(await newTrunk());
            const bulk = await server.load(requests, 2, token, (r) => ({
              path: `/v2/accounts/${account}/trunks/${fresh[r]}/ip_acls`,
              body: { data: Array.from({ length: ENTRIES_PER_TRUNK }, (_, i) => ({ ip_address: dotted(0x0d000000 + r * ENTRIES_PER_TRUNK + i), description: 'bulk' })) },
            }), ENTRIES_PER_TRUNK);
            bulkRows.push({ store: kind, bulk, bulkRowsPerSecond: floor.bulkRowsPerSecond });
            console.log(`   ${kind}, bulk of ${sizeName(bulkEntries)}: ${bulk.seconds.toFixed(1)} s, ${delayOf(bulk)}; CPU an entry: server ${bulk.serverCpuUs.toFixed(0)} µs`);
          }
        } finally {
          await server.stop();
        }
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await stopChild(idle);
  }

  console.log(`\nSingle entries: PUT …/trunks/{T}/ip_acls, ${writes.toLocaleString('en')} requests, ${IN_FLIGHT} in flight, real HTTP (token, hierarchy, info logging),`);
  console.log(`on top of the existing entries (seeded by direct insert), after ${warmUp.toLocaleString('en')} unrecorded ones (deleted) warmed the server up.`);
  console.log('direct = one entry a transaction straight into the store, 16 in flight.');
  console.log('The load generator runs in a process of its own at the lowest priority (SCHED_IDLE, else nice 19): clients are on other machines in production.');
  console.log('loop delay = the event-loop delay the server saw during the load (perf_hooks.monitorEventLoopDelay), largest and p99; idle = the');
  console.log("same in a process beside it that does nothing else (bench/idle-loop.ts): the delay this machine imposes at that moment; GC = the server's");
  console.log('longest garbage collection pause; longest turn (Linux) = the longest gap between two calls of a 1 ms timer, split into the');
  console.log("main thread's time on a core and its time waiting for one (/proc schedstat, which the kernel updates at its ticks: coarse).\n");
  const delayColumns = (load: Load) => [`${load.maxDelayMs.toFixed(1)} ms`, `${load.p99DelayMs.toFixed(1)} ms`, `${load.idle.maxMs.toFixed(1)} ms`, `${load.gcMaxMs.toFixed(1)} ms`];
  const turnOf = (load: Load) => (load.turns === null ? '' : `${load.turns.longest.ms.toFixed(1)} ms (ran ${load.turns.longest.runningMs.toFixed(1)})`);
  console.log(
    table(
      ['store', 'existing', 'API writes', 'direct', 'API÷direct', 'loop delay max', 'p99', 'idle max', 'GC', 'longest turn', 'server CPU a write'],
      sizeRows.map((r) => [r.store, sizeName(r.existing), formatRate(r.api.count / r.api.seconds), formatRate(r.singlePerSecond), `${(r.api.count / r.api.seconds / r.singlePerSecond).toFixed(2)}×`, ...delayColumns(r.api), turnOf(r.api), `${r.api.serverCpuUs.toFixed(0)} µs`]),
    ),
  );
  console.log(`\nBulk: ${bulkEntries.toLocaleString('en')} entries by PUT of an array of ${ENTRIES_PER_TRUNK} (one trunk each), 2 in flight; direct = multi-row inserts of 10,000 a transaction.\n`);
  console.log(
    table(
      ['store', 'entries', 'time', 'entries/s', 'direct entries/s', 'loop delay max', 'p99', 'idle max', 'GC', 'longest turn'],
      bulkRows.map((r) => [r.store, sizeName(r.bulk.count), `${r.bulk.seconds.toFixed(1)} s`, formatRate(r.bulk.count / r.bulk.seconds), formatRate(r.bulkRowsPerSecond), ...delayColumns(r.bulk), turnOf(r.bulk)]),
    ),
  );

  const targets: Target[] = [];
  const rate = (r: SizeRow) => r.api.count / r.api.seconds;
  const sqlite = sizeRows.filter((r) => r.store === 'sqlite');
  for (const r of sqlite) targets.push({ what: `Writes: SQLite, ${sizeName(r.existing)} existing: ≥ 1,000 API writes/s`, met: rate(r) >= 1000, detail: formatRate(rate(r)) });
  const [smallest, largest] = [sqlite[0]!, sqlite[sqlite.length - 1]!];
  const slowdown = rate(smallest) / rate(largest);
  targets.push({ what: `Writes: SQLite at ${sizeName(largest.existing)} no slower than 1.5× the rate at ${sizeName(smallest.existing)}`, met: slowdown <= 1.5, detail: `${slowdown.toFixed(2)}× slower` });
  for (const r of bulkRows) {
    const limit = r.store === 'sqlite' ? 10 : 20;
    targets.push({ what: `Writes: ${r.store} bulk import of ${sizeName(r.bulk.count)} in ≤ ${limit} s`, met: r.bulk.seconds <= limit, detail: `${r.bulk.seconds.toFixed(1)} s` });
  }
  const loads = [...sizeRows.map((r) => r.api), ...bulkRows.map((r) => r.bulk)];
  const worst = Math.max(...loads.map((l) => l.maxDelayMs));
  const idleWorst = Math.max(...loads.map((l) => l.idle.maxMs));
  targets.push({ what: 'Writes: largest event-loop delay during any load ≤ 5 ms', met: worst <= 5, detail: `${worst.toFixed(1)} ms (idle process: ${idleWorst.toFixed(1)} ms)` });
  return targets;
}
