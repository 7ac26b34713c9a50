// A SIP worker's heap (src/edge/worker-heap.ts), in processes started with the flags cluster.ts
// starts a worker with: what a quiet spell does to its young generation.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { WORKER_V8_FLAGS } from '../../src/edge/worker-heap.ts';

/**
 * Allocates a burst (the young generation grows to both its semi-spaces), holds the young
 * generation or not (argv[1]), sits idle past V8's 5 s allocation-throughput window, collects the
 * young generation as the next burst would, and prints the young generation's committed MiB.
 */
const QUIET_SPELL = `
import v8 from 'node:v8';
import { holdYoungGeneration } from ${JSON.stringify(new URL('../../src/edge/worker-heap.ts', import.meta.url).href)};
const committed = () => v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size / 2 ** 20;
const burst = { last: null };
for (let i = 0; i < 2e6; i++) burst.last = new Array(32);
const before = committed();
if (process.argv[1] === 'hold') holdYoungGeneration();
await new Promise((resume) => setTimeout(resume, 6000));
globalThis.gc({ type: 'minor' });
console.log(JSON.stringify({ before, after: committed() }));
process.exit(0);
`;

async function quietSpell(hold: boolean): Promise<{ before: number; after: number }> {
  const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), ...WORKER_V8_FLAGS, '--expose-gc', '--input-type=module', '-e', QUIET_SPELL, hold ? 'hold' : 'idle'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk));
  const [code] = (await once(child, 'exit')) as [number | null];
  assert.equal(code, 0);
  return JSON.parse(out) as { before: number; after: number };
}

describe('a SIP worker heap', () => {
  it('keeps its young generation committed through a quiet spell, which V8 halves without the hold', async () => {
    const [held, idle] = await Promise.all([quietSpell(true), quietSpell(false)]);
    // Two semi-spaces of 16 MiB once traffic has run.
    assert.equal(held.before, 32);
    assert.equal(idle.before, 32);
    // The burst after the spell would take the given-back half again a page at a time.
    assert.equal(idle.after, 16, 'V8 no longer gives the young generation back after a quiet spell: the hold may go');
    assert.equal(held.after, 32);
  });
});
