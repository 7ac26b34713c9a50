// A process that does nothing but watch its own event loop, run beside the Writes bench's server
// through every load: the delay this machine imposes at that moment on any process's loop (the
// load generator and the server's own threads competing for the cores, the VM), the floor under
// the server's figure. It answers the server's `reset` and `report` (bench/writes-server.ts).

import { monitorEventLoopDelay } from 'node:perf_hooks';

const delay = monitorEventLoopDelay({ resolution: 1 });
delay.enable();

process.on('message', (message) => {
  if (message === 'reset') {
    delay.reset();
    process.send!({ reset: true });
  } else if (message === 'report') {
    process.send!({ maxMs: delay.max / 1e6, p99Ms: delay.percentile(99) / 1e6 });
  } else if (message === 'stop') {
    process.exit(0);
  }
});
process.send!({ ready: true });
