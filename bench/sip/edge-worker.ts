// A SIP bench worker: the edge as production's workers run it (src/edge-worker.ts), over the
// bench's rule set instead of a store, so one worker or several decide from the same rules.
import { readFileSync } from 'node:fs';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { workerListenPort, type FromWorker, type ToWorker } from '../../src/edge/cluster.ts';
import type { Listener } from '../../src/edge/endpoint.ts';
import { DEFAULT_REJECT } from '../../src/edge/reply.ts';
import { startEdge } from '../../src/edge/server.ts';
import { holdYoungGeneration } from '../../src/edge/worker-heap.ts';
import { RULE_SETS } from './rules.ts';

export interface BenchWorkerSettings {
  addressFile: string;
  rules: string;
  listen: Listener[];
  upstream: { host: string; port: number };
  branchKey: string;
  workers: number;
  socket: 'batch' | 'dgram';
}

const settings = JSON.parse(process.env.IPWARDEN_EDGE_WORKER ?? '{}') as BenchWorkerSettings;
const tell = (message: FromWorker) => process.send?.(message);
holdYoungGeneration();
const rules = RULE_SETS[settings.rules]!(readFileSync(settings.addressFile, 'utf8').split('\n').filter(Boolean));
const edge = await startEdge(
  {
    listen: settings.listen.map((l) => (l.transport === 'udp' ? { ...l, port: workerListenPort(l.port) } : l)),
    upstream: settings.upstream,
    reject: DEFAULT_REJECT,
    branchKey: settings.branchKey,
    ownUpstreamSocket: true,
    workers: settings.workers,
    socket: settings.socket,
  },
  rules,
  { registry: new Registry(), logger: pino({ level: 'warn' }) },
);
process.on('message', (message: ToWorker) => {
  if (message.type === 'stop') void edge.close().then(() => process.exit(0));
});
process.on('disconnect', () => process.exit(0));
tell({ type: 'listening', listeners: edge.listeners, socket: edge.socket });
