// The composition root: config → store → services → API / edge. Nothing else wires.

import type { FastifyInstance } from 'fastify';
import type { Server as HttpServer } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import pino, { type Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Config } from './config.ts';
import { followCertificate, readCertificate, type TlsFiles } from './certificate.ts';
import { batchedDestination } from './log-batch.ts';
import { Authenticator, type AuthTime } from './services/auth.ts';
import type { ServiceContext } from './services/context.ts';
import { Decisions, type IndexStats } from './services/decisions.ts';
import { EgressPool } from './services/egress-pool.ts';
import type { Store } from './store/port.ts';
import type { EdgeCluster } from './edge/cluster.ts';
import type { Listener } from './edge/endpoint.ts';
import type { RunningEdge } from './edge/server.ts';
import type { SourceAdmission } from './edge/streams.ts';
import type { CounterSeries } from './metrics.ts';
import { openSqliteStore } from './store/sqlite.ts';
import { loadSecretKey } from './secret-key.ts';
import { adoptSecretKey, Secrets } from './services/secrets.ts';

export async function openStore(config: Config): Promise<Store> {
  if (config.databaseUrl) {
    const { openPostgresStore } = await import('./store/postgres.ts');
    return openPostgresStore(config.databaseUrl);
  }
  return openSqliteStore(config.db);
}

export interface Services {
  ctx: ServiceContext;
  auth: Authenticator;
  /** Something the operator must be told once (a secret key generated). */
  notice?: string;
  /** The dedicated IPs this node's SIP edge sends from (api.md §7.1). */
  pool: EgressPool;
  close(): Promise<void>;
}

/**
 * The store and the decision index built from it (with the pool's egress view), following the
 * store's change feed (`logger`: where the index reports stored patterns that do not compile).
 */
export async function startDecisions(config: Config, logger?: Logger): Promise<{ store: Store; decisions: Decisions; pool: EgressPool }> {
  const store = await openStore(config);
  const decisions = new Decisions(store, {
    unknownRealm: config.sipUnknownRealm === 'allow' ? 'allow' : 'deny',
    ...(logger ? { onInvalidUserAgent: (problem) => logger.warn(problem, 'a stored user_agent pattern does not compile: its list denies every request') } : {}),
  });
  const pool = new EgressPool(store.read, { host: config.sipHost, zone: config.zone });
  decisions.follow(pool);
  // api.md §6: nothing answers before the index is built from the store.
  await decisions.load();
  // PostgreSQL: other nodes' commits are notified; catch up at once (the poll stays as a safety net).
  store.onChange?.(() => void decisions.catchUp().catch(() => decisions.markStale()));
  return { store, decisions, pool };
}

/** The store, the decision index built from it, and the services over both (`authTime`: tests' clocks). */
export async function startServices(config: Config, logger?: Logger, authTime: AuthTime = {}): Promise<Services> {
  const secretKey = loadSecretKey(config);
  const secrets = new Secrets(secretKey.key);
  const { store, decisions, pool } = await startDecisions(config, logger);
  try {
    await adoptSecretKey(store, secrets);
  } catch (error) {
    decisions.stop();
    await store.close();
    throw error;
  }
  const ctx: ServiceContext = {
    store,
    decisions,
    limits: { maxCidrs: config.maxCidrs, maxIpAclsPerTrunk: config.maxIpAclsPerTrunk },
    allowPrivateTrunkIps: config.allowPrivateTrunkIps,
    kamailioGroup: config.kamailioGroup,
    ...(config.zone === undefined ? {} : { localZone: config.zone }),
    secrets,
  };
  const auth = new Authenticator(ctx, {
    tokenTtlSeconds: config.tokenTtlSeconds,
    maxFailures: config.loginMaxFailures,
    failureWindowSeconds: config.loginWindowSeconds,
    maxFailuresPerAccount: config.loginMaxFailuresPerAccount,
  }, authTime);
  return {
    ctx,
    auth,
    ...(secretKey.notice === undefined ? {} : { notice: secretKey.notice }),
    pool,
    async close() {
      decisions.stop();
      await store.close();
    },
  };
}

const REDACT = ['req.headers["x-auth-token"]', 'req.headers.authorization', 'req.headers.cookie', 'res.headers["x-auth-token"]'];

export function createLogger(level: string, destination?: pino.DestinationStream) {
  const options = { level, redact: { paths: REDACT, censor: '[redacted]' } };
  return pino(options, destination ?? batchedDestination(1));
}

async function indexMetrics(registry: Registry, decisions: Decisions): Promise<void> {
  const { Gauge } = await import('prom-client');
  // Read at scrape time, so a node cut off from the database shows it at once.
  const gauge = (name: string, help: string, value: (stats: IndexStats) => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(value(decisions.stats()));
      },
    });
  gauge('ipwarden_index_accounts', 'Accounts in the decision index', (s) => s.accounts);
  gauge('ipwarden_index_trunk_entries', 'Active trunk IP ACL entries in the index', (s) => s.trunkEntries);
  gauge('ipwarden_index_rebuild_seconds', 'Duration of the last index update', (s) => s.lastRebuildMs / 1000);
  gauge('ipwarden_index_current', '1 when the index has caught up with the database', (s) => (s.current ? 1 : 0));
  await decisionMetrics(registry, decisions);
}

/** Decisions by kind and result, and their latency: in the API process and in each SIP worker. */
export async function decisionMetrics(registry: Registry, decisions: Decisions): Promise<void> {
  const { LabelledCounter, LabelledHistogram } = await import('./metrics.ts');
  // Counted on every decision: the series are plain objects bound once per label set (metrics.ts).
  const results = new LabelledCounter('ipwarden_decisions_total', 'Decisions by kind and result').register(registry);
  const latency = new LabelledHistogram('ipwarden_decision_duration_seconds', 'Time to decide from the in-memory index', [1e-7, 2.5e-7, 5e-7, 1e-6, 2.5e-6, 5e-6, 1e-5, 5e-5, 1e-4, 1e-3]).register(registry);
  // By kind, then result: both are constant strings, so each lookup hashes nothing new.
  const counted = new Map<string, Map<string, CounterSeries>>();
  decisions.onDecision = (kind, result, ms) => {
    let byResult = counted.get(kind);
    if (byResult === undefined) counted.set(kind, (byResult = new Map()));
    let series = byResult.get(result);
    if (series === undefined) byResult.set(result, (series = results.seriesOf(`${kind} ${result}`, { kind, result })));
    series.value++;
    latency.seriesOf(kind, { kind }).observe(ms / 1000);
  };
}

export interface Server {
  app: FastifyInstance;
  services: Services;
  /** Where the SIP edge listens (null without --sip). */
  sipListeners: Listener[] | null;
  /** The listener of /metrics. */
  metrics: HttpServer;
  /** The API and the SIP edge (every worker) read their TLS certificates and keys again (SIGHUP). */
  reloadCertificates(): void;
  close(): Promise<void>;
}

/**
 * api.md §7: the edge reads an in-memory index (no HTTP hop per packet): the API's own, or with
 * `worker` given, a worker's (edge-worker.ts), sharing the branch key and the per-source
 * connection counts with the other workers.
 */
export async function startSipEdge(
  config: Config,
  decisions: Decisions,
  pool: EgressPool,
  registry: Registry,
  logger: Logger,
  worker?: { branchKey: string; admission: SourceAdmission },
): Promise<RunningEdge> {
  const { parseSipListeners, parseSipUpstream } = await import('./edge/endpoint.ts');
  const { startEdge } = await import('./edge/server.ts');
  const reject = config.sipReject === 'drop' ? ({ mode: 'drop' } as const) : ({ mode: 'respond', code: config.sipRejectCode, reason: config.sipRejectReason } as const);
  const egress = { pool, port: config.sipEgressPort };
  const tls = {
    ...(config.sipTlsCert === undefined ? {} : { cert: config.sipTlsCert }),
    ...(config.sipTlsKey === undefined ? {} : { key: config.sipTlsKey }),
    ...(config.sipTlsCa === undefined ? {} : { ca: config.sipTlsCa }),
  };
  const streamLimits = {
    maxConnections: config.sipMaxConnections,
    maxConnectionsPerSource: config.sipMaxConnectionsPerSource,
    maxBufferedPerConnection: config.sipMaxBufferPerConnection,
    maxBufferedPerSource: config.sipMaxBufferPerSource,
    idleTimeoutMs: config.sipIdleTimeoutMs,
  };
  const options = { listen: parseSipListeners(config.sip!), upstream: parseSipUpstream(config.sipUpstream!), reject, egress, tls, streamLimits };
  if (worker === undefined) return startEdge(options, decisions, { registry, logger });
  const { workerListenPort } = await import('./edge/cluster.ts');
  const listen = options.listen.map((l) => (l.transport === 'udp' ? { ...l, port: workerListenPort(l.port) } : l));
  return startEdge({ ...options, ...worker, listen, ownUpstreamSocket: true, workers: config.sipWorkers }, decisions, { registry, logger });
}

/** What the API process holds of the edge: the edge itself, or the workers running it. */
type EdgeHandle = { kind: 'local'; edge: RunningEdge } | { kind: 'workers'; workers: EdgeCluster };

async function startEdgeHandle(config: Config, services: Services, registry: Registry, logger: Logger): Promise<EdgeHandle | null> {
  if (!config.sip || config.sip.length === 0) return null;
  if (!config.sipUpstream) throw new Error('--sip needs --sip-upstream HOST:PORT (IPWARDEN_SIP_UPSTREAM)');
  const { decisions } = services.ctx;
  if (config.sipWorkers === 0) return { kind: 'local', edge: await startSipEdge(config, decisions, services.pool, registry, logger) };
  const { startEdgeCluster } = await import('./edge/cluster.ts');
  const { randomBytes } = await import('node:crypto');
  // Every worker reads the same socket, so any of them may get a response: one branch key for all.
  const workerSettings: EdgeWorkerSettings = { config, branchKey: randomBytes(32).toString('base64url') };
  const entry = fileURLToPath(new URL('./edge-worker.ts', import.meta.url));
  const workers = await startEdgeCluster({ workers: config.sipWorkers, entry, workerSettings, logger, maxConnectionsPerSource: config.sipMaxConnectionsPerSource });
  const { Gauge } = await import('prom-client');
  new Gauge({ name: 'ipwarden_sip_workers', help: 'SIP edge worker processes listening', registers: [registry], collect() { this.set(workers.live()); } });
  new Gauge({ name: 'ipwarden_sip_worker_restarts', help: 'SIP edge workers replaced after dying', registers: [registry], collect() { this.set(workers.restarts()); } });
  // A write is answered once every worker enforces it (the workers' next packet sees it).
  decisions.onApplied = (changeId) => workers.replicate(changeId);
  return { kind: 'workers', workers };
}

/** What a SIP worker is started with (IPWARDEN_EDGE_WORKER). */
export interface EdgeWorkerSettings {
  config: Config;
  branchKey: string;
}

/** api.md §9: the Kamailio address file follows the active trunk entries. */
async function startKamailioFeed(config: Config, services: Services, registry: Registry, logger: ReturnType<typeof createLogger>): Promise<{ stop(): void } | null> {
  if (!config.kamailioAddressFile) {
    if (config.kamailioRpc) throw new Error('--kamailio-rpc needs --kamailio-address-file PATH (IPWARDEN_KAMAILIO_ADDRESS_FILE)');
    return null;
  }
  const { KamailioFeed } = await import('./sbc/kamailio-feed.ts');
  const { kamailioRpc } = await import('./sbc/kamailio-rpc.ts');
  const { kamailioAddressFile } = await import('./services/exports.ts');
  const feed = new KamailioFeed({
    file: config.kamailioAddressFile,
    render: () => kamailioAddressFile(services.ctx.store, config.kamailioGroup),
    ...(config.kamailioRpc ? { reload: kamailioRpc(config.kamailioRpc) } : {}),
    registry,
    logger,
  });
  services.ctx.decisions.onTrunksChanged = () => feed.changed();
  await feed.start();
  return feed;
}

/** --tls-cert and --tls-key, which come as a pair. */
function apiTlsFiles(config: Config): TlsFiles | null {
  if (config.tlsCert === undefined && config.tlsKey === undefined) return null;
  if (config.tlsCert === undefined || config.tlsKey === undefined) throw new Error('--tls-cert and --tls-key (IPWARDEN_TLS_CERT, IPWARDEN_TLS_KEY) come together');
  return { cert: config.tlsCert, key: config.tlsKey };
}

/** On close, requests in flight get this long to finish before their connections are cut. */
export const STOP_GRACE_MS = 10_000;

/**
 * `ipwarden serve`: index built, edge bound, then the API answers. The HTTP and SIP modules are
 * loaded here only, so the maintenance verbs of the CLI start quickly.
 */
export async function serve(config: Config): Promise<Server> {
  const { Registry, collectDefaultMetrics } = await import('prom-client');
  const { buildApp } = await import('./api/app.ts');
  // A certificate that cannot be used stops the start before anything is opened.
  const tlsFiles = apiTlsFiles(config);
  const tls = tlsFiles === null ? {} : { tls: readCertificate(tlsFiles) };
  const logger = createLogger(config.logLevel);
  const services = await startServices(config, logger);
  if (services.notice) logger.warn(services.notice);
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  await indexMetrics(registry, services.ctx.decisions);
  services.ctx.decisions.startPolling(config.pollMs);

  // The edge socket is bound before the API answers (api.md §7).
  const edge = await startEdgeHandle(config, services, registry, logger);
  const kamailio = await startKamailioFeed(config, services, registry, logger);
  const { AggregatorRegistry } = await import('prom-client');
  // The SIP workers count their packets in registries of their own: a scrape adds them in.
  const currentMetrics = async (): Promise<Registry> =>
    edge?.kind === 'workers' ? AggregatorRegistry.aggregate([await registry.getMetricsAsJSON(), ...(await edge.workers.metrics())]) : registry;
  // api.md §7.1: health lists the dedicated-IP sockets (every worker holds the same ones).
  const sip = edge === null ? {} : { sip: { egress: edge.kind === 'local' ? async () => edge.edge.egress() : () => edge.workers.egress() } };
  const app = await buildApp({ ...services, ...sip }, { corsOrigin: config.corsOrigin, bodyLimit: config.bodyLimit, requestTimeoutMs: config.requestTimeoutMs, registry, currentMetrics, logger, ...(config.trustProxy ? { trustProxy: config.trustProxy } : {}), ...tls });
  const scrape = async () => (await currentMetrics()).metrics();
  const { listenForMetrics, metricsRoute } = await import('./api/metrics-endpoint.ts');
  if (config.metricsToken) metricsRoute(app, scrape, registry.contentType, config.metricsToken);
  const metrics = await listenForMetrics(scrape, registry.contentType, config.metricsHost, config.metricsPort);
  const { address, port } = metrics.address() as AddressInfo;
  logger.info({ address, port }, `metrics listening at http://${address.includes(':') ? `[${address}]` : address}:${port}/metrics`);
  const closeEdge = async () => {
    if (edge?.kind === 'local') await edge.edge.close();
    else await edge?.workers.close();
  };
  try {
    await app.listen({ port: config.port, host: config.host });
  } catch (error) {
    metrics.close();
    await closeEdge();
    kamailio?.stop();
    throw error;
  }
  // A renewed certificate is served to new connections: when its files change, or on SIGHUP.
  const apiCertificate =
    tlsFiles === null
      ? null
      : followCertificate(app.server as unknown as HttpsServer, tlsFiles, {
          onReloaded: () => logger.info({ cert: tlsFiles.cert }, 'TLS certificate loaded'),
          onFailed: (error) => logger.warn({ err: error.message }, 'TLS certificate not reloaded, the one in use stays'),
        });
  return {
    app,
    services,
    sipListeners: edge === null ? null : edge.kind === 'local' ? edge.edge.listeners : edge.workers.listeners,
    metrics,
    reloadCertificates() {
      apiCertificate?.reload();
      if (edge?.kind === 'local') edge.edge.reloadTls();
      else edge?.workers.reloadTls();
    },
    async close() {
      // Stops accepting and lets the requests in flight finish, closing each kept-alive
      // connection as soon as its answer is out; after the grace period, cuts whatever is left.
      apiCertificate?.stop();
      const idle = setInterval(() => app.server.closeIdleConnections(), 100);
      const cut = setTimeout(() => app.server.closeAllConnections(), STOP_GRACE_MS);
      await app.close();
      clearInterval(idle);
      clearTimeout(cut);
      metrics.close();
      metrics.closeAllConnections();
      await closeEdge();
      kamailio?.stop();
      await services.close();
      logger.info('ipwarden stopped');
      logger.flush();
    },
  };
}
