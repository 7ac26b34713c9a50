// `npm run bench:sip [-- --quick] [--rules index|map] [--no-kamailio] [--kamailio-children N]`
// The SIP edge under sipp at increasing call rates, answered (allowed, to a sipp UAS) and
// rejected (603) calls, with 10 k and 100 k entries in the rule set, and Kamailio 5.6's
// permissions module through the same ladder in the same run (api.md §8). Exits 0 once it ran.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { DEFAULT_REJECT } from '../src/edge/reply.ts';
import { startEdge } from '../src/edge/server.ts';
import { sippMissing } from '../test/edge/sipp.ts';
import { kamailioMissing, startKamailio } from './sip/kamailio.ts';
import { climb, type CallKind, type LadderSetup, type StepResult } from './sip/ladder.ts';
import { measurePipeline } from './sip/pipeline.ts';
import { benchAddresses, BENCH_REALM, RULE_SETS } from './sip/rules.ts';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    rules: { type: 'string', default: 'index' },
    'no-kamailio': { type: 'boolean', default: false },
    'kamailio-children': { type: 'string', default: '1' },
  },
});

const SIZES = [10_000, 100_000];
const KINDS: CallKind[] = ['answered', 'rejected'];
const RATES = args.quick ? [1000, 2000, 4000, 8000] : [500, 1000, 1500, 2000, 3000, 4000, 6000, 8000, 12000];
const SECONDS = args.quick ? 1 : 10;
// 127.0.0.0/8 is all loopback: each party gets its own address, so ports never clash.
const SOURCES: Record<CallKind, string> = { answered: '127.77.0.1', rejected: '127.77.0.2' };
const UAS = { host: '127.77.0.10', port: 5060 };
const EDGE = { host: '127.77.0.20', port: 0 };
const KAMAILIO = { host: '127.77.0.30', port: 5060 };

interface Row {
  entries: number;
  kind: CallKind;
  ours: StepResult | null;
  kamailio: StepResult | null | undefined;
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
  const children = Number(args['kamailio-children']);
  console.log(
    `SIP edge bench${args.quick ? ' (quick)' : ''}: rule set "${args.rules}", ${SECONDS} s per step, ` +
      `rates ${RATES.join(', ')} calls/s; Kamailio ${noKamailio ?? `5.6 with ${children} UDP worker(s)`}`,
  );

  const dir = mkdtempSync(join(tmpdir(), 'ipwarden-bench-sip-'));
  const rows: Row[] = [];
  try {
    for (const entries of SIZES) {
      const addresses = benchAddresses(entries - 1, [SOURCES.answered]);
      const built = performance.now();
      const rules = source(addresses);
      console.log(`\n${entries.toLocaleString('en')} entries (rule set built in ${(performance.now() - built).toFixed(0)} ms)`);
      measurePipeline(rules, { allowed: { host: SOURCES.answered, port: 5061 }, denied: { host: SOURCES.rejected, port: 5061 }, uas: UAS, realm: BENCH_REALM });
      const edge = await startEdge({ listen: EDGE, upstream: UAS, reject: DEFAULT_REJECT }, rules, {
        registry: new Registry(),
        logger: pino({ level: 'warn' }),
      });
      const kamailio = noKamailio ? null : await startBaseline(dir, addresses, children);
      try {
        for (const kind of KINDS) {
          const setup = (proxy: typeof UAS): LadderSetup => ({
            dir, proxy, uas: UAS, sources: SOURCES, realm: BENCH_REALM, rates: RATES, seconds: SECONDS,
          });
          const ours = await climb(setup(edge.address), kind, (step) => report('ipwarden', kind, step));
          const theirs = kamailio ? await climb(setup(kamailio.address), kind, (step) => report('kamailio', kind, step)) : undefined;
          rows.push({ entries, kind, ours, kamailio: theirs });
        }
      } finally {
        await edge.close();
        await kamailio?.stop();
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  printSummary(rows);
}

/** Kamailio, or null (said why) when it does not start: the bench still reports our edge. */
async function startBaseline(dir: string, addresses: readonly string[], children: number) {
  try {
    return await startKamailio({ dir: mkdtempSync(join(dir, 'kamailio-')), listen: KAMAILIO, upstream: UAS, addresses, children });
  } catch (error) {
    console.log(`  Kamailio left out: ${(error as Error).message}`);
    return null;
  }
}

function report(who: string, kind: CallKind, step: StepResult): void {
  const latency = step.p50Ms === undefined ? '' : `, INVITE→final p50 ${step.p50Ms} ms p99 ${step.p99Ms} ms`;
  console.log(`  ${who.padEnd(8)} ${kind.padEnd(8)} ${String(step.rate).padStart(5)}/s ${step.ok ? 'ok' : `FAILED (${step.why})`}${latency}`);
}

function printSummary(rows: Row[]): void {
  const rate = (step: StepResult | null | undefined) => (step === undefined ? '-' : step === null ? '<' + RATES[0] : String(step.rate));
  const ms = (step: StepResult | null | undefined) => (step?.p50Ms === undefined ? '-' : `${step.p50Ms}/${step.p99Ms}`);
  console.log('\nHighest rate with every call on time (calls/s), INVITE→final p50/p99 ms at that rate');
  console.log(`("<${RATES[0]}": failed the first rung, no ratio; latencies are whole ms as sipp traces them)`);
  console.log('entries   calls      ipwarden  p50/p99   kamailio  p50/p99   ours/kamailio');
  const behind: string[] = [];
  for (const row of rows) {
    let ratio = '-';
    if (row.kamailio) {
      const value = (row.ours?.rate ?? 0) / row.kamailio.rate;
      ratio = `${value.toFixed(2)}×`;
      if (value < 1) behind.push(`${row.entries.toLocaleString('en')} ${row.kind} (${ratio})`);
    }
    console.log(
      `${row.entries.toLocaleString('en').padEnd(9)} ${row.kind.padEnd(10)} ${rate(row.ours).padStart(8)}  ${ms(row.ours).padEnd(8)}  ` +
        `${rate(row.kamailio).padStart(8)}  ${ms(row.kamailio).padEnd(8)}  ${ratio}`,
    );
  }
  const topped = rows.some((row) => row.ours?.rate === RATES.at(-1) || row.kamailio?.rate === RATES.at(-1));
  if (topped) console.log(`A contender reached the top of the ladder (${RATES.at(-1)}/s): that rate is a floor, not its limit.`);
  if (rows.some((row) => row.kamailio !== undefined)) {
    console.log(behind.length === 0 ? 'At or above Kamailio everywhere.' : `Below Kamailio: ${behind.join(', ')}.`);
  }
}

main().catch((error: unknown) => {
  // A broken bench is a failure; missing targets are not (api.md §8).
  console.error(error);
  process.exit(1);
});
