// Run in a child process with --expose-gc (bench/index.ts spawns it): builds the decision index
// for N CIDRs spread over accounts, and a trunk table holding N CIDRs, and reports build time
// and the memory each holds once garbage is collected. Prints one JSON line.

import { DecisionIndex } from '../../src/core/index.ts';
import { random, randomRules, randomTenancy, trunkEntriesOf } from './rules.ts';

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with --expose-gc');

const cidrs = Number(process.argv[process.argv.indexOf('--cidrs') + 1] ?? 1_000_000);

function settled(): NodeJS.MemoryUsage {
  gc!();
  gc!();
  return process.memoryUsage();
}

function measureBuild(build: () => unknown): { ms: number; heapMB: number; arrayBuffersMB: number; held: unknown } {
  const before = settled();
  const start = process.hrtime.bigint();
  const held = build();
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  const after = settled();
  return {
    ms,
    heapMB: (after.heapUsed - before.heapUsed) / 2 ** 20,
    arrayBuffersMB: (after.arrayBuffers - before.arrayBuffers) / 2 ** 20,
    held,
  };
}

// Both inputs first, so that neither measurement sees the other's garbage; made inside a
// function, whose temporaries (the generated rules) die with its frame: made at the top level,
// they stayed reachable from the module's frame through the gc() calls and were collected
// during a build instead (a 220 ms mark-compact, freeing 137 MB, counted as build time).
function makeInputs() {
  return { tenancy: randomTenancy(random(11), cidrs), trunkEntries: trunkEntriesOf(randomRules(random(12), cidrs)) };
}
const { tenancy, trunkEntries } = makeInputs();
const accounts = measureBuild(() => DecisionIndex.build(tenancy.snapshot));
const trunks = measureBuild(() => DecisionIndex.build({ accounts: [], trunkEntries }));
const inputs = settled();

console.log(
  JSON.stringify({
    cidrs: tenancy.cidrCount,
    accounts: tenancy.snapshot.accounts.length,
    lists: tenancy.lists.length,
    accountIndex: { ms: accounts.ms, heapMB: accounts.heapMB, arrayBuffersMB: accounts.arrayBuffersMB },
    trunkIndex: { ms: trunks.ms, heapMB: trunks.heapMB, arrayBuffersMB: trunks.arrayBuffersMB },
    processHeapMB: inputs.heapUsed / 2 ** 20,
    processRssMB: inputs.rss / 2 ** 20,
    kept: [accounts.held, trunks.held].length,
  }),
);
