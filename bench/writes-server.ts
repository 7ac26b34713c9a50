// The server of the Writes bench, in a child process of its own: `serve` as in production, and
// monitors that the parent resets and reads over IPC around each load: the event loop's delay,
// the longest garbage collection pause, the process's CPU time (every thread's), and (Linux) what
// the loop's longest turns were made of: time the main thread ran, against time it waited for a
// core (the machine's other work).

import { readFileSync } from 'node:fs';
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import { loadConfig } from '../src/config.ts';
import { serve } from '../src/main.ts';

const server = await serve(loadConfig(JSON.parse(process.argv[2]!) as Record<string, string>, {}));
const delay = monitorEventLoopDelay({ resolution: 1 });
delay.enable();
let cpu = process.cpuUsage();
let gcMaxMs = 0;
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) gcMaxMs = Math.max(gcMaxMs, entry.duration);
}).observe({ entryTypes: ['gc'] });

/** The main thread's time on a core and waiting for one, ms (/proc/…/schedstat); null elsewhere. */
function schedstat(): [number, number] | null {
  try {
    const [running, waiting] = readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ').map(Number);
    return [running! / 1e6, waiting! / 1e6];
  } catch {
    return null;
  }
}

/** A timer every millisecond: the gap between two of its calls is a turn of the loop (or more). */
interface Turns {
  /** The longest gap, and what the main thread did in it. */
  longest: { ms: number; runningMs: number; waitingMs: number };
  /** The most time the main thread ran within one gap. */
  mostRunningMs: number;
}
const turns: Turns = { longest: { ms: 0, runningMs: 0, waitingMs: 0 }, mostRunningMs: 0 };
let last = { at: performance.now(), sched: schedstat() };
if (last.sched) {
  setInterval(() => {
    const now = { at: performance.now(), sched: schedstat()! };
    const gap = { ms: now.at - last.at, runningMs: now.sched[0] - last.sched![0], waitingMs: now.sched[1] - last.sched![1] };
    if (gap.ms > turns.longest.ms) turns.longest = gap;
    turns.mostRunningMs = Math.max(turns.mostRunningMs, gap.runningMs);
    last = now;
  }, 1);
}

process.on('message', (message) => {
  if (message === 'reset') {
    delay.reset();
    cpu = process.cpuUsage();
    gcMaxMs = 0;
    turns.longest = { ms: 0, runningMs: 0, waitingMs: 0 };
    turns.mostRunningMs = 0;
    process.send!({ reset: true });
  } else if (message === 'report') {
    const { user, system } = process.cpuUsage(cpu);
    process.send!({ maxMs: delay.max / 1e6, p99Ms: delay.percentile(99) / 1e6, cpuUs: user + system, turns: last.sched ? turns : null, gcMaxMs });
  } else if (message === 'stop') {
    void server.close().then(() => process.exit(0));
  }
});
process.send!({ ready: true });
