// pino hands its destination one line at a time, and sonic-boom (pino's own destination) measures
// everything it is holding on every write (`Buffer.byteLength` of its pending string, which V8
// flattens anew each time): per line, as much CPU as pino's formatting of it. Lines are gathered
// here and handed over 16 KiB at a time to a synchronous destination, so the write costs once per
// hand-over, not per line, and a hand-over's fixed cost is shared by many lines (figures:
// docs/performance.md, "Figures behind the code").

import pino from 'pino';

/** What a batch writes to: a synchronous destination such as `pino.destination({ sync: true })`. */
export interface LineSink {
  write(chunk: string): unknown;
}

export class LineBatch {
  private lines: string[] = [];
  private chars = 0;

  constructor(
    private readonly sink: LineSink,
    /** Lines are handed over once this many characters have gathered. */
    private readonly batchChars: number,
  ) {}

  write(line: string): boolean {
    this.lines.push(line);
    this.chars += line.length;
    if (this.chars >= this.batchChars) this.handOver();
    return true;
  }

  /** Hands over every gathered line now (pino's `logger.flush` calls it, with a callback). */
  flush(done?: (error?: Error) => void): void {
    this.handOver();
    done?.();
  }

  private handOver(): void {
    if (this.lines.length === 0) return;
    const chunk = this.lines.join('');
    this.lines = [];
    this.chars = 0;
    this.sink.write(chunk);
  }
}

/** How often gathered lines are written out at the latest. */
const FLUSH_MS = 250;
/** Lines are written out once this many characters have gathered (about 55 request lines). */
const BATCH_CHARS = 16_384;

/**
 * The server's log destination: lines gathered, then written synchronously (as Node writes
 * stdout to files and pipes); flushed a few times a second, so that a quiet server's lines still
 * show at once, and when the process exits.
 */
export function batchedDestination(dest: number | string): LineBatch {
  const lines = new LineBatch(pino.destination({ dest, sync: true }), BATCH_CHARS);
  setInterval(() => lines.flush(), FLUSH_MS).unref();
  process.on('exit', () => lines.flush());
  return lines;
}
