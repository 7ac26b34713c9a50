// The edge's SIP connections over TCP and TLS (RFC 3261 §18): the listeners callers connect to,
// the connections the edge opens itself (to the upstream, to carriers) and keeps, and the limits
// that keep any one source from holding more than its share. Bytes in are cut into messages by
// framer.ts and handed on one at a time; what to do with them is server.ts's and pipeline.ts's.
import { connect as connectTcp, createServer, type Server, type Socket } from 'node:net';
import { connect as connectTls, createSecureContext, rootCertificates, TLSSocket, type SecureContext, type SecureContextOptions } from 'node:tls';
import type { Logger } from 'pino';
import { formatHostPort, unmapped, type Endpoint, type StreamTransport } from './endpoint.ts';
import { SipFramer } from './framer.ts';
import { SipParseError } from './message.ts';
import { ThrottledLog } from './throttled-log.ts';

export interface StreamLimits {
  /** Connections open at once in this process, accepted and opened together. */
  maxConnections: number;
  /** Connections accepted from one source address at once. */
  maxConnectionsPerSource: number;
  /** Bytes one connection may hold: the incomplete message read so far and what waits to be sent. */
  maxBufferedPerConnection: number;
  /** The same, over all the connections of one source address. */
  maxBufferedPerSource: number;
  /** A connection with nothing read or sent for this long is closed; so is one whose incomplete message is older. */
  idleTimeoutMs: number;
}

export const DEFAULT_STREAM_LIMITS: StreamLimits = {
  maxConnections: 10_000,
  maxConnectionsPerSource: 64,
  maxBufferedPerConnection: 65_536,
  maxBufferedPerSource: 1_048_576,
  idleTimeoutMs: 120_000,
};

/** Why the edge closed a connection. */
export type CloseReason = 'malformed' | 'buffer' | 'idle';
/** Why it refused one. */
export type RefuseReason = 'per_source' | 'total';

export interface StreamEvents {
  accepted(transport: StreamTransport): void;
  refused(transport: StreamTransport, reason: RefuseReason): void;
  closed(transport: StreamTransport, reason: CloseReason): void;
  message(transport: StreamTransport): void;
}

/** What one source address holds over all its connections in this process. */
interface SourceUsage {
  connections: number;
  buffered: number;
}

/**
 * Counts each source address's connections against its limit: in this process, or with SIP
 * workers in the primary, which every worker asks as it accepts (cluster.ts), so that a source
 * holds no more however the connections are dealt out.
 */
export interface SourceAdmission {
  /** Whether `host` may hold one more connection; each yes is given back by one release. */
  admit(host: string): boolean | Promise<boolean>;
  release(host: string): void;
}

export class LocalAdmission implements SourceAdmission {
  private readonly held = new Map<string, number>();
  constructor(private readonly max: number) {}

  admit(host: string): boolean {
    const count = this.held.get(host) ?? 0;
    if (count >= this.max) return false;
    this.held.set(host, count + 1);
    return true;
  }

  release(host: string): void {
    const count = (this.held.get(host) ?? 0) - 1;
    if (count > 0) this.held.set(host, count);
    else this.held.delete(host);
  }
}

export class StreamConnection {
  readonly framer = new SipFramer();
  /** Bytes counted against the limits at the last look. */
  accounted = 0;
  /** When the incomplete message held began to arrive (0: none held). */
  partialSince = 0;
  closed = false;

  constructor(
    readonly transport: StreamTransport,
    readonly socket: Socket,
    /** The far end: a caller's address and port, or the upstream's or a carrier's. */
    readonly remote: Endpoint,
    /** The dedicated IP the edge opened it from (api.md §7.1); undefined for the main address. */
    readonly dedicatedIp: string | undefined,
    /** Null for connections the edge opened: the limits per source are for what others open. */
    readonly usage: SourceUsage | null,
  ) {}
}

export interface StreamsOptions {
  limits: StreamLimits;
  logger: Logger;
  events: StreamEvents;
  /** One message read from a connection; it may close the connection (drop). */
  onMessage(connection: StreamConnection, bytes: Buffer): void;
  /** Certificates trusted for outbound TLS besides Node's own list (a carrier's private CA). */
  ca?: string;
  /** Where the per-source connection limit is counted; by default in this process. */
  admission?: SourceAdmission;
}

/** Options of a connection the edge opens. */
export interface Dial {
  /** The local address to open it from (a dedicated IP, or the main listener's); none: the system's choice. */
  localAddress?: string;
  dedicatedIp?: string;
  /** The name to verify a TLS peer's certificate against (the Request-URI's host), when it is one. */
  servername?: string;
  /** Kept open however long it idles (the upstream's). */
  keep: boolean;
}

const CRLF = Buffer.from('\r\n');

export class Streams {
  private readonly servers: Server[] = [];
  private secureContext: SecureContext | undefined;
  /** Accepted connections by transport and far end: where a response to a caller goes. */
  private readonly accepted = new Map<string, StreamConnection>();
  /** Connections the edge opened, by transport, local address and far end. */
  private readonly dialled = new Map<string, StreamConnection>();
  /** The same by transport and far end only, for a response to a request that came in on one. */
  private readonly dialledTo = new Map<string, StreamConnection>();
  private readonly sources = new Map<string, SourceUsage>();
  private readonly open: Record<StreamTransport, number> = { tcp: 0, tls: 0 };
  private readonly limits: StreamLimits;
  private readonly admission: SourceAdmission;
  /** Connections accepted whose source is being admitted. */
  private admitting = 0;
  private readonly dialFailures: ThrottledLog<{ error: Error; to: string }>;

  constructor(private readonly options: StreamsOptions) {
    this.limits = options.limits;
    this.admission = options.admission ?? new LocalAdmission(options.limits.maxConnectionsPerSource);
    // An upstream that is down fails every request's connection attempt: one line a second.
    this.dialFailures = new ThrottledLog((failure, suppressed) => {
      const more = suppressed > 0 ? { suppressed } : {};
      if (failure === undefined) options.logger.warn(more, 'SIP connection failed (more times)');
      else options.logger.warn({ err: failure.error, to: failure.to, ...more }, 'SIP connection failed');
    });
  }

  /** Connections open now, per transport. */
  connections(): Record<StreamTransport, number> {
    return { ...this.open };
  }

  /** Listens on `at`; `secure` (TLS only): the certificate and key. Resolves with the bound address. */
  async listen(transport: StreamTransport, at: Endpoint, secure?: SecureContextOptions): Promise<Endpoint> {
    if (transport === 'tls') this.setSecureContext(secure!);
    const server = createServer({ noDelay: true }, (raw) => this.accept(transport, raw));
    server.on('error', (error) => this.options.logger.warn({ err: error }, 'SIP stream listener error'));
    this.servers.push(server);
    await new Promise<void>((done, fail) => {
      server.once('error', fail);
      server.listen({ host: at.host, port: at.port }, () => {
        server.off('error', fail);
        done();
      });
    });
    const bound = server.address() as { address: string; port: number };
    return { host: bound.address, port: bound.port };
  }

  /** A renewed certificate: connections accepted from now on are served with it. Throws when it does not load. */
  setSecureContext(secure: SecureContextOptions): void {
    this.secureContext = createSecureContext(secure);
  }

  /** Sends on the open connection of `transport` to `to` (a response's: the one its request came on). */
  sendBack(transport: StreamTransport, to: Endpoint, bytes: Buffer): boolean {
    const key = `${transport} ${formatHostPort(to)}`;
    const connection = this.accepted.get(key) ?? this.dialledTo.get(key);
    if (connection === undefined) return false;
    this.write(connection, bytes);
    return true;
  }

  /**
   * Sends a request on the connection kept to `to` from `dial.localAddress`, opened first when
   * there is none (`to.host` an address). False when the connection limit refuses a new one.
   */
  sendRequest(transport: StreamTransport, to: Endpoint, bytes: Buffer, dial: Dial): boolean {
    const key = `${transport} ${dial.localAddress ?? ''} ${formatHostPort(to)}`;
    let connection = this.dialled.get(key);
    if (connection === undefined) {
      if (this.total() >= this.limits.maxConnections) {
        this.options.events.refused(transport, 'total');
        return false;
      }
      connection = this.dial(transport, to, dial, key);
    }
    this.write(connection, bytes);
    return true;
  }

  write(connection: StreamConnection, bytes: Buffer): void {
    if (connection.closed) return;
    connection.socket.write(bytes);
    this.account(connection);
  }

  /** Closes `connection` for `reason`, counted. */
  drop(connection: StreamConnection, reason: CloseReason): void {
    if (connection.closed) return;
    this.options.events.closed(connection.transport, reason);
    this.release(connection);
    connection.socket.destroy();
  }

  async close(): Promise<void> {
    const closing = this.servers.map((server) => new Promise<void>((done) => server.close(() => done())));
    for (const connection of [...this.accepted.values(), ...this.dialled.values()]) connection.socket.destroy();
    await Promise.all(closing);
  }

  private total(): number {
    return this.open.tcp + this.open.tls;
  }

  private accept(transport: StreamTransport, raw: Socket): void {
    const host = raw.remoteAddress === undefined ? undefined : unmapped(raw.remoteAddress);
    if (host === undefined || raw.remotePort === undefined) return void raw.destroy();
    if (this.total() + this.admitting >= this.limits.maxConnections) return this.refuse(transport, raw, 'total');
    const admitted = this.admission.admit(host);
    if (typeof admitted === 'boolean') return this.admitted(transport, raw, host, admitted);
    this.admitting++;
    admitted.then(
      (yes) => {
        this.admitting--;
        this.admitted(transport, raw, host, yes);
      },
      () => {
        this.admitting--;
        this.admitted(transport, raw, host, false);
      },
    );
  }

  private refuse(transport: StreamTransport, raw: Socket, reason: RefuseReason): void {
    this.options.events.refused(transport, reason);
    raw.destroy();
  }

  private admitted(transport: StreamTransport, raw: Socket, host: string, yes: boolean): void {
    if (!yes) return this.refuse(transport, raw, 'per_source');
    if (raw.destroyed) return this.admission.release(host);
    let usage = this.sources.get(host);
    if (usage === undefined) this.sources.set(host, (usage = { connections: 0, buffered: 0 }));
    usage.connections++;
    // Each connection is wrapped here rather than by a tls.Server, so that one count and one set
    // of timers covers its handshake and its life alike.
    let socket: Socket = raw;
    if (transport === 'tls') {
      socket = new TLSSocket(raw, { isServer: true, secureContext: this.secureContext! });
      raw.on('error', () => socket.destroy());
    }
    const connection = new StreamConnection(transport, socket, { host, port: raw.remotePort! }, undefined, usage);
    this.accepted.set(`${transport} ${formatHostPort(connection.remote)}`, connection);
    this.options.events.accepted(transport);
    this.attach(connection, false);
  }

  private dial(transport: StreamTransport, to: Endpoint, dial: Dial, key: string): StreamConnection {
    const common = { host: to.host, port: to.port, ...(dial.localAddress === undefined ? {} : { localAddress: dial.localAddress }) };
    const socket =
      transport === 'tls'
        ? connectTls({ ...common, ...(dial.servername === undefined ? {} : { servername: dial.servername }), ...(this.options.ca === undefined ? {} : { ca: [...rootCertificates, this.options.ca] }) })
        : connectTcp(common);
    socket.setNoDelay(true);
    const connection = new StreamConnection(transport, socket, to, dial.dedicatedIp, null);
    const toKey = `${transport} ${formatHostPort(to)}`;
    this.dialled.set(key, connection);
    this.dialledTo.set(toKey, connection);
    socket.on('error', (error) => this.dialFailures.add({ error, to: `${transport}:${formatHostPort(to)}` }));
    const forget = () => {
      if (this.dialled.get(key) === connection) this.dialled.delete(key);
      if (this.dialledTo.get(toKey) === connection) this.dialledTo.delete(toKey);
    };
    // From the far end's FIN on, the next request opens a new connection instead of writing into
    // one that is going away (the upstream restarted).
    socket.on('end', forget);
    socket.on('close', forget);
    this.attach(connection, dial.keep);
    return connection;
  }

  private attach(connection: StreamConnection, keep: boolean): void {
    const { socket, transport } = connection;
    this.open[transport]++;
    if (!keep) socket.setTimeout(this.limits.idleTimeoutMs, () => this.drop(connection, 'idle'));
    socket.on('data', (chunk: Buffer) => this.read(connection, chunk));
    socket.on('drain', () => this.account(connection));
    // A peer that resets or fails its handshake: nothing to do but let it close.
    socket.on('error', (error) => this.options.logger.debug({ err: error, remote: formatHostPort(connection.remote), transport }, 'SIP connection error'));
    socket.on('close', () => {
      this.open[transport]--;
      this.release(connection);
      const key = `${transport} ${formatHostPort(connection.remote)}`;
      if (this.accepted.get(key) === connection) this.accepted.delete(key);
    });
  }

  private read(connection: StreamConnection, chunk: Buffer): void {
    let framed;
    try {
      framed = connection.framer.push(chunk);
    } catch (error) {
      if (!(error instanceof SipParseError)) throw error;
      this.options.logger.debug({ remote: formatHostPort(connection.remote), detail: error.message }, 'SIP stream cannot be framed');
      return this.drop(connection, 'malformed');
    }
    for (const item of framed) {
      if (connection.closed) return;
      if (item.kind === 'ping') this.write(connection, CRLF);
      else {
        this.options.events.message(connection.transport);
        this.options.onMessage(connection, item.bytes);
      }
    }
    if (connection.closed) return;
    // A message trickled in a byte now and then would hold the connection for ever, each byte
    // renewing the idle timer: an incomplete message may not take longer than an idle spell.
    const now = performance.now();
    if (connection.framer.buffered === 0) connection.partialSince = 0;
    else if (framed.length > 0 || connection.partialSince === 0) connection.partialSince = now;
    else if (now - connection.partialSince > this.limits.idleTimeoutMs) return this.drop(connection, 'idle');
    this.account(connection);
  }

  /** Brings the connection's (and its source's) buffered bytes up to date and enforces their limits. */
  private account(connection: StreamConnection): void {
    if (connection.closed) return;
    const buffered = connection.framer.buffered + connection.socket.writableLength;
    const usage = connection.usage;
    if (usage !== null) usage.buffered += buffered - connection.accounted;
    connection.accounted = buffered;
    if (buffered > this.limits.maxBufferedPerConnection || (usage !== null && usage.buffered > this.limits.maxBufferedPerSource)) {
      this.drop(connection, 'buffer');
    }
  }

  /** Gives back what the connection held against its source's limits (once). */
  private release(connection: StreamConnection): void {
    if (connection.closed) return;
    connection.closed = true;
    const usage = connection.usage;
    if (usage === null) return;
    usage.buffered -= connection.accounted;
    usage.connections--;
    if (usage.connections === 0) this.sources.delete(connection.remote.host);
    this.admission.release(connection.remote.host);
  }
}
