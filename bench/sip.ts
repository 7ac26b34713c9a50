// `npm run bench:sip [-- --quick] [--rules index|map] [--workers N] [--socket batch|dgram] [--transports udp,tcp] [--calls answered,rejected] [--entries 10000,100000] [--cpu-cap F] [--no-kamailio] [--kamailio-children N]`
// The SIP edge under sipp at increasing call rates, answered (allowed, to a sipp UAS) and
// rejected (603) calls, over UDP and over TCP (every sipp on one connection, `-t t1`), with 10 k
// and 100 k entries in the rule set, and Kamailio 5.6's permissions module through the same
// ladder in the same run (api.md §8). The edge runs as production runs it, in N worker processes
// on one address (0: in this process), and Kamailio with as many UDP (TCP) workers: --workers,
// default 1 for both (--kamailio-children sets Kamailio's alone). Production's default is the
// machine's cores; on a 2-core machine that also runs sipp's UAC and UAS, one worker each is the
// even match (a second edge worker costs a quarter more CPU a call: smaller batches). Each contender is
// charged with its own processes' CPU. Then the platform's outbound calls through a dedicated IP
// (§7.1), answered by the UAS as the carrier, with the edge in this process. `--cpu-cap F` gives
// each contender F of a core (cpu-cap.ts) on a ladder scaled by F, so the rates compare what the
// same CPU buys where sipp would saturate first; the egress row is then left out. Exits 0 once it ran.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import type { Listener } from '../src/edge/endpoint.ts';
import { DEFAULT_REJECT } from '../src/edge/reply.ts';
import { startEdgeCluster } from '../src/edge/cluster.ts';
import { startEdge } from '../src/edge/server.ts';
import type { EgressSource } from '../src/services/egress-pool.ts';
import { sippMissing } from '../test/edge/sipp.ts';
import { median } from './core/measure.ts';
import { CpuCap } from './sip/cpu-cap.ts';
import { cpuSeconds, processTree } from './sip/cpu.ts';
import type { BenchWorkerSettings } from './sip/edge-worker.ts';
import { kamailioMissing, startKamailio } from './sip/kamailio.ts';
import { climb, PAST_THE_TOP, turnAbout, Turns, type CallKind, type Climb, type LadderSetup, type StepResult } from './sip/ladder.ts';
import { measurePipeline } from './sip/pipeline.ts';
import { measureUdpCost } from './sip/udp-cost.ts';
import { benchAddresses, BENCH_REALM, RULE_SETS } from './sip/rules.ts';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    rules: { type: 'string', default: 'index' },
    'no-kamailio': { type: 'boolean', default: false },
    'kamailio-children': { type: 'string' },
    workers: { type: 'string', default: '1' },
    socket: { type: 'string', default: 'batch' },
    transports: { type: 'string', default: 'udp,tcp' },
    calls: { type: 'string', default: 'answered,rejected' },
    entries: { type: 'string', default: '10000,100000' },
    'cpu-cap': { type: 'string' },
  },
});
if (args.socket !== 'batch' && args.socket !== 'dgram') throw new Error('--socket must be batch or dgram');
const SOCKET = args.socket;

const SIZES = args.entries.split(',').map(Number);
if (SIZES.some((n) => !Number.isInteger(n) || n < 1)) throw new Error('--entries must list whole numbers');
type Transport = 'udp' | 'tcp';
const TRANSPORTS = args.transports.split(',').filter((t): t is Transport => t === 'udp' || t === 'tcp');
const KINDS = args.calls.split(',').filter((k): k is 'answered' | 'rejected' => k === 'answered' || k === 'rejected');
const CAP = openCap(args['cpu-cap']);
// A rejected call is a third of an answered one's packets: its ladder goes on up to what sipp
// and the two cores sustain (40,000/s failed for both contenders on a slower day of this VM; on a
// faster one both passed 48,000 and sipp's own socket overflowed at 64,000). On such a day both
// tops are floors: with equal receive buffers both contenders passed 16,000 answered calls/s.
// Under a cap, rungs a share of a core apart: an eighth to two cores' worth of calls at about
// 80 µs an answered call and 20 µs a rejected one, in steps of 10-15 % where the contenders end.
const RATES: Record<CallKind, readonly number[]> = args.quick
  ? { answered: [1000, 2000, 4000, 8000], rejected: [1000, 2000, 4000, 8000], egress: [1000, 2000, 4000, 8000] }
  : CAP
    ? {
        answered: capped(CAP.fraction, [1500, 3000, 4500, 6000, 7500, 9000, 10500, 12000, 13500, 15000, 17000, 19000, 22000, 25000]),
        rejected: capped(CAP.fraction, [5000, 10000, 15000, 20000, 25000, 30000, 35000, 40000, 45000, 50000, 55000, 60000, 70000, 80000, 90000, 100000, 115000, 130000, 150000]),
        egress: [],
      }
    : {
        answered: [500, 1000, 2000, 3000, 4000, 6000, 8000, 10000, 12000, 16000],
        rejected: [500, 1000, 2000, 4000, 8000, 12000, 16000, 24000, 32000],
        egress: [500, 1000, 2000, 3000, 4000, 6000, 8000, 10000, 12000],
      };

function openCap(fraction: string | undefined): CpuCap | null {
  if (fraction === undefined) return null;
  const cap = CpuCap.open(Number(fraction));
  if (typeof cap === 'string') throw new Error(cap);
  return cap;
}

function capped(fraction: number, perCore: readonly number[]): number[] {
  return perCore.map((rate) => Math.max(1, Math.round(rate * fraction)));
}
const SECONDS = args.quick ? 1 : 10;
/** Rungs each contender runs, turn about, at the highest rate both sustain (ladder.ts turnAbout). */
const TURNS = args.quick ? 1 : 3;
// 127.0.0.0/8 is all loopback: each party gets its own address, so ports never clash.
const SOURCES: Record<CallKind, string> = { answered: '127.77.0.1', rejected: '127.77.0.2', egress: '127.77.0.3' };
const UAS = { host: '127.77.0.10', port: 5060 };
const EDGE = { host: '127.77.0.20', port: 0 };
const KAMAILIO = { host: '127.77.0.30', port: 5060 };
/** The egress row: the edge's dedicated IP, and the account it is assigned to. */
const DEDICATED = { host: '127.77.0.40', port: 5062 };
const EGRESS_ACCOUNT = 'acct-egress';
/** The UDP cost microbenchmark's echo and peer. */
const UDP_COST_HOST = '127.77.0.50';

interface Row {
  /** null: the egress row, which asks no rule set. */
  entries: number | null;
  transport: Transport;
  kind: CallKind;
  ours: Climb;
  kamailio: Climb | undefined;
  /** The rungs both ran turn about at the highest rate both sustain, for CPU and p99. */
  turns?: { rate: number; ours: StepResult[]; kamailio: StepResult[] };
}

async function main(): Promise<void> {
  const source = RULE_SETS[args.rules];
  if (source === undefined) throw new Error(`--rules must be one of ${Object.keys(RULE_SETS).join(', ')}`);
  const noSipp = sippMissing();
  if (noSipp !== null) {
    console.log(`SIP bench not run: ${noSipp}`);
    return;
  }
  const noKamailio = args['no-kamailio'] ? 'skipped (--no-kamailio)' : kamailioMissing();
  const workers = Number(args.workers);
  const children = Number(args['kamailio-children'] ?? Math.max(1, workers));
  if (TRANSPORTS.length === 0) throw new Error('--transports must list udp and/or tcp');
  if (KINDS.length === 0) throw new Error('--calls must list answered and/or rejected');
  if (CAP && workers === 0) throw new Error('--cpu-cap caps worker processes: it needs --workers 1 or more');
  console.log(
    `SIP edge bench${args.quick ? ' (quick)' : ''}: rule set "${args.rules}", edge ${workers === 0 ? 'in this process' : `in ${workers} worker process(es)`} on ${SOCKET} UDP sockets, ` +
      `over ${TRANSPORTS.join(' and ')}, ${SECONDS} s per step, rates ${RATES.answered.join(', ')} answered and ${RATES.rejected.join(', ')} rejected calls/s; ` +
      `Kamailio ${noKamailio ?? `5.6 with ${children} UDP worker(s) (over TCP: ${children} TCP worker(s))`}` +
      (CAP ? `; each contender's processes capped at ${CAP.fraction} of a core` : ''),
  );

  await measureUdpCost({ host: UDP_COST_HOST, count: args.quick ? 20_000 : 100_000, runs: args.quick ? 3 : 5 });

  const dir = mkdtempSync(join(tmpdir(), 'ipwarden-bench-sip-'));
  const rows: Row[] = [];
  try {
    for (const entries of SIZES) {
      const addresses = benchAddresses(entries - 1, [SOURCES.answered]);
      const built = performance.now();
      const rules = source(addresses);
      console.log(`\n${entries.toLocaleString('en')} entries (rule set built in ${(performance.now() - built).toFixed(0)} ms)`);
      measurePipeline(rules, { allowed: { host: SOURCES.answered, port: 5061 }, denied: { host: SOURCES.rejected, port: 5061 }, uas: UAS, realm: BENCH_REALM });
      const edge = await startOurEdge(dir, addresses, workers);
      const edgeGroup = CAP?.group(`ipwarden-${entries}`, edge.pids());
      try {
        for (const transport of TRANSPORTS) {
          const kamailio = noKamailio ? null : await startBaseline(dir, addresses, children, transport);
          const kamailioGroup = kamailio && CAP?.group(`kamailio-${entries}-${transport}`, processTree(kamailio.pid));
          try {
            for (const kind of KINDS) {
              const setup = (proxy: typeof UAS, cpu: () => number): LadderSetup => ({
                dir, transport, proxy, uas: UAS, sources: SOURCES, realm: BENCH_REALM, rates: RATES[kind], seconds: SECONDS, cpu,
              });
              const label = `${kind}/${transport}`;
              const oursSetup = setup(edge.address(transport), edge.cpu);
              const kamailioSetup = kamailio && setup(kamailio.address, () => cpuSeconds(processTree(kamailio.pid)));
              const turns = new Turns();
              const [ours, theirs] = await Promise.all([
                climb(oursSetup, kind, (step, rung) => report('ipwarden', label, step, rung), turns),
                kamailioSetup ? climb(kamailioSetup, kind, (step, rung) => report('kamailio', label, step, rung), turns) : undefined,
              ]);
              const row: Row = { entries, transport, kind, ours, kamailio: theirs };
              if (kamailioSetup && theirs?.best && ours.best) {
                const both = Math.min(ours.best.rate, theirs.best.rate);
                const [oursTurns, theirTurns] = await turnAbout([oursSetup, kamailioSetup], kind, both, TURNS, (who, step) => report(who === 0 ? 'ipwarden' : 'kamailio', label, step, 'turn about'));
                row.turns = { rate: both, ours: oursTurns, kamailio: theirTurns };
              }
              rows.push(row);
            }
          } finally {
            await kamailio?.stop();
            if (kamailioGroup) CAP?.release(kamailioGroup);
          }
        }
      } finally {
        await edge.close();
        if (edgeGroup) CAP?.release(edgeGroup);
      }
    }
    if (!CAP) {
      console.log('\nOutbound through a dedicated IP (edge in this process, no rule set asked, Kamailio not compared)');
      rows.push({ entries: null, transport: 'udp', kind: 'egress', ours: await climbEgress(dir), kamailio: undefined });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  printSummary(rows);
}

/** The edge on the bench's rule set: in worker processes as production runs it, or in this one. */
async function startOurEdge(dir: string, addresses: readonly string[], workers: number) {
  const listen = TRANSPORTS.map((transport) => ({ transport, ...EDGE }));
  const on = (listeners: Listener[]) => (transport: Transport) => listeners.find((l) => l.transport === transport)!;
  if (workers === 0) {
    const edge = await startEdge({ listen, upstream: UAS, reject: DEFAULT_REJECT, socket: SOCKET }, RULE_SETS[args.rules]!(addresses), {
      registry: new Registry(),
      logger: pino({ level: 'warn' }),
    });
    return { address: on(edge.listeners), cpu: () => process.cpuUsage().user / 1e6 + process.cpuUsage().system / 1e6, pids: () => [], close: edge.close };
  }
  const addressFile = join(dir, `addresses-${addresses.length}.txt`);
  writeFileSync(addressFile, addresses.join('\n'));
  const workerSettings: BenchWorkerSettings = { addressFile, rules: args.rules, listen, upstream: UAS, branchKey: randomBytes(32).toString('base64url'), workers, socket: SOCKET };
  const cluster = await startEdgeCluster({
    workers,
    entry: fileURLToPath(new URL('./sip/edge-worker.ts', import.meta.url)),
    workerSettings,
    logger: pino({ level: 'warn' }),
  });
  return { address: on(cluster.listeners), cpu: () => cpuSeconds(cluster.pids()), pids: () => cluster.pids(), close: cluster.close };
}

/** The platform (the edge's upstream host) calls the carrier through the edge's main socket; the calls leave from DEDICATED. */
async function climbEgress(dir: string): Promise<Climb> {
  const pool: EgressSource = {
    hosted: () => [DEDICATED.host],
    onHostedChange: null,
    assigneeOf: (ip) => (ip === DEDICATED.host ? EGRESS_ACCOUNT : null),
    heldFor: (account) => (account === EGRESS_ACCOUNT ? [DEDICATED.host] : []),
  };
  const platform = { host: SOURCES.egress, port: 5060 };
  const edge = await startEdge({ listen: [{ transport: 'udp', ...EDGE }], upstream: platform, reject: DEFAULT_REJECT, egress: { pool, port: DEDICATED.port }, socket: SOCKET }, RULE_SETS.index!([]), {
    registry: new Registry(),
    logger: pino({ level: 'warn' }),
  });
  try {
    for (let i = 0; !edge.egress().every((s) => s.bound); i++) {
      if (i > 100) throw new Error(`the dedicated IP did not bind: ${JSON.stringify(edge.egress())}`);
      await new Promise((r) => setTimeout(r, 10));
    }
    const cpu = () => process.cpuUsage().user / 1e6 + process.cpuUsage().system / 1e6;
    const setup: LadderSetup = { dir, transport: 'udp', proxy: edge.address, uas: UAS, sources: SOURCES, realm: BENCH_REALM, rates: RATES.egress, seconds: SECONDS, cpu, account: EGRESS_ACCOUNT };
    return await climb(setup, 'egress', (step, label) => report('ipwarden', 'egress', step, label));
  } finally {
    await edge.close();
  }
}

/** Kamailio, or null (said why) when it does not start: the bench still reports our edge. */
async function startBaseline(dir: string, addresses: readonly string[], children: number, transport: Transport) {
  try {
    return await startKamailio({ dir: mkdtempSync(join(dir, 'kamailio-')), listen: KAMAILIO, upstream: UAS, addresses, children, transport });
  } catch (error) {
    console.log(`  Kamailio left out: ${(error as Error).message}`);
    return null;
  }
}

function report(who: string, kind: string, step: StepResult, label?: string): void {
  const latency = step.p50Ms === undefined ? '' : `, INVITE→final p50 ${step.p50Ms} ms p99 ${step.p99Ms} ms`;
  console.log(
    `  ${who.padEnd(8)} ${kind.padEnd(12)} ${String(step.rate).padStart(5)}/s ${label ? `(${label}) ` : ''}${step.ok ? 'ok' : `FAILED (${step.why})`}` +
      `${latency}, ${step.cpuUsPerCall.toFixed(0)} µs CPU a call`,
  );
}

function printSummary(rows: Row[]): void {
  const rate = (climb: Climb | undefined, kind: CallKind) => (climb === undefined ? '-' : climb.best === null ? '<' + RATES[kind][0] : String(climb.best.rate));
  const recovery = (climb: Climb | undefined) => (climb?.recovery === undefined ? '-' : climb.recovery.ok ? 'ok' : 'FAILED');
  // Without Kamailio, our own best rung stands alone.
  const steps = (row: Row, who: 'ours' | 'kamailio'): StepResult[] => {
    if (row.turns !== undefined) return row.turns[who];
    const best = row[who]?.best;
    return best ? [best] : [];
  };
  const cpu = (of: StepResult[]) => (of.length === 0 ? '-' : median(of.map((s) => s.cpuUsPerCall)).toFixed(0));
  const p99 = (of: StepResult[]) => {
    const known = of.flatMap((s) => (s.p99Ms === undefined ? [] : [s.p99Ms]));
    return known.length === 0 ? '-' : String(median(known));
  };
  console.log('\nHighest rate with every call on time and a p99 within T1, 500 ms, passed twice (calls/s); the recovery rung runs it again 2 s after the rate');
  console.log(`that failed (or ${PAST_THE_TOP}× the top, for a contender that passed it) overloaded the contender once more, every call on time;`);
  console.log(`CPU µs a call and INVITE→final p99 ms at the highest rate both sustain: medians of ${TURNS} rung(s) each, run turn about (whole ms, as sipp traces them)`);
  console.log('entries   over  calls      ipwarden recovery  kamailio recovery  ours/kam  at rate  CPU µs ours/kam  p99 ms ours/kam');
  const behind: string[] = [];
  for (const row of rows) {
    let ratio = '-';
    const entries = row.entries?.toLocaleString('en') ?? '-';
    if (row.kamailio?.best) {
      const value = (row.ours.best?.rate ?? 0) / row.kamailio.best.rate;
      ratio = `${value.toFixed(2)}×`;
      if (value < 1) behind.push(`${entries} ${row.kind}/${row.transport} (${ratio})`);
    }
    const [ours, theirs] = [steps(row, 'ours'), steps(row, 'kamailio')];
    console.log(
      `${entries.padEnd(9)} ${row.transport.padEnd(5)} ${row.kind.padEnd(10)} ${rate(row.ours, row.kind).padStart(8)} ${recovery(row.ours).padEnd(8)}  ` +
        `${rate(row.kamailio, row.kind).padStart(8)} ${recovery(row.kamailio).padEnd(8)}  ${ratio.padStart(8)}  ${String(row.turns?.rate ?? '-').padStart(7)}  ` +
        `${`${cpu(ours)}/${cpu(theirs)}`.padStart(15)}  ${`${p99(ours)}/${p99(theirs)}`.padStart(15)}`,
    );
  }
  const topped = rows.filter((row) => [row.ours, row.kamailio].some((climb) => climb?.best?.rate === RATES[row.kind].at(-1)));
  for (const kind of new Set(topped.map((row) => row.kind))) console.log(`A contender reached the top of the ${kind} ladder (${RATES[kind].at(-1)}/s): that rate is a floor, not its limit.`);
  if (rows.some((row) => row.kamailio !== undefined)) {
    console.log(behind.length === 0 ? 'At or above Kamailio everywhere.' : `Below Kamailio: ${behind.join(', ')}.`);
  }
}

main().catch((error: unknown) => {
  // A broken bench is a failure; missing targets are not (api.md §8).
  console.error(error);
  process.exit(1);
});
