// The SIP edge's sockets (api.md §7): a UDP socket that both receives from callers and relays to
// the upstream, so the upstream's responses come back to it and are routed by Via; and TCP / TLS
// listeners whose callers' requests go upstream on a connection the edge keeps (streams.ts), the
// responses coming back on it and going out on the connection each request came in on.
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { followCertificate, readCertificate } from '../certificate.ts';
import type { DecisionReader } from '../services/decision-types.ts';
import type { EgressSource } from '../services/egress-pool.ts';
import { EgressSockets, type EgressSocketStatus } from './egress-sockets.ts';
import { formatHostPort, unmapped, type Endpoint, type Listener, type StreamTransport, type Transport } from './endpoint.ts';
import { createEdgeMetrics } from './metrics.ts';
import { NameCache } from './name-cache.ts';
import { handlePacket, isNewCall, localAddress, type EdgeContext, type Outcome } from './pipeline.ts';
import type { RejectPolicy } from './reply.ts';
import { QueueDelay } from './queue-delay.ts';
import { DEFAULT_STREAM_LIMITS, Streams, type SourceAdmission, type StreamConnection, type StreamLimits } from './streams.ts';
import { ThrottledLog } from './throttled-log.ts';
import { DGRAM_READS_PER_TURN, edgeSockets, type EdgeSocket, type EdgeSockets } from './udp-socket.ts';

// What the CLI needs to turn flags into EdgeOptions, from one module.
export { parseSipListen, parseSipListeners, parseSipUpstream, EndpointError, type Endpoint, type Listener } from './endpoint.ts';
export { parseSipReject, DEFAULT_REJECT, type RejectPolicy } from './reply.ts';
export { DEFAULT_STREAM_LIMITS, type StreamLimits } from './streams.ts';

/** SO_RCVBUF of the edge's UDP sockets (the kernel doubles it, and caps it at net.core.rmem_max). */
export const RECV_BUFFER_BYTES = 4 * 1024 * 1024;
/**
 * Once datagrams have waited this long, new calls are answered 503: well inside SIP's 500 ms
 * retransmission timer, so callers do not resend into the backlog and it cannot outlive the burst.
 * The wait is the kernel's receive timestamp's where the socket has one (the batched socket);
 * else how long the queue has stayed non-empty (queue-delay.ts), which near full load can run
 * past the bound while each datagram waits a few milliseconds.
 */
const SHED_AFTER_MS = 100;
/**
 * A new call's INVITE that waited longer than SIP's T1 (RFC 3261 §17.1.1.2: 500 ms) has been sent
 * again by its caller, and the copy is behind it in the queue: it is dropped unread, so a backlog
 * drains at the cost of a glance a datagram instead of being answered twice. Only by the kernel's
 * receive timestamp (the batched socket): the backlog's age is no measure of one datagram's wait.
 */
const STALE_AFTER_MS = 500;
/** How often the TLS certificate and key files are looked at for a renewal. */
const CERTIFICATE_POLL_MS = 2000;

export interface EdgeOptions {
  /** `--sip TRANSPORT:HOST:PORT`, at most one per transport; port 0 binds an ephemeral port (see the returned listeners). */
  listen: readonly Listener[];
  /** `--sip-upstream HOST:PORT`; a name is resolved once, at start. Its TCP port is the same as its UDP one. */
  upstream: Endpoint;
  /** Answer denials with a status (603 Rejected by ACL by default) or drop them silently. */
  reject: RejectPolicy;
  /** The key of the branch MAC (pipeline.ts); random per process when absent. */
  branchKey?: string;
  /** New calls are answered 503 once the receive queue has been non-empty this long (ms). */
  shedAfterMs?: number;
  /** A new call's INVITE that waited this long in the receive queue (ms) is dropped unread. */
  staleAfterMs?: number;
  /** Relay to the upstream from a socket of this process's own (SIP workers share `listen`). */
  ownUpstreamSocket?: boolean;
  /** SIP workers: how many processes listen on the UDP listener (each binds it, SO_REUSEPORT). */
  workers?: number;
  /** Node's dgram instead of the batched socket (which is used when it is built). */
  socket?: 'batch' | 'dgram';
  /** api.md §7.1: send the platform's outbound requests, from this node's dedicated IPs (workers share their sockets too). */
  egress?: { pool: EgressSource; port: number };
  /**
   * Files: `cert` and `key` serve a tls listener (`--sip-tls-cert`, `--sip-tls-key`), re-read when
   * they change; `ca` is trusted for outbound TLS besides Node's list (`--sip-tls-ca`).
   */
  tls?: { cert?: string; key?: string; ca?: string };
  /** Per-source and per-connection limits of the TCP and TLS connections. */
  streamLimits?: StreamLimits;
  /** Where the per-source connection limit is counted (SIP workers: the primary); by default here. */
  admission?: SourceAdmission;
}

export interface EdgeDeps {
  registry: Registry;
  logger: Logger;
}

export interface RunningEdge {
  /** Where the first listener is bound. */
  address: Endpoint;
  /** Every listener, where it is bound. */
  listeners: Listener[];
  /** UDP through the batched socket or Node's dgram (the fallback where the addon is not built). */
  socket: 'batch' | 'dgram';
  /** The sockets on this node's dedicated IPs, for health. */
  egress(): EgressSocketStatus[];
  /** Reads the TLS certificate and key again (SIGHUP); a pair that does not load leaves the old one serving. */
  reloadTls(): void;
  close(): Promise<void>;
}

export async function startEdge(opts: EdgeOptions, rules: DecisionReader, deps: EdgeDeps): Promise<RunningEdge> {
  if (opts.listen.length === 0) throw new Error('the SIP edge needs a --sip listener');
  const datagram = opts.listen.find((l) => l.transport === 'udp');
  const streamListens = opts.listen.filter((l): l is Listener & { transport: StreamTransport } => l.transport !== 'udp');
  const ipv6 = isIP(await resolve((datagram ?? opts.listen[0]!).host)) === 6;
  // An IPv4 socket cannot send to the ::1 a name may resolve to; an IPv6 one reaches both.
  const upstream = { host: await resolve(opts.upstream.host, ipv6 ? undefined : 4), port: opts.upstream.port };
  let tlsFiles: { cert: string; key: string } | undefined;
  if (streamListens.some((l) => l.transport === 'tls')) {
    if (opts.tls?.cert === undefined || opts.tls.key === undefined) throw new Error('a tls: listener needs --sip-tls-cert and --sip-tls-key');
    tlsFiles = { cert: opts.tls.cert, key: opts.tls.key };
  }
  const certificate = tlsFiles && readCertificate(tlsFiles);
  const metrics = createEdgeMetrics(deps.registry);
  const logger = deps.logger.child({ component: 'sip-edge' });
  const sockets = edgeSockets(deps.logger, opts.socket);
  const udp = datagram === undefined ? undefined : await openDatagram(sockets, datagram, upstream, opts.ownUpstreamSocket ? (opts.workers ?? 1) : 'own', {
    onMessage: (queue, bytes, host, port, waitedMs) => receive(queue, bytes, host, port, undefined, waitedMs),
    onError: (error) => socketError(error),
  });
  const streams = new Streams({
    limits: opts.streamLimits ?? DEFAULT_STREAM_LIMITS,
    logger,
    events: metrics.stream,
    onMessage: receiveStream,
    ...(opts.tls?.ca === undefined ? {} : { ca: readFileSync(opts.tls.ca, 'latin1') }),
    ...(opts.admission === undefined ? {} : { admission: opts.admission }),
  });
  metrics.watchConnections(() => streams.connections());
  const streamListeners: Array<Listener & { transport: StreamTransport }> = [];
  const streamSelf: Partial<Record<StreamTransport, Endpoint>> = {};
  try {
    for (const listen of streamListens) {
      const bound = await streams.listen(listen.transport, { host: await resolve(listen.host), port: listen.port }, listen.transport === 'tls' ? certificate : undefined);
      streamListeners.push({ transport: listen.transport, ...bound });
      streamSelf[listen.transport] = { host: isUnspecified(bound.host) ? await localAddressToward(upstream) : bound.host, port: bound.port };
    }
  } catch (error) {
    await streams.close();
    await udp?.close();
    throw error;
  }
  const listeners: Listener[] = [...(udp ? [{ transport: 'udp' as const, ...udp.address }] : []), ...streamListeners];
  // The Vias the edge writes must name an address the upstream can answer to, not 0.0.0.0.
  const self = udp?.self ?? Object.values(streamSelf)[0]!;
  const ctx: EdgeContext = {
    rules,
    self,
    ...(streamListeners.length > 0 ? { streams: streamSelf } : {}),
    upstream,
    reject: opts.reject,
    branchKey: opts.branchKey ?? randomBytes(32).toString('base64url'),
  };
  /** The address a connection from the main sockets is opened from: the listener's, when it names one. */
  const dialFrom = (transport: StreamTransport): string | undefined => {
    const listen = streamListens.find((l) => l.transport === transport) ?? streamListens[0] ?? datagram!;
    return isUnspecified(listen.host) ? undefined : localAddress(ctx, undefined, transport).host;
  };

  // A packet that trips a bug can be sent a thousand times a second: one line a second, counted.
  const failures = new ThrottledLog<{ error: unknown; source: Endpoint }>((failure, suppressed) => {
    const more = suppressed > 0 ? { suppressed } : {};
    if (failure === undefined) logger.error(more, 'SIP packet handling failed (more times)');
    else logger.error({ err: failure.error, source: formatHostPort(failure.source), ...more }, 'SIP packet handling failed');
  });
  const socketError = (error: Error) => {
    metrics.socketError();
    logger.warn({ err: error }, 'SIP socket error');
  };
  const names = new NameCache();
  const unresolved = new ThrottledLog<{ error: unknown; host: string }>((failure, suppressed) => {
    const more = suppressed > 0 ? { suppressed } : {};
    if (failure === undefined) logger.warn(more, 'cannot resolve an outbound Request-URI host (more times)');
    else logger.warn({ err: failure.error, host: failure.host, ...more }, 'cannot resolve an outbound Request-URI host');
  });
  // Each dedicated IP's socket has its own receive queue, so its own measure of the backlog.
  const queues = new Map<string, QueueDelay>();
  const egress = opts.egress && new EgressSockets({
    port: opts.egress.port,
    recvBufferSize: RECV_BUFFER_BYTES,
    logger,
    onMessage: (ip, bytes, rinfo) => {
      let queue = queues.get(ip);
      if (queue === undefined) queues.set(ip, (queue = new QueueDelay(DGRAM_READS_PER_TURN)));
      receive(queue, bytes, rinfo.address, rinfo.port, ip);
    },
    onError: (_ip, error) => socketError(error),
  });
  if (opts.egress && egress) {
    const { pool, port } = opts.egress;
    ctx.egress = { pool, port, holds: (ip) => egress.holds(ip) };
    pool.onHostedChange = (ips) => egress.sync(ips);
    egress.sync(pool.hosted());
  }

  /** Sends from `out`; `to` may name a host (an outbound Request-URI's), resolved and kept 30 s. */
  function send(out: Pick<EdgeSocket, 'send'>, bytes: Buffer, to: Endpoint, v6: boolean): void {
    const address = names.resolve(to.host, v6 ? 6 : 4);
    // No callback: Node then tries the send at once without allocating a request, and a failure
    // arrives as the socket's 'error' event.
    if (typeof address === 'string') out.send(bytes, to.port, v6 ? mapped(address) : address);
    // What is sent is always serialised anew (pipeline.ts), never the batch's reused memory.
    else address.then((resolved) => out.send(bytes, to.port, v6 ? mapped(resolved) : resolved), unresolvable(to));
  }

  const unresolvable = (to: Endpoint) => (error: unknown) => {
    metrics.count({ action: 'drop', reason: 'unresolvable' });
    unresolved.add({ error, host: to.host });
  };

  /**
   * Callers hear the edge from the address they sent to; the upstream and carriers from the one
   * its Via names: a dedicated IP's socket (`from`), else this process's socket towards them.
   */
  function sendDatagram(bytes: Buffer, to: Endpoint, from: string | undefined, towardsCaller: boolean): void {
    if (from === undefined) {
      const out = towardsCaller ? udp?.socket : udp?.toUpstream;
      // A response over UDP to a request that came on a stream, with no UDP listener.
      if (out === undefined) return metrics.count({ action: 'drop', reason: 'no_socket' });
      return send(out, bytes, to, ipv6);
    }
    const out = egress?.socketOf(from);
    // The pool moved the IP off this host between the decision and now.
    if (out === undefined) return metrics.count({ action: 'drop', reason: 'no_socket' });
    send(out, bytes, to, isIP(from) === 6);
  }

  /**
   * A response goes on the connection its request came in on, or nowhere; a request on the
   * connection kept to its next hop, opened first when there is none (RFC 3261 §18.1.1, §18.2.2).
   */
  function sendStream(outcome: Extract<Outcome, { action: 'forward' }> & { transport: StreamTransport }): void {
    const { transport, to, from, bytes, direction } = outcome;
    if (direction === 'response') {
      if (!streams.sendBack(transport, to, bytes)) metrics.count({ action: 'drop', reason: 'no_connection' });
      return;
    }
    const dial = {
      localAddress: from ?? dialFrom(transport),
      ...(from === undefined ? {} : { dedicatedIp: from }),
      ...(isIP(to.host) === 0 ? { servername: to.host } : {}),
      // The upstream's connection stays open however long it idles; a carrier's is let go.
      keep: direction === 'request',
    };
    const toAddress = (address: string) => {
      if (!streams.sendRequest(transport, { host: address, port: to.port }, bytes, dial)) metrics.count({ action: 'drop', reason: 'connection_limit' });
    };
    const address = names.resolve(to.host, (from === undefined ? ipv6 : isIP(from) === 6) ? 6 : 4);
    if (typeof address === 'string') toAddress(address);
    else address.then(toAddress, unresolvable(to));
  }

  /** What `outcome` says, done; `arrival`: the connection the message came on (none: a datagram). */
  function act(outcome: Outcome, source: Endpoint, dedicatedIp: string | undefined, arrival: StreamConnection | undefined): void {
    metrics.count(outcome);
    if (outcome.action === 'forward') {
      if (outcome.direction === 'outbound') metrics.sentFrom(outcome.from ?? self.host);
      if (outcome.transport === 'udp') sendDatagram(outcome.bytes, outcome.to, outcome.from, outcome.direction === 'response');
      else sendStream(outcome as typeof outcome & { transport: StreamTransport });
    } else if (outcome.action === 'reject' && outcome.reply) {
      // An answer goes back the way its request came.
      if (arrival === undefined) sendDatagram(outcome.reply.bytes, outcome.reply.to, dedicatedIp, true);
      else streams.write(arrival, outcome.reply.bytes);
    } else if (outcome.action === 'malformed') {
      logger.debug({ source: formatHostPort(source), detail: outcome.detail, transport: arrival?.transport ?? 'udp' }, 'malformed SIP');
      // A stream whose message cannot be read cannot be trusted to frame the next one either.
      if (arrival !== undefined) streams.drop(arrival, 'malformed');
    }
  }

  function decide(bytes: Buffer, source: Endpoint, shed: boolean, dedicatedIp: string | undefined, transport: Transport): Outcome {
    try {
      return handlePacket(ctx, bytes, source, shed, dedicatedIp, transport);
    } catch (error) {
      // A bug must not take the process (and the API beside it) down; it is counted and logged.
      failures.add({ error, source });
      return { action: 'drop', reason: 'internal_error' };
    }
  }

  const shedAfterMs = opts.shedAfterMs ?? SHED_AFTER_MS;
  const staleAfterMs = opts.staleAfterMs ?? STALE_AFTER_MS;
  /** `waitedMs`: the datagram's time in the receive queue where the socket knows it; else the queue's backlog stands for it. */
  function receive(queue: QueueDelay, bytes: Buffer, host: string, port: number, dedicatedIp?: string, waitedMs?: number): void {
    metrics.received();
    const waited = waitedMs ?? queue.read();
    metrics.queueDelay(waited);
    if (waitedMs !== undefined && waitedMs > staleAfterMs && isNewCall(bytes)) return metrics.count({ action: 'drop', reason: 'stale' });
    const source = { host: unmapped(host), port };
    act(decide(bytes, source, waited > shedAfterMs, dedicatedIp, 'udp'), source, dedicatedIp, undefined);
  }

  // Over a stream the kernel's flow control holds a sender back and nothing is retransmitted, so
  // no backlog builds up to shed.
  function receiveStream(connection: StreamConnection, bytes: Buffer): void {
    act(decide(bytes, connection.remote, false, connection.dedicatedIp, connection.transport), connection.remote, connection.dedicatedIp, connection);
  }

  udp?.start();

  // A renewal writes the certificate and the key one after the other: the next change completes it.
  const renewals =
    tlsFiles &&
    followCertificate(streams, tlsFiles, {
      intervalMs: CERTIFICATE_POLL_MS,
      onReloaded: () => logger.info('SIP TLS certificate loaded'),
      onFailed: (error) => logger.warn({ err: error }, 'SIP TLS certificate not loaded; the previous one still serves'),
    });

  logger.info(
    { listen: listeners.map((l) => `${l.transport}:${formatHostPort(l)}`), via: formatHostPort(self), upstream: formatHostPort(upstream), reject: opts.reject.mode, socket: sockets.kind },
    'SIP edge listening',
  );
  return {
    address: listeners[0]!,
    listeners,
    socket: sockets.kind,
    egress: () => egress?.status() ?? [],
    reloadTls: () => renewals?.reload(),
    close: async () => {
      renewals?.stop();
      if (opts.egress) opts.egress.pool.onHostedChange = null;
      await egress?.close();
      await streams.close();
      await udp?.close();
    },
  };
}

interface Datagram {
  socket: EdgeSocket;
  /** The socket requests leave for the upstream from (in a worker, its own). */
  toUpstream: EdgeSocket;
  address: Endpoint;
  /** The address the edge's UDP Vias name. */
  self: Endpoint;
  /** Delivers datagrams from now on (the edge is set up). */
  start(): void;
  close(): Promise<void>;
}

interface DatagramHandlers {
  /** `queue`: the backlog of the socket it came on; `bytes` is valid during the call only; `waitedMs` as EdgeSocketOptions'. */
  onMessage(queue: QueueDelay, bytes: Buffer, host: string, port: number, waitedMs?: number): void;
  onError(error: Error): void;
}

/** `share`: 'own', or how many SIP workers listen on `listen` (udp-socket.ts). */
async function openDatagram(sockets: EdgeSockets, listen: Endpoint, upstream: Endpoint, share: 'own' | number, on: DatagramHandlers): Promise<Datagram> {
  const listenHost = await resolve(listen.host);
  const open = (port: number, as: 'own' | number) => {
    const queue = new QueueDelay(sockets.readsPerTurn);
    // A large receive buffer rides out bursts (the kernel caps it at net.core.rmem_max).
    return sockets.open({
      host: listenHost,
      port,
      share: as,
      recvBufferSize: RECV_BUFFER_BYTES,
      onMessage: (bytes, host, from, waitedMs) => on.onMessage(queue, bytes, host, from, waitedMs),
      onError: on.onError,
    });
  };
  const socket = await open(listen.port, share);
  const bound = socket.address();
  const address = { host: bound.address, port: bound.port };
  // Workers share the listener; each relays upstream from a socket of its own, so that all the
  // responses of a transaction come back to the one process that relays them, in their order.
  const toUpstream = share === 'own' ? socket : await open(0, 'own');
  const self = { host: isUnspecified(address.host) ? await localAddressToward(upstream) : address.host, port: toUpstream.address().port };
  return {
    socket,
    toUpstream,
    address,
    self,
    start() {
      socket.start();
      if (toUpstream !== socket) toUpstream.start();
    },
    close: async () => {
      await socket.close();
      if (toUpstream !== socket) await toUpstream.close();
    },
  };
}

async function resolve(host: string, family?: 4 | 6): Promise<string> {
  return isIP(host) ? host : (await lookup(host, { family })).address;
}

function isUnspecified(host: string): boolean {
  return host === '0.0.0.0' || host === '::';
}

/** The local address the system would use to reach `to`: a connected UDP socket sends nothing. */
async function localAddressToward(to: Endpoint): Promise<string> {
  const probe = createSocket(isIP(to.host) === 6 ? 'udp6' : 'udp4');
  try {
    await new Promise<void>((done, fail) => {
      probe.once('error', fail);
      probe.connect(to.port, to.host, () => done());
    });
    return probe.address().address;
  } finally {
    probe.close();
  }
}

function mapped(host: string): string {
  return isIP(host) === 4 ? `::ffff:${host}` : host;
}
