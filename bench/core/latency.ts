// The machine's memory latency, as the decision structures meet it: one load whose address
// depends on the previous one (a random cycle through a typed array, one step per cache line),
// for working sets from L1-sized to larger than any cache. A lookup in a structure larger than
// the caches pays roughly the last figures per dependent step; the Map.get floor of (b) works on
// a small Map that stays cached.

import { median } from './measure.ts';

const LINE_WORDS = 16; // 64-byte cache lines of 4-byte words

/** Nanoseconds per dependent load through `bytes` of memory (median of `runs`). */
function dependentLoadNs(bytes: number, steps: number, runs: number, rng: () => number): number {
  const lines = bytes / 4 / LINE_WORDS;
  const order = new Int32Array(lines);
  for (let i = 0; i < lines; i++) order[i] = i;
  for (let i = lines - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const next = new Int32Array(bytes / 4);
  for (let i = 0; i < lines; i++) next[order[i]! * LINE_WORDS] = order[(i + 1) % lines]! * LINE_WORDS;
  const samples: number[] = [];
  let at = 0;
  for (let r = 0; r < runs; r++) {
    const start = process.hrtime.bigint();
    at = chase(next, at, steps);
    samples.push(Number(process.hrtime.bigint() - start) / steps);
  }
  if (at < 0) throw new Error('unreachable: keeps the chase from being optimised away');
  return median(samples);
}

function chase(next: Int32Array, at: number, steps: number): number {
  for (let s = 0; s < steps; s++) at = next[at]!;
  return at;
}

const LATENCY_SIZES = [16 << 10, 256 << 10, 1 << 20, 4 << 20, 16 << 20, 64 << 20];

export function memoryLatencies(quick: boolean, rng: () => number): { bytes: number; ns: number }[] {
  for (let r = 0; r < 20; r++) dependentLoadNs(LATENCY_SIZES[0]!, 50_000, 1, rng); // warm-up: let the JIT compile the chase
  return LATENCY_SIZES.map((bytes) => ({ bytes, ns: dependentLoadNs(bytes, quick ? 500_000 : 2_000_000, quick ? 3 : 5, rng) }));
}
