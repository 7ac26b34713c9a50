// The server of the Writes bench, in a child process of its own: `serve` as in production, and a
// monitor of its event loop's delay and its CPU time (every thread's) that the parent resets and
// reads over IPC around each load.

import { monitorEventLoopDelay } from 'node:perf_hooks';
import { loadConfig } from '../src/config.ts';
import { serve } from '../src/main.ts';

const server = await serve(loadConfig(JSON.parse(process.argv[2]!) as Record<string, string>, {}));
const delay = monitorEventLoopDelay({ resolution: 1 });
delay.enable();
let cpu = process.cpuUsage();
process.on('message', (message) => {
  if (message === 'reset') {
    delay.reset();
    cpu = process.cpuUsage();
    process.send!({ reset: true });
  } else if (message === 'report') {
    const { user, system } = process.cpuUsage(cpu);
    process.send!({ maxMs: delay.max / 1e6, p99Ms: delay.percentile(99) / 1e6, cpuUs: user + system });
  } else if (message === 'stop') {
    void server.close().then(() => process.exit(0));
  }
});
process.send!({ ready: true });
