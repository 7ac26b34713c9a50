// The SIP edge's socket (api.md §7): one UDP socket both receives from callers and relays to
// the upstream, so the upstream's responses come back to it and are routed by Via.
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { DecisionReader } from '../services/decision-types.ts';
import type { EgressSource } from '../services/egress-pool.ts';
import { EgressSockets, type EgressSocketStatus } from './egress-sockets.ts';
import { formatHostPort, type Endpoint } from './endpoint.ts';
import { createEdgeMetrics } from './metrics.ts';
import { NameCache } from './name-cache.ts';
import { handlePacket, type EdgeContext, type Outcome } from './pipeline.ts';
import type { RejectPolicy } from './reply.ts';
import { QueueDelay } from './queue-delay.ts';
import { ThrottledLog } from './throttled-log.ts';
import { DGRAM_READS_PER_TURN, edgeSockets, type EdgeSocket } from './udp-socket.ts';

// What the CLI needs to turn flags into EdgeOptions, from one module.
export { parseSipListen, parseSipUpstream, EndpointError, type Endpoint } from './endpoint.ts';
export { parseSipReject, DEFAULT_REJECT, type RejectPolicy } from './reply.ts';

const RECV_BUFFER_BYTES = 4 * 1024 * 1024;
/**
 * Once datagrams have waited this long, new calls are answered 503: well inside SIP's 500 ms
 * retransmission timer, so callers do not resend into the backlog and it cannot outlive the burst.
 */
const SHED_AFTER_MS = 100;

export interface EdgeOptions {
  /** `--sip udp:HOST:PORT`; port 0 binds an ephemeral port (see the returned address). */
  listen: Endpoint;
  /** `--sip-upstream HOST:PORT`; a name is resolved once, at start. */
  upstream: Endpoint;
  /** Answer denials with a status (603 Rejected by ACL by default) or drop them silently. */
  reject: RejectPolicy;
  /** The key of the branch MAC (pipeline.ts); random per process when absent. */
  branchKey?: string;
  /** New calls are answered 503 once the receive queue has been non-empty this long (ms). */
  shedAfterMs?: number;
  /** Relay to the upstream from a socket of this process's own (SIP workers share `listen`). */
  ownUpstreamSocket?: boolean;
  /** SIP workers: how many processes listen on `listen` (each binds it, SO_REUSEPORT). */
  workers?: number;
  /** Node's dgram instead of the batched socket (which is used when it is built). */
  socket?: 'batch' | 'dgram';
  /** api.md §7.1: send the platform's outbound requests, from this node's dedicated IPs (workers share their sockets too). */
  egress?: { pool: EgressSource; port: number };
}

export interface EdgeDeps {
  registry: Registry;
  logger: Logger;
}

export interface RunningEdge {
  /** Where the socket is bound. */
  address: Endpoint;
  /** The batched socket or Node's dgram (the fallback where the addon is not built). */
  socket: 'batch' | 'dgram';
  /** The sockets on this node's dedicated IPs, for health. */
  egress(): EgressSocketStatus[];
  close(): Promise<void>;
}

export async function startEdge(opts: EdgeOptions, rules: DecisionReader, deps: EdgeDeps): Promise<RunningEdge> {
  const listenHost = await resolve(opts.listen.host);
  const ipv6 = isIP(listenHost) === 6;
  // An IPv4 socket cannot send to the ::1 a name may resolve to; an IPv6 one reaches both.
  const upstream = { host: await resolve(opts.upstream.host, ipv6 ? undefined : 4), port: opts.upstream.port };
  const sockets = edgeSockets(deps.logger, opts.socket);
  const open = (port: number, share: 'own' | number) => {
    const queue = new QueueDelay(sockets.readsPerTurn);
    // A large receive buffer rides out bursts (the kernel caps it at net.core.rmem_max).
    return sockets.open({
      host: listenHost,
      port,
      share,
      recvBufferSize: RECV_BUFFER_BYTES,
      onMessage: (bytes, host, from) => receive(queue, bytes, host, from),
      onError: (error) => socketError(error),
    });
  };
  const socket = await open(opts.listen.port, opts.ownUpstreamSocket ? (opts.workers ?? 1) : 'own');
  const bound = socket.address();
  const address = { host: bound.address, port: bound.port };
  // Workers share `socket`; each relays upstream from a socket of its own, so that all the
  // responses of a transaction come back to the one process that relays them, in their order.
  const toUpstream = opts.ownUpstreamSocket ? await open(0, 'own') : socket;
  const viaPort = toUpstream.address().port;
  // The Via the edge writes must be an address the upstream can answer to, not 0.0.0.0.
  const self = { host: isUnspecified(address.host) ? await localAddressToward(upstream) : address.host, port: viaPort };
  const ctx: EdgeContext = { rules, self, upstream, reject: opts.reject, branchKey: opts.branchKey ?? randomBytes(32).toString('base64url') };
  const metrics = createEdgeMetrics(deps.registry);
  const logger = deps.logger.child({ component: 'sip-edge' });
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
    else {
      // The batched socket reuses a received datagram's memory once its batch is handled.
      bytes = Buffer.from(bytes);
      address.then(
        (resolved) => out.send(bytes, to.port, v6 ? mapped(resolved) : resolved),
        (error: unknown) => {
          metrics.count({ action: 'drop', reason: 'unresolvable' });
          unresolved.add({ error, host: to.host });
        },
      );
    }
  }

  /**
   * Callers hear the edge from the address they sent to; the upstream and carriers from the one
   * its Via names: a dedicated IP's socket (`from`), else this process's socket towards them.
   */
  function deliver(bytes: Buffer, to: Endpoint, from: string | undefined, towardsCaller: boolean): void {
    if (from === undefined) return send(towardsCaller ? socket : toUpstream, bytes, to, ipv6);
    const out = egress?.socketOf(from);
    // The pool moved the IP off this host between the decision and now.
    if (out === undefined) return metrics.count({ action: 'drop', reason: 'no_socket' });
    send(out, bytes, to, isIP(from) === 6);
  }

  const shedAfterMs = opts.shedAfterMs ?? SHED_AFTER_MS;
  function receive(queue: QueueDelay, bytes: Buffer, host: string, port: number, dedicatedIp?: string): void {
    metrics.received();
    const waited = queue.read();
    metrics.queueDelay(waited);
    const source = { host: unmapped(host), port };
    let outcome: Outcome;
    try {
      outcome = handlePacket(ctx, bytes, source, waited > shedAfterMs, dedicatedIp);
    } catch (error) {
      // A bug must not take the process (and the API beside it) down; it is counted and logged.
      failures.add({ error, source });
      outcome = { action: 'drop', reason: 'internal_error' };
    }
    metrics.count(outcome);
    if (outcome.action === 'forward') {
      if (outcome.direction === 'outbound') metrics.sentFrom(outcome.from ?? self.host);
      deliver(outcome.bytes, outcome.to, outcome.from, outcome.direction === 'response');
    } else if (outcome.action === 'reject' && outcome.reply) deliver(outcome.reply.bytes, outcome.reply.to, dedicatedIp, true);
    else if (outcome.action === 'malformed') logger.debug({ source: formatHostPort(source), detail: outcome.detail }, 'malformed SIP');
  }

  socket.start();
  if (toUpstream !== socket) toUpstream.start();
  logger.info(
    { listen: formatHostPort(address), via: formatHostPort(self), upstream: formatHostPort(upstream), reject: opts.reject.mode, socket: sockets.kind },
    'SIP edge listening',
  );
  return {
    address,
    socket: sockets.kind,
    egress: () => egress?.status() ?? [],
    close: async () => {
      if (opts.egress) opts.egress.pool.onHostedChange = null;
      await egress?.close();
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

/** An IPv6 socket reports IPv4 senders as ::ffff:a.b.c.d; the rules know them as a.b.c.d. */
function unmapped(host: string): string {
  return host.startsWith('::ffff:') && isIP(host.slice(7)) === 4 ? host.slice(7) : host;
}

function mapped(host: string): string {
  return isIP(host) === 4 ? `::ffff:${host}` : host;
}
