// The load generator of the Writes bench, in a child process of its own at the lowest CPU
// priority: on this 2-core machine it stands in for clients on other machines, so the server's
// threads get a core first and its loop delay is its own, not the load generator's. Linux's idle
// policy (SCHED_IDLE, set with util-linux's `chrt`) gives the core up the moment another thread
// wants it; nice 19 (where `chrt` is missing) only shrinks its share.
// It sends the requests it is given over IPC, `inFlight` at a time on as many keep-alive
// connections (autocannon: fetch cost over a millisecond of CPU a request, as much as the server),
// and reports the seconds from the start to the last answer and its own CPU time.

import autocannon from 'autocannon';
import { spawnSync } from 'node:child_process';
import { setPriority } from 'node:os';

export interface ClientJob {
  url: string;
  token: string;
  inFlight: number;
  requests: { path: string; body: string }[];
}

export type ClientReport = { ready: true } | { seconds: number; cpuUs: number } | { error: string };

setPriority(19);
spawnSync('chrt', ['--all-tasks', '--idle', '--pid', '0', String(process.pid)], { stdio: 'ignore' });

process.once('message', (job: ClientJob) => {
  const cpu = process.cpuUsage();
  let next = 0;
  const started = performance.now();
  let last = started;
  const count = job.requests.length;
  const report = (message: ClientReport) => process.send!(message, () => process.exit(0));
  const tracker = autocannon(
    {
      url: job.url,
      connections: job.inFlight,
      amount: count,
      requests: [
        {
          method: 'PUT',
          headers: { 'content-type': 'application/json', 'x-auth-token': job.token },
          setupRequest: (req) => ({ ...req, ...job.requests[next++]! }),
        },
      ],
    },
    (error, result) => {
      const { user, system } = process.cpuUsage(cpu);
      if (error) report({ error: String(error) });
      else if (result.non2xx > 0 || result.errors > 0 || result.timeouts > 0) report({ error: `${result.non2xx} answers not 2xx, ${result.errors} errors, ${result.timeouts} timeouts` });
      else if (result.requests.sent !== count) report({ error: `${result.requests.sent} requests sent, not ${count}` });
      // autocannon itself ends only on its next one-second tick: the load ended at its last answer.
      else report({ seconds: (last - started) / 1000, cpuUs: user + system });
    },
  );
  tracker.on('response', () => {
    last = performance.now();
  });
});
// Started and loaded before the load is timed: the parent waits for this.
process.send!({ ready: true });
