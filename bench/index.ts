// `npm run bench [-- --quick]` (issue 6, api.md §8): ipwarden's decision core against Node's
// net.BlockList, a naive linear scan and the floor of one Map.get per query, in one process,
// from the same address strings over the same rule sets. Medians of interleaved runs; ratios.
// Always exits 0 once it has run: the targets are reported, not enforced.
//
// The run is a list of sections (below); a new part (the HTTP comparison, say) is one more
// entry in `sections`.

import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { BaselineAccount, BaselineList, NaiveScan as NaiveScanType } from './core/baselines.ts';
import { NaiveScan, blockListAllows, blockListCheck, blockListOf, naiveAllows, naiveLookup } from './core/baselines.ts';
import type { Contender, Rate, Target } from './core/measure.ts';
import { formatRate, formatRatio, measure, medianMs, table } from './core/measure.ts';
import type { Query, Rule, Tenancy } from './core/rules.ts';
import { random, randomQueries, randomRules, randomSources, randomTenancy, trunkEntriesOf } from './core/rules.ts';
import { DecisionIndex } from '../src/core/index.ts';
import type { IndexAccount } from '../src/core/index.ts';
import { parseIpInto } from '../src/core/ip.ts';
import { PrefixTable } from '../src/core/prefix-table.ts';
import { parseCidr } from '../src/core/ip.ts';
import type net from 'node:net';
import { runHttpBench } from './http.ts';
import { runLoggingBench } from './logging.ts';
import { runWritesBench } from './writes.ts';
import { memoryLatencies } from './core/latency.ts';

const quick = process.argv.includes('--quick');

const settings = quick
  ? { sizes: [10_000, 100_000], queries: 40_000, runs: 5, slowBudget: 4e6, memoryCidrs: 1_000_000 }
  : { sizes: [1_000, 10_000, 100_000, 1_000_000], queries: 300_000, runs: 9, slowBudget: 6e7, memoryCidrs: 1_000_000 };

/** Queries given to an O(n)-per-query baseline: about `slowBudget` rule comparisons per run. */
function slowQueries(size: number): number {
  return Math.max(50, Math.min(settings.queries, Math.floor(settings.slowBudget / size)));
}
const slowRuns = (size: number) => (size >= 100_000 ? 3 : settings.runs);
/** net.BlockList at 1 M rules takes tens of milliseconds a query and seconds to fill. */
const blockListLimit = quick ? 100_000 : 1_000_000;

const targets: Target[] = [];
const sizeName = (n: number) => (n >= 1e6 ? `${n / 1e6} M` : `${n / 1e3} k`);

function check(what: string, met: boolean, detail: string): void {
  targets.push({ what, met, detail });
}

function ratioCell(a: number | undefined, b: number | undefined): string {
  return a === undefined || b === undefined ? '—' : formatRatio(a / b);
}

function warnIfDisagree(what: string, ours: readonly number[], theirs: readonly number[]): void {
  const bad = ours.findIndex((x, i) => x !== theirs[i]);
  if (bad >= 0) console.log(`!! ${what}: answers differ at query ${bad} (${ours[bad]} vs ${theirs[bad]})`);
}

// ---- (a) which entry of the whole rule set holds this address --------------------------------

interface Row {
  size: number;
  family: 4 | 6;
  ours: Rate;
  preParsed: Rate;
  /** Parsing the source texts alone: no contender that parses can beat it. */
  parse: Rate;
  blockList?: Rate;
  naive?: Rate;
  floor: Rate;
}

function printRows(rows: readonly Row[], oursName: string): void {
  console.log(
    table(
      ['CIDRs', 'family', oursName, 'pre-parsed', 'parse alone', 'BlockList', 'naive', 'Map.get floor', 'floor÷ours', 'floor÷parse', 'ours÷BlockList', 'ours÷naive'],
      rows.map((r) => [
        sizeName(r.size),
        `IPv${r.family}`,
        formatRate(r.ours.perSecond),
        formatRate(r.preParsed.perSecond),
        formatRate(r.parse.perSecond),
        r.blockList ? formatRate(r.blockList.perSecond) : 'skipped',
        r.naive ? formatRate(r.naive.perSecond) : 'skipped',
        formatRate(r.floor.perSecond),
        ratioCell(r.floor.perSecond, r.ours.perSecond),
        ratioCell(r.floor.perSecond, r.parse.perSecond),
        ratioCell(r.ours.perSecond, r.blockList?.perSecond),
        ratioCell(r.ours.perSecond, r.naive?.perSecond),
      ]),
    ),
  );
}

const parseScratch = new Uint32Array(4);
const PARSE_LEGEND = 'parse alone = parseIpInto on the same texts, nothing else (a reference: no contender that parses can beat it).\n';

/** The reference row "parse alone": parseIpInto over the same source texts, nothing else. */
function parseAlone(ips: readonly string[]): Contender {
  return {
    name: 'parse',
    queries: ips.length,
    batch: () => {
      let family = 0;
      for (let i = 0; i < ips.length; i++) family += parseIpInto(ips[i]!, parseScratch);
      return family;
    },
  };
}

function wholeSetRow(size: number, family: 4 | 6, rules: readonly Rule[], index: DecisionIndex, prefixTable: PrefixTable, blockList: net.BlockList | undefined, scan: NaiveScanType, floorMap: Map<string, number>): Row {
  const rng = random(size * 10 + family);
  const sources = randomSources(rng, rules, family, settings.queries);
  const sample = sources.slice(0, slowQueries(size));
  const parsed = sources.map((s) => {
    const w = new Uint32Array(4);
    parseIpInto(s, w);
    return w;
  });
  const inside = sources.filter((s) => index.trunkEntryFor(s) !== null).length / sources.length;

  const oursAnswers = sample.map((s) => {
    const e = index.trunkEntryFor(s);
    return e === null ? -1 : Number(e.id.slice(1));
  });
  warnIfDisagree(`naive scan, ${size} CIDRs`, oursAnswers, sample.map((s) => naiveLookup(scan, s)));
  if (blockList) warnIfDisagree(`BlockList, ${size} CIDRs`, oursAnswers.map((x) => (x >= 0 ? 1 : 0)), sample.map((s) => (blockListCheck(blockList, s) ? 1 : 0)));

  const contenders: Contender[] = [
    {
      name: 'ours',
      queries: sources.length,
      batch: () => {
        let hits = 0;
        for (let i = 0; i < sources.length; i++) if (index.trunkEntryFor(sources[i]!) !== null) hits++;
        return hits;
      },
    },
    {
      name: 'pre-parsed',
      queries: parsed.length,
      batch: () => {
        let hits = 0;
        for (let i = 0; i < parsed.length; i++) if ((family === 4 ? prefixTable.lookup4(parsed[i]![0]!) : prefixTable.lookup6(parsed[i]!)) >= 0) hits++;
        return hits;
      },
    },
    parseAlone(sources),
    {
      name: 'floor',
      queries: sources.length,
      batch: () => {
        let hits = 0;
        for (let i = 0; i < sources.length; i++) if (floorMap.get(sources[i]!) !== undefined) hits++;
        return hits;
      },
    },
    {
      name: 'naive',
      queries: sample.length,
      runs: slowRuns(size),
      batch: () => {
        let hits = 0;
        for (let i = 0; i < sample.length; i++) if (naiveLookup(scan, sample[i]!) >= 0) hits++;
        return hits;
      },
    },
  ];
  if (blockList) {
    contenders.push({
      name: 'blockList',
      queries: sample.length,
      runs: slowRuns(size),
      batch: () => {
        let hits = 0;
        for (let i = 0; i < sample.length; i++) if (blockListCheck(blockList, sample[i]!)) hits++;
        return hits;
      },
    });
  }
  const rates = new Map(measure(contenders, settings.runs).map((r) => [r.name, r]));
  if (Math.abs(inside - 0.5) > 0.1) console.log(`   (IPv${family}, ${sizeName(size)}: ${(inside * 100).toFixed(0)}% of sources inside some block)`);
  return { size, family, ours: rates.get('ours')!, preParsed: rates.get('pre-parsed')!, parse: rates.get('parse')!, blockList: rates.get('blockList'), naive: rates.get('naive'), floor: rates.get('floor')! };
}

function wholeSetLookups(): void {
  console.log('Every contender gets the same source address strings (parsing included) over the same rules,');
  console.log('flat strings as a socket or an HTTP parser hands them over.');
  console.log('ours = DecisionIndex.trunkEntryFor(ip): the most specific entry holding the address;');
  console.log('pre-parsed = PrefixTable.lookup4/6 on already-parsed addresses (labelled, not a contender);');
  console.log('BlockList = net.BlockList.check(ip, family) (answers only yes/no); naive = parse, then try every rule;');
  console.log('floor = one Map.get(ip) on a Map holding every rule\'s text;');
  console.log(PARSE_LEGEND);
  const rows: Row[] = [];
  for (const size of settings.sizes) {
    const rules = randomRules(random(size), size);
    const index = DecisionIndex.build({ accounts: [], trunkEntries: trunkEntriesOf(rules) });
    const prefixTable = PrefixTable.build(rules.map((r, value) => {
      const parsed = parseCidr(r.text);
      if (!parsed.ok) throw new Error(r.text);
      return { cidr: parsed.cidr, value };
    }));
    const blockList = size <= blockListLimit ? blockListOf(rules) : undefined;
    if (!blockList) console.log(`   net.BlockList skipped at ${sizeName(size)}: O(n) per query, filling it alone takes seconds (--quick)`);
    const scan = new NaiveScan(rules);
    const floorMap = new Map(rules.map((r, i) => [r.text.split('/')[0]!, i]));
    for (const family of [4, 6] as const) rows.push(wholeSetRow(size, family, rules, index, prefixTable, blockList, scan, floorMap));
  }
  printRows(rows, 'ours');

  for (const r of rows.filter((x) => x.size === 100_000)) {
    const goal = r.family === 4 ? 10e6 : 3e6;
    check(`(a) 100 k CIDRs: ≥ ${goal / 1e6} M IPv${r.family} lookups/s`, r.ours.perSecond >= goal, formatRate(r.ours.perSecond));
    check(`(a) 100 k CIDRs, IPv${r.family}: within 5× of the Map.get floor`, r.floor.perSecond / r.ours.perSecond <= 5, `floor÷ours ${formatRatio(r.floor.perSecond / r.ours.perSecond)}`);
  }
  for (const r of rows.filter((x) => x.size === 10_000 && x.blockList)) {
    const ratio = r.ours.perSecond / r.blockList!.perSecond;
    check(`(a) 10 k CIDRs, IPv${r.family}: ≥ 100× net.BlockList`, ratio >= 100, `${formatRatio(ratio)}`);
  }
}

// ---- (b) per-account decisions ----------------------------------------------------------------

function baselineAccounts<T>(tenancy: Tenancy, make: (rules: Rule[]) => T): Map<string, BaselineAccount<T>> {
  const accounts = new Map<string, BaselineAccount<T>>();
  const byKey = new Map(tenancy.lists.map((l) => [`${l.accountId}/${l.deviceId ?? ''}`, l]));
  const listOf = (accountId: string, deviceId: string | undefined): BaselineList<T> | undefined => {
    const l = byKey.get(`${accountId}/${deviceId ?? ''}`);
    return l ? { order: l.list.order, rules: make(l.rules) } : undefined;
  };
  for (const a of tenancy.snapshot.accounts) {
    accounts.set(a.id, { list: listOf(a.id, undefined), devices: new Map(a.devices.map((d) => [d.id, listOf(a.id, d.id)])) });
  }
  return accounts;
}

function decisionRow(size: number, family: 4 | 6, tenancy: Tenancy, index: DecisionIndex, naive: Map<string, BaselineAccount<NaiveScanType>>, blockLists: Map<string, BaselineAccount<net.BlockList>>): Row {
  const queries: Query[] = randomQueries(random(size * 7 + family), tenancy, family, settings.queries);
  const sample = queries.slice(0, Math.min(queries.length, 10_000));
  const ours = sample.map((q) => (index.decide(q.accountId, q.deviceId, q.ip, q.userAgent)?.decision === 'allow' ? 1 : 0));
  warnIfDisagree(`naive decisions, ${size} CIDRs`, ours, sample.map((q) => (naiveAllows(naive, q.accountId, q.deviceId, q.ip) ? 1 : 0)));
  warnIfDisagree(`BlockList decisions, ${size} CIDRs`, ours, sample.map((q) => (blockListAllows(blockLists, q.accountId, q.deviceId, q.ip) ? 1 : 0)));
  const floorMap = new Map<string, unknown>(tenancy.snapshot.accounts.map((a) => [a.id, a]));
  const accountIds = queries.map((q) => q.accountId);
  const deviceIds = queries.map((q) => q.deviceId);
  const ips = queries.map((q) => q.ip);
  const ua = queries[0]!.userAgent;
  // The per-list baselines are 5–50× slower: they get the first queries only.
  const slow = Math.min(queries.length, quick ? 4_000 : 30_000);
  const contenders: Contender[] = [
    {
      name: 'ours',
      queries: queries.length,
      batch: () => {
        let allowed = 0;
        for (let i = 0; i < ips.length; i++) if (index.decide(accountIds[i]!, deviceIds[i], ips[i]!, ua)?.decision === 'allow') allowed++;
        return allowed;
      },
    },
    parseAlone(ips),
    {
      name: 'floor',
      queries: queries.length,
      batch: () => {
        let found = 0;
        for (let i = 0; i < accountIds.length; i++) if (floorMap.get(accountIds[i]!) !== undefined) found++;
        return found;
      },
    },
    {
      name: 'naive',
      queries: slow,
      batch: () => {
        let allowed = 0;
        for (let i = 0; i < slow; i++) if (naiveAllows(naive, accountIds[i]!, deviceIds[i], ips[i]!)) allowed++;
        return allowed;
      },
    },
    {
      name: 'blockList',
      queries: slow,
      batch: () => {
        let allowed = 0;
        for (let i = 0; i < slow; i++) if (blockListAllows(blockLists, accountIds[i]!, deviceIds[i], ips[i]!)) allowed++;
        return allowed;
      },
    },
  ];
  const rates = new Map(measure(contenders, settings.runs).map((r) => [r.name, r]));
  return { size, family, ours: rates.get('ours')!, preParsed: rates.get('ours')!, parse: rates.get('parse')!, blockList: rates.get('blockList'), naive: rates.get('naive'), floor: rates.get('floor')! };
}

function accountDecisions(): void {
  console.log('DecisionIndex.decide(accountId, deviceId, ip, userAgent), the check endpoint\'s answer with its reasons, with the CIDRs spread over accounts and');
  console.log('devices (lists of 1–40 entries, 1% of accounts with 500–5,000); half the queries name a device list.');
  console.log('BlockList / naive = one net.BlockList / one linear scan per list, same order semantics;');
  console.log('floor = one Map.get(accountId) per query;');
  console.log(PARSE_LEGEND);
  const rows: Row[] = [];
  for (const size of settings.sizes) {
    const tenancy = randomTenancy(random(size + 1), size);
    const index = DecisionIndex.build(tenancy.snapshot);
    const naive = baselineAccounts(tenancy, (rules) => new NaiveScan(rules));
    const blockLists = baselineAccounts(tenancy, (rules) => blockListOf(rules));
    for (const family of [4, 6] as const) rows.push(decisionRow(size, family, tenancy, index, naive, blockLists));
  }
  console.log(
    table(
      ['CIDRs', 'family', 'ours', 'parse alone', 'BlockList', 'naive', 'Map.get floor', 'floor÷ours', 'floor÷parse', 'ours÷BlockList', 'ours÷naive'],
      rows.map((r) => [
        sizeName(r.size),
        `IPv${r.family}`,
        formatRate(r.ours.perSecond),
        formatRate(r.parse.perSecond),
        formatRate(r.blockList!.perSecond),
        formatRate(r.naive!.perSecond),
        formatRate(r.floor.perSecond),
        ratioCell(r.floor.perSecond, r.ours.perSecond),
        ratioCell(r.floor.perSecond, r.parse.perSecond),
        ratioCell(r.ours.perSecond, r.blockList?.perSecond),
        ratioCell(r.ours.perSecond, r.naive?.perSecond),
      ]),
    ),
  );
  for (const r of rows.filter((x) => x.size === 100_000)) {
    const goal = r.family === 4 ? 10e6 : 3e6;
    check(`(b) 100 k CIDRs: ≥ ${goal / 1e6} M IPv${r.family} decisions/s`, r.ours.perSecond >= goal, formatRate(r.ours.perSecond));
    check(`(b) 100 k CIDRs, IPv${r.family}: within 5× of the Map.get floor`, r.floor.perSecond / r.ours.perSecond <= 5, `floor÷ours ${formatRatio(r.floor.perSecond / r.ours.perSecond)}`);
  }
}

// ---- memory and build time -------------------------------------------------------------------

function memoryAndBuild(): void {
  const script = fileURLToPath(new URL('./core/memory.ts', import.meta.url));
  const child = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', script, '--cidrs', String(settings.memoryCidrs)], { encoding: 'utf8' });
  const line = child.stdout.trim().split('\n').pop() ?? '';
  if (child.status !== 0 || !line.startsWith('{')) {
    console.log(`memory run failed (exit ${child.status}): ${child.stderr.slice(0, 500)}`);
    check('1 M CIDRs: ≤ 300 MB, built in ≤ 2 s', false, 'the memory run failed');
    return;
  }
  const m = JSON.parse(line) as {
    cidrs: number;
    accounts: number;
    lists: number;
    accountIndex: { ms: number; heapMB: number; arrayBuffersMB: number };
    trunkIndex: { ms: number; heapMB: number; arrayBuffersMB: number };
    processHeapMB: number;
  };
  console.log(`node --expose-gc, ${m.cidrs.toLocaleString('en')} CIDRs; memory after gc, not counting the input snapshot (its strings are shared).\n`);
  const mb = (x: number) => `${x.toFixed(0)} MB`;
  console.log(
    table(
      ['index', 'build', 'heap', 'typed arrays', 'total'],
      [
        [`accounts (${m.accounts.toLocaleString('en')} accounts, ${m.lists.toLocaleString('en')} lists)`, `${m.accountIndex.ms.toFixed(0)} ms`, mb(m.accountIndex.heapMB), mb(m.accountIndex.arrayBuffersMB), mb(m.accountIndex.heapMB + m.accountIndex.arrayBuffersMB)],
        ['trunk table (one PrefixTable)', `${m.trunkIndex.ms.toFixed(0)} ms`, mb(m.trunkIndex.heapMB), mb(m.trunkIndex.arrayBuffersMB), mb(m.trunkIndex.heapMB + m.trunkIndex.arrayBuffersMB)],
      ],
    ),
  );
  console.log(`process heap with inputs and both indexes: ${mb(m.processHeapMB)}`);
  for (const [name, part] of [['accounts', m.accountIndex], ['trunk table', m.trunkIndex]] as const) {
    const total = part.heapMB + part.arrayBuffersMB;
    check(`1 M CIDRs (${name}): ≤ 300 MB`, total <= 300, mb(total));
    check(`1 M CIDRs (${name}): built in ≤ 2 s`, part.ms <= 2000, `${part.ms.toFixed(0)} ms`);
  }
}

// ---- one account's change on a 100 k index ---------------------------------------------------

function accountChange(): void {
  const tenancy = randomTenancy(random(5), 100_000);
  const index = DecisionIndex.build(tenancy.snapshot);
  const accounts = tenancy.snapshot.accounts;
  const typical = accounts.filter((a) => (a.accessList?.cidrs.length ?? 0) <= 40);
  const largest = accounts.reduce((a, b) => ((b.accessList?.cidrs.length ?? 0) > (a.accessList?.cidrs.length ?? 0) ? b : a));
  const changed = (a: IndexAccount): IndexAccount => ({ ...a, accessList: a.accessList ? { ...a.accessList, cidrs: [...a.accessList.cidrs.slice(1), '198.51.100.0/24'] } : null });
  let k = 0;
  const typicalMs = medianMs(quick ? 100 : 1000, () => index.putAccount(changed(typical[k++ % typical.length]!)));
  const largestMs = medianMs(quick ? 5 : 50, () => index.putAccount(changed(largest)));
  const size = (a: IndexAccount) => (a.accessList?.cidrs.length ?? 0) + a.devices.reduce((n, d) => n + (d.accessList?.cidrs.length ?? 0), 0);
  console.log(`putAccount on an index of ${tenancy.cidrCount.toLocaleString('en')} CIDRs (median):`);
  console.log(table(['account', 'CIDRs', 'apply'], [
    ['typical (≤ 40-entry list, devices)', `~${Math.round(typical.reduce((n, a) => n + size(a), 0) / typical.length)}`, `${(typicalMs * 1000).toFixed(1)} µs`],
    ['largest', String(size(largest)), `${largestMs.toFixed(2)} ms`],
  ]));
  check('one account\'s change applied in ≤ 1 ms (typical account)', typicalMs <= 1, `${(typicalMs * 1000).toFixed(1)} µs`);
}

// ---- the machine's memory latency ------------------------------------------------------------

function machineLatency(): void {
  const rows = memoryLatencies(quick, random(13));
  console.log('One load whose address depends on the previous one, randomly through a working set of the given size');
  console.log('(one step per 64-byte line; median ns per step). A lookup pays about this for each dependent step it takes');
  console.log('through a structure of that size; the (b) floor\'s Map of accounts stays in the small, cached sizes.\n');
  const size = (bytes: number) => (bytes >= 1 << 20 ? `${bytes / (1 << 20)} MiB` : `${bytes / 1024} KiB`);
  console.log(table(['working set', 'ns per dependent load'], rows.map((r) => [size(r.bytes), r.ns.toFixed(1)])));
}

// ---- the run ---------------------------------------------------------------------------------

interface Section {
  /** The name `--only` takes. */
  readonly key: string;
  readonly title: string;
  readonly run: () => void | Promise<void>;
}

const sections: Section[] = [
  { key: 'a', title: '(a) Which entry of the whole rule set holds this address (trunk lookup)', run: wholeSetLookups },
  { key: 'b', title: '(b) Per-account decisions', run: accountDecisions },
  { key: 'latency', title: "This machine's memory latency", run: machineLatency },
  { key: 'memory', title: 'Memory and build time', run: memoryAndBuild },
  { key: 'change', title: 'Applying one account\'s change', run: accountChange },
  { key: 'http', title: 'HTTP: the real server against a bare Fastify hello world', run: async () => void targets.push(...(await runHttpBench(quick))) },
  { key: 'logging', title: 'Logging', run: () => runLoggingBench(quick) },
  { key: 'writes', title: 'Writes: trunk IP ACL entries through the API, at growing table sizes', run: async () => void targets.push(...(await runWritesBench(quick))) },
];

// `--only b,http` runs those sections alone (their targets only): for working on one part.
const onlyArg = process.argv.indexOf('--only');
const only = onlyArg > 0 ? new Set((process.argv[onlyArg + 1] ?? '').split(',')) : undefined;
const chosen = sections.filter((s) => only === undefined || only.has(s.key));
if (chosen.length === 0) throw new Error(`--only takes some of: ${sections.map((s) => s.key).join(', ')}`);

const started = Date.now();
console.log(`ipwarden bench${quick ? ' --quick' : ''}: node ${process.version}, ${process.platform}/${process.arch}; sizes ${settings.sizes.map(sizeName).join(', ')}; ${settings.runs} runs, medians\n`);
for (const section of chosen) {
  console.log(`== ${section.title}\n`);
  const sectionStarted = Date.now();
  await section.run();
  console.log(`(${((Date.now() - sectionStarted) / 1000).toFixed(1)} s)\n`);
}
console.log('== Targets\n');
console.log(table(['target', 'result', 'measured'], targets.map((t) => [t.what, t.met ? 'met' : 'MISSED', t.detail])));
const missed = targets.filter((t) => !t.met);
console.log(`\n${targets.length - missed.length} of ${targets.length} targets met${missed.length ? `; missed: ${missed.map((t) => t.what).join('; ')}` : ''}.`);
console.log(`(${((Date.now() - started) / 1000).toFixed(0)} s)`);
