// Timing for the benchmark: every contender runs its whole batch of queries once per run, the
// runs of all contenders are interleaved (so a noisy neighbour hurts them alike), and each
// contender's rate is the median of its runs.

export interface Contender {
  readonly name: string;
  /** Queries answered by one call of `batch`. */
  readonly queries: number;
  /** Answers every query once; returns a checksum so the work cannot be optimised away. */
  readonly batch: () => number;
  /** Fewer runs for slow (O(n) per query) baselines. */
  readonly runs?: number;
}

export interface Rate {
  readonly name: string;
  /** Queries per second, the median of the runs. */
  readonly perSecond: number;
  readonly runs: number;
  readonly checksum: number;
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function timeOnce(contender: Contender): { seconds: number; checksum: number } {
  const start = process.hrtime.bigint();
  const checksum = contender.batch();
  return { seconds: Number(process.hrtime.bigint() - start) / 1e9, checksum };
}

export function measure(contenders: readonly Contender[], runs: number): Rate[] {
  for (const c of contenders) timeOnce(c); // warm-up: let the JIT settle
  const samples = contenders.map(() => [] as number[]);
  const checksums = contenders.map(() => 0);
  for (let r = 0; r < runs; r++) {
    contenders.forEach((c, i) => {
      if (r >= (c.runs ?? runs)) return;
      const { seconds, checksum } = timeOnce(c);
      samples[i]!.push(c.queries / seconds);
      checksums[i] = checksum;
    });
  }
  return contenders.map((c, i) => ({ name: c.name, perSecond: median(samples[i]!), runs: samples[i]!.length, checksum: checksums[i]! }));
}

/** Milliseconds of `fn`, median of `runs` calls. */
export function medianMs(runs: number, fn: () => void): number {
  const samples: number[] = [];
  for (let r = 0; r < runs; r++) {
    const start = process.hrtime.bigint();
    fn();
    samples.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  return median(samples);
}

export function formatRate(perSecond: number): string {
  if (perSecond >= 1e6) return `${(perSecond / 1e6).toFixed(2)} M/s`;
  if (perSecond >= 1e3) return `${(perSecond / 1e3).toFixed(1)} k/s`;
  return `${perSecond.toFixed(0)} /s`;
}

export function formatRatio(ratio: number): string {
  if (ratio >= 100) return `${ratio.toFixed(0)}×`;
  if (ratio >= 10) return `${ratio.toFixed(1)}×`;
  return `${ratio.toFixed(2)}×`;
}

/** A plain text table, columns padded to their widest cell. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

export interface Target {
  readonly what: string;
  readonly met: boolean;
  readonly detail: string;
}
