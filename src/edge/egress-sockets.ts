// The edge's UDP sockets on dedicated IPs (api.md §7.1): one on IP:PORT for every pool IP whose
// host is this node's, opened and closed as the pool changes. An address that cannot be bound
// (not on this machine, port taken) is logged once, reported in health and tried again now and
// then; it never stops the edge.
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { isIP } from 'node:net';
import type { Logger } from 'pino';

export interface EgressSocketStatus {
  ip: string;
  bound: boolean;
  /** Why it is not bound (null when it is, or while the first bind is under way). */
  error: string | null;
}

interface Held {
  ip: string;
  socket: Socket | null;
  bound: boolean;
  error: string | null;
  /** Set once the pool no longer lists the IP: a bind still under way closes what it opens. */
  dropped: boolean;
}

export interface EgressSocketsOptions {
  port: number;
  recvBufferSize: number;
  logger: Logger;
  /** A datagram received on the dedicated IP `ip`. */
  onMessage(ip: string, bytes: Buffer, rinfo: RemoteInfo): void;
  /** An error on a bound socket (a failed send). */
  onError(ip: string, error: Error): void;
  retryMs?: number;
}

const RETRY_MS = 5000;

export class EgressSockets {
  private readonly held = new Map<string, Held>();
  private readonly retry: NodeJS.Timeout;

  constructor(private readonly options: EgressSocketsOptions) {
    this.retry = setInterval(() => {
      for (const entry of this.held.values()) if (!entry.bound && entry.socket === null) this.bind(entry);
    }, options.retryMs ?? RETRY_MS);
    this.retry.unref();
  }

  /** Holds a socket on exactly `ips`: binds the new ones, closes those no longer listed. */
  sync(ips: readonly string[]): void {
    const wanted = new Set(ips);
    for (const [ip, entry] of this.held) {
      if (wanted.has(ip)) continue;
      entry.dropped = true;
      entry.socket?.close();
      this.held.delete(ip);
      this.options.logger.info({ ip }, 'dedicated IP left this host: socket closed');
    }
    for (const ip of ips) {
      if (this.held.has(ip)) continue;
      const entry: Held = { ip, socket: null, bound: false, error: null, dropped: false };
      this.held.set(ip, entry);
      this.bind(entry);
    }
  }

  /** The bound socket on `ip`, or undefined. */
  socketOf(ip: string): Socket | undefined {
    const entry = this.held.get(ip);
    return entry?.bound ? entry.socket! : undefined;
  }

  holds(ip: string): boolean {
    return this.held.get(ip)?.bound === true;
  }

  status(): EgressSocketStatus[] {
    return [...this.held.values()].map(({ ip, bound, error }) => ({ ip, bound, error }));
  }

  async close(): Promise<void> {
    clearInterval(this.retry);
    const closing = [...this.held.values()].map((entry) => {
      entry.dropped = true;
      const socket = entry.socket;
      return socket ? new Promise<void>((done) => socket.close(() => done())) : undefined;
    });
    this.held.clear();
    await Promise.all(closing);
  }

  private bind(entry: Held): void {
    const { port, recvBufferSize, logger } = this.options;
    const socket = createSocket({ type: isIP(entry.ip) === 6 ? 'udp6' : 'udp4', recvBufferSize });
    entry.socket = socket;
    socket.once('error', (error) => {
      socket.close();
      if (entry.dropped) return;
      entry.socket = null;
      // Logged once per reason, not on every retry.
      if (entry.error !== error.message) logger.warn({ ip: entry.ip, port, err: error }, 'cannot bind a dedicated IP: calls will not leave from it');
      entry.error = error.message;
    });
    socket.bind(port, entry.ip, () => {
      if (entry.dropped) {
        socket.close();
        return;
      }
      socket.removeAllListeners('error');
      socket.on('error', (error) => this.options.onError(entry.ip, error));
      socket.on('message', (bytes, rinfo) => this.options.onMessage(entry.ip, bytes, rinfo));
      if (entry.error !== null) logger.info({ ip: entry.ip, port }, 'dedicated IP bound after all');
      entry.bound = true;
      entry.error = null;
    });
  }
}
