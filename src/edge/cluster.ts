// The SIP edge on every core (issue 22): N worker processes listen on the edge's addresses, each
// deciding from its own copy of the index. UDP: each worker binds a socket of its own with
// SO_REUSEPORT and the kernel spreads datagrams over them (with Node's dgram, the fallback, Node's
// cluster module hands each worker the one UDP handle the primary holds). TCP and TLS: the primary
// accepts the connections and deals them out to the workers in turn. The primary, which
// serves the API, tells the workers after each change it applies and waits for them before the
// write is answered, so a change is enforced by every worker on its next packet. A worker that
// dies is replaced; the others go on reading the shared socket meanwhile.
import cluster, { type Worker } from 'node:cluster';
import type { Logger } from 'pino';
import type { EgressSocketStatus } from './egress-sockets.ts';
import type { Listener } from './endpoint.ts';
import { DEFAULT_STREAM_LIMITS, LocalAdmission, type SourceAdmission } from './streams.ts';
import { WORKER_V8_FLAGS } from './worker-heap.ts';

/** Primary → worker. */
export type ToWorker =
  | { type: 'catch-up'; id: number }
  | { type: 'metrics' | 'egress'; request: number }
  | { type: 'admitted'; request: number; yes: boolean }
  | { type: 'reload-tls' }
  | { type: 'stop' };
/** Worker → primary. */
export type FromWorker =
  | { type: 'listening'; listeners: Listener[]; socket: 'batch' | 'dgram' }
  | { type: 'caught-up'; id: number }
  | { type: 'metrics'; request: number; metrics: object[] }
  | { type: 'egress'; request: number; egress: EgressSocketStatus[] }
  /** A connection accepted from `host`: may it hold one more? */
  | { type: 'admit'; request: number; host: string }
  | { type: 'release'; host: string }
  | { type: 'failed'; message: string };

export interface EdgeCluster {
  /** Where the shared sockets are bound. */
  listeners: Listener[];
  /** Resolves once every live worker has applied the change feed up to `changeId` (or timed out). */
  replicate(changeId: number): Promise<void>;
  /** Each worker's registry as prom-client's getMetricsAsJSON gives it. */
  metrics(): Promise<object[][]>;
  /** The dedicated-IP sockets (api.md §7.1), as a worker holds them: every worker holds the same, shared. */
  egress(): Promise<EgressSocketStatus[]>;
  /** Workers listening now. */
  live(): number;
  /** Their process ids (the SIP bench charges them with their CPU time). */
  pids(): number[];
  /** Workers replaced after dying, so far. */
  restarts(): number;
  /** Every worker reads its TLS certificate and key again. */
  reloadTls(): void;
  close(): Promise<void>;
}

export interface EdgeClusterOptions {
  workers: number;
  /** The worker's entry module (a composition root of its own). */
  entry: string;
  /** Handed to each worker in IPWARDEN_EDGE_WORKER, as JSON. */
  workerSettings: object;
  logger: Logger;
  /** How long a write waits for a worker to apply a change before going on without it. */
  replicateTimeoutMs?: number;
  /** TCP and TLS connections one source address may hold across all the workers. */
  maxConnectionsPerSource?: number;
}

const START_TIMEOUT_MS = 60_000;
/** Set for the workers after the first: the UDP port it bound, which the others bind too. */
const PORT_ENV = 'IPWARDEN_EDGE_PORT';

/**
 * In a worker: the UDP port to listen on. Sockets of their own cannot all ask for any port (0)
 * and get the same one: the first worker's choice is handed to the others.
 */
export function workerListenPort(configured: number): number {
  const pinned = Number(process.env[PORT_ENV]);
  return configured === 0 && pinned > 0 ? pinned : configured;
}
const STOP_TIMEOUT_MS = 5_000;

export async function startEdgeCluster(opts: EdgeClusterOptions): Promise<EdgeCluster> {
  const logger = opts.logger.child({ component: 'sip-workers' });
  const replicateTimeoutMs = opts.replicateTimeoutMs ?? 1000;
  // The entry is TypeScript: load tsx by its path, so a server started from any directory works.
  cluster.setupPrimary({ exec: opts.entry, execArgv: ['--import', import.meta.resolve('tsx'), ...WORKER_V8_FLAGS] });
  const live = new Set<Worker>();
  const caughtUp = new Map<Worker, number>();
  const waiting = new Set<() => void>();
  const replies = new Map<number, (answer: unknown) => void>();
  let nextRequest = 0;
  let closing = false;
  let restarts = 0;
  // The connections each source holds, over every worker, and which worker holds them: a worker
  // that dies gives its back.
  const admission = new LocalAdmission(opts.maxConnectionsPerSource ?? DEFAULT_STREAM_LIMITS.maxConnectionsPerSource);
  const heldBy = new Map<Worker, Map<string, number>>();
  const hold = (worker: Worker, host: string, change: 1 | -1) => {
    let held = heldBy.get(worker);
    if (held === undefined) heldBy.set(worker, (held = new Map()));
    const count = (held.get(host) ?? 0) + change;
    if (count > 0) held.set(host, count);
    else held.delete(host);
  };

  let pinnedPort: number | undefined;

  function fork(): Promise<Listener[]> {
    const env: Record<string, string> = { IPWARDEN_EDGE_WORKER: JSON.stringify(opts.workerSettings) };
    if (pinnedPort !== undefined) env[PORT_ENV] = String(pinnedPort);
    const worker = cluster.fork(env);
    return new Promise((listening, failed) => {
      const timer = setTimeout(() => failed(new Error('a SIP worker did not start in time')), START_TIMEOUT_MS);
      worker.on('message', (message: FromWorker) => {
        switch (message.type) {
          case 'listening':
            clearTimeout(timer);
            live.add(worker);
            // A dgram worker shares the primary's handle, found by the address asked for.
            if (message.socket === 'batch') pinnedPort ??= message.listeners.find((l) => l.transport === 'udp')?.port;
            listening(message.listeners);
            return;
          case 'failed':
            clearTimeout(timer);
            failed(new Error(`a SIP worker could not start: ${message.message}`));
            return;
          case 'caught-up':
            caughtUp.set(worker, message.id);
            for (const wake of waiting) wake();
            return;
          case 'metrics':
            replies.get(message.request)?.(message.metrics);
            return;
          case 'egress':
            replies.get(message.request)?.(message.egress);
            return;
          case 'admit': {
            const yes = admission.admit(message.host);
            if (yes) hold(worker, message.host, 1);
            send(worker, { type: 'admitted', request: message.request, yes });
            return;
          }
          case 'release':
            admission.release(message.host);
            hold(worker, message.host, -1);
            return;
        }
      });
      worker.on('exit', (code, signal) => {
        clearTimeout(timer);
        const wasLive = live.delete(worker);
        caughtUp.delete(worker);
        for (const [host, count] of heldBy.get(worker) ?? []) for (let i = 0; i < count; i++) admission.release(host);
        heldBy.delete(worker);
        for (const wake of waiting) wake();
        if (closing || !wasLive) return failed(new Error(`a SIP worker exited (${signal ?? code}) before it listened`));
        restarts++;
        logger.error({ pid: worker.process.pid, code, signal }, 'SIP worker died; starting another');
        fork().catch((error: unknown) => logger.error({ err: error }, 'SIP worker could not be replaced'));
      });
    });
  }

  /** A worker's answer to a question, or `fallback` when it does not answer within a second. */
  function ask<T>(worker: Worker, type: 'metrics' | 'egress', fallback: T): Promise<T> {
    return new Promise<T>((done) => {
      const request = nextRequest++;
      const timer = setTimeout(() => reply(fallback), 1000);
      const reply = (answer: T) => {
        clearTimeout(timer);
        replies.delete(request);
        done(answer);
      };
      replies.set(request, reply as (answer: unknown) => void);
      send(worker, { type, request });
    });
  }

  // The first alone: the others bind the UDP port it got.
  const listeners = await fork();
  await Promise.all(Array.from({ length: opts.workers - 1 }, fork));
  logger.info({ workers: opts.workers }, 'SIP workers listening');

  return {
    listeners,
    async replicate(changeId) {
      const pending = [...live].filter((w) => (caughtUp.get(w) ?? -1) < changeId);
      if (pending.length === 0) return;
      for (const worker of pending) send(worker, { type: 'catch-up', id: changeId });
      await new Promise<void>((done) => {
        const check = () => {
          if ([...live].every((w) => (caughtUp.get(w) ?? -1) >= changeId || !pending.includes(w))) finish();
        };
        const finish = () => {
          clearTimeout(timer);
          waiting.delete(check);
          done();
        };
        const timer = setTimeout(() => {
          logger.warn({ changeId }, 'a SIP worker did not apply a change in time');
          finish();
        }, replicateTimeoutMs);
        waiting.add(check);
        check();
      });
    },
    metrics: () => Promise.all([...live].map((worker) => ask<object[]>(worker, 'metrics', []))),
    async egress() {
      const [worker] = live;
      return worker === undefined ? [] : ask<EgressSocketStatus[]>(worker, 'egress', []);
    },
    live: () => live.size,
    pids: () => [...live].map((worker) => worker.process.pid!),
    restarts: () => restarts,
    reloadTls: () => {
      for (const worker of live) send(worker, { type: 'reload-tls' });
    },
    async close() {
      closing = true;
      await Promise.all(
        [...Object.values(cluster.workers ?? {})].map(
          (worker) =>
            new Promise<void>((done) => {
              if (worker === undefined || worker.isDead()) return done();
              const timer = setTimeout(() => worker.kill('SIGKILL'), STOP_TIMEOUT_MS);
              worker.once('exit', () => {
                clearTimeout(timer);
                done();
              });
              send(worker, { type: 'stop' });
            }),
        ),
      );
    },
  };
}

function send(worker: Worker, message: ToWorker): void {
  if (worker.isConnected()) worker.send(message);
}

/** In a SIP worker: the per-source connection limit, counted by the primary over every worker. */
export class PrimaryAdmission implements SourceAdmission {
  private nextRequest = 0;
  private readonly pending = new Map<number, (yes: boolean) => void>();

  admit(host: string): Promise<boolean> {
    return new Promise((done) => {
      const request = this.nextRequest++;
      this.pending.set(request, done);
      tellPrimary({ type: 'admit', request, host });
    });
  }

  release(host: string): void {
    tellPrimary({ type: 'release', host });
  }

  /** The primary's answer (ToWorker 'admitted'). */
  answered(request: number, yes: boolean): void {
    const done = this.pending.get(request);
    this.pending.delete(request);
    done?.(yes);
  }
}

function tellPrimary(message: FromWorker): void {
  process.send?.(message);
}
