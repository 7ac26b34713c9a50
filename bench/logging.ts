// The cost of one request's log line (api.md §8 keeps info-level logging in the HTTP comparison):
// the server's logger (src/main.ts, redaction included), formatted by pino or by
// src/api/request-log.ts (the server's), writing to /dev/null through two destinations, a few
// lines per event-loop turn as a busy server writes them. CPU time of this process per line
// (libuv's write threads included), medians of interleaved runs.

import pino from 'pino';
import { requestLog } from '../src/api/request-log.ts';
import { batchedDestination } from '../src/log-batch.ts';
import { createLogger } from '../src/main.ts';
import { median, table } from './core/measure.ts';

const LINES_PER_TURN = 5;

type Line = () => void;

function cpuPerLine(write: Line, lines: number): Promise<number> {
  return new Promise((resolve) => {
    const start = process.cpuUsage();
    let written = 0;
    const turn = () => {
      for (let k = 0; k < LINES_PER_TURN; k++) write();
      written += LINES_PER_TURN;
      if (written < lines) setImmediate(turn);
      else {
        const used = process.cpuUsage(start);
        resolve((used.user + used.system) / lines);
      }
    };
    turn();
  });
}

const FIELDS = { reqId: 'req-1a2b3c', method: 'GET', url: '/v2/accounts/4f1c2a9e8d7b6c5a4f3e2d1c0b9a8f7e/access_lists/check?ip=203.0.113.9&user_agent=bench', remote: '127.0.0.1', status: 200, ms: 0.21 };

/** pino's own formatting of the line's object. */
const viaPino = (destination: pino.DestinationStream): Line => {
  const logger = createLogger('info', destination);
  return () => logger.info(FIELDS, 'request');
};
/** The server's: the line assembled by request-log.ts, written to the logger's destination. */
const viaRequestLog = (destination: pino.DestinationStream): Line => {
  const log = requestLog(createLogger('info', destination));
  return () => log(FIELDS);
};

export async function runLoggingBench(quick: boolean): Promise<void> {
  const lines = quick ? 20_000 : 100_000;
  const runs = quick ? 5 : 9;
  const drop = () => ({ write: () => undefined });
  // `formatting` names the row with the same formatter and no writing, for the last column.
  const variants = [
    { name: "pino's formatting, line dropped", line: viaPino(drop()), formatting: 0 },
    { name: 'request-log.ts formatting, line dropped', line: viaRequestLog(drop()), formatting: 1 },
    { name: 'pino + pino.destination, 4 KiB buffer (async)', line: viaPino(pino.destination({ dest: '/dev/null', sync: false, minLength: 4096 })), formatting: 0 },
    { name: 'pino + gathered, written 16 KiB at a time', line: viaPino(batchedDestination('/dev/null')), formatting: 0 },
    { name: "request-log.ts + gathered (the server's)", line: viaRequestLog(batchedDestination('/dev/null')), formatting: 1 },
  ];
  const samples = variants.map(() => [] as number[]);
  for (const v of variants) await cpuPerLine(v.line, lines / 4); // warm-up
  for (let r = 0; r < runs; r++) {
    for (const [i, v] of variants.entries()) samples[i]!.push(await cpuPerLine(v.line, lines));
  }
  const us = samples.map(median);
  console.log(`One request's log line, ${lines.toLocaleString('en')} lines × ${runs} runs, ${LINES_PER_TURN} per event-loop turn (CPU µs per line, medians):\n`);
  const rows = variants.map((v, i) => [v.name, us[i]!.toFixed(2), i === v.formatting ? '' : (us[i]! - us[v.formatting]!).toFixed(2)]);
  console.log(table(['formatting + destination', 'µs/line', 'writing alone'], rows));
  console.log('\npino.destination measures all it holds on every write (Buffer.byteLength of its pending string).');
}
