// A SIP edge worker (issue 22; edge/cluster.ts starts it): the composition root of a process that
// builds its own copy of the decision index from the store, serves the edge on the socket it
// shares with the other workers, and applies each change when the API process says one is
// committed (and by itself, from the change feed, as any node does).
import { Registry } from 'prom-client';
import { PrimaryAdmission, type FromWorker, type ToWorker } from './edge/cluster.ts';
import { holdYoungGeneration } from './edge/worker-heap.ts';
import { createLogger, decisionMetrics, startDecisions, startSipEdge, type EdgeWorkerSettings } from './main.ts';

const { config, branchKey } = JSON.parse(process.env.IPWARDEN_EDGE_WORKER ?? '{}') as EdgeWorkerSettings;
const logger = createLogger(config.logLevel).child({ worker: process.pid });
const tell = (message: FromWorker) => process.send?.(message);
holdYoungGeneration();

try {
  const { store, decisions, pool } = await startDecisions(config);
  decisions.startPolling(config.pollMs);
  const registry = new Registry();
  await decisionMetrics(registry, decisions);
  // The per-source connection limit holds over every worker: the primary counts.
  const admission = new PrimaryAdmission();
  const edge = await startSipEdge(config, decisions, pool, registry, logger, { branchKey, admission });
  const stop = async () => {
    await edge.close();
    decisions.stop();
    await store.close();
    logger.flush();
    process.exit(0);
  };
  process.on('message', (message: ToWorker) => {
    switch (message.type) {
      case 'catch-up':
        decisions.catchUp().then(
          () => tell({ type: 'caught-up', id: decisions.stats().lastChangeId }),
          () => decisions.markStale(),
        );
        return;
      case 'metrics':
        registry.getMetricsAsJSON().then((metrics) => tell({ type: 'metrics', request: message.request, metrics }));
        return;
      case 'egress':
        tell({ type: 'egress', request: message.request, egress: edge.egress() });
        return;
      case 'admitted':
        admission.answered(message.request, message.yes);
        return;
      case 'reload-tls':
        edge.reloadTls();
        return;
      case 'stop':
        void stop();
        return;
    }
  });
  // The API process is gone: nothing would replace this worker's socket share or its index.
  process.on('disconnect', () => void stop());
  tell({ type: 'listening', listeners: edge.listeners, socket: edge.socket });
} catch (error) {
  logger.error({ err: error }, 'SIP worker could not start');
  tell({ type: 'failed', message: error instanceof Error ? error.message : String(error) });
  logger.flush();
  process.exit(1);
}
