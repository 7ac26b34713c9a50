// A SIP peer on one TCP or TLS connection, for the edge's stream tests: a caller connecting to
// the edge, or the upstream's end of the connection the edge opened. Messages read are cut by
// the edge's own framer and parsed; each can be awaited in turn.
import { once } from 'node:events';
import { connect as connectTcp, createServer, type Server, type Socket } from 'node:net';
import { connect as connectTls, createServer as createTlsServer } from 'node:tls';
import type { Endpoint } from '../../src/edge/endpoint.ts';
import { SipFramer } from '../../src/edge/framer.ts';
import { parseMessage, type SipMessage } from '../../src/edge/message.ts';

export class StreamPeer {
  private readonly framer = new SipFramer();
  private readonly queue: SipMessage[] = [];
  private waiting: ((message: SipMessage) => void) | null = null;
  readonly closed: Promise<void>;

  constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      for (const item of this.framer.push(chunk)) {
        if (item.kind !== 'message') continue;
        const message = parseMessage(item.bytes, true)!;
        const wake = this.waiting;
        this.waiting = null;
        if (wake) wake(message);
        else this.queue.push(message);
      }
    });
    socket.on('error', () => {});
    this.closed = once(socket, 'close').then(() => undefined);
  }

  static async connect(transport: 'tcp' | 'tls', to: Endpoint, opts: { localAddress?: string; ca?: Buffer } = {}): Promise<StreamPeer> {
    const common = { host: to.host, port: to.port, ...(opts.localAddress ? { localAddress: opts.localAddress } : {}) };
    const socket = transport === 'tls' ? connectTls({ ...common, ...(opts.ca ? { ca: opts.ca } : {}) }) : connectTcp(common);
    await once(socket, transport === 'tls' ? 'secureConnect' : 'connect');
    return new StreamPeer(socket);
  }

  get local(): Endpoint {
    return { host: this.socket.localAddress!, port: this.socket.localPort! };
  }

  send(bytes: Buffer | string): void {
    this.socket.write(typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes);
  }

  /** The next message read, or a rejection after `ms`. */
  next(ms = 3000): Promise<SipMessage> {
    const queued = this.queue.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((done, fail) => {
      const timer = setTimeout(() => fail(new Error(`no SIP message within ${ms} ms`)), ms);
      this.waiting = (message) => {
        clearTimeout(timer);
        done(message);
      };
    });
  }

  /** Resolves when the far end closes the connection; rejects after `ms`. */
  closedWithin(ms = 3000): Promise<void> {
    return Promise.race([this.closed, new Promise<never>((_, fail) => setTimeout(() => fail(new Error(`still open after ${ms} ms`)), ms).unref())]);
  }

  close(): void {
    this.socket.destroy();
  }
}

/** A TCP (or, given a certificate and key, TLS) server whose connections become peers, in the order they arrive. */
export async function listenForPeers(
  host: string,
  tls?: { cert: Buffer; key: Buffer },
): Promise<{ address: Endpoint; peers: StreamPeer[]; connections(): number; next(ms?: number): Promise<StreamPeer>; close(): Promise<void> }> {
  const peers: StreamPeer[] = [];
  let waiting: ((peer: StreamPeer) => void) | null = null;
  const arrived = (socket: Socket) => {
    const peer = new StreamPeer(socket);
    peers.push(peer);
    const wake = waiting;
    waiting = null;
    wake?.(peer);
  };
  const server: Server = tls ? createTlsServer(tls, arrived) : createServer(arrived);
  // TCP connections, a TLS one counted before (or without) its handshake.
  let connections = 0;
  server.on('connection', () => connections++);
  server.on('tlsClientError', () => {});
  await new Promise<void>((done) => server.listen(0, host, () => done()));
  const { port } = server.address() as { port: number };
  let taken = 0;
  return {
    address: { host, port },
    peers,
    connections: () => connections,
    next(ms = 3000) {
      if (taken < peers.length) return Promise.resolve(peers[taken++]!);
      return new Promise((done, fail) => {
        const timer = setTimeout(() => fail(new Error(`no connection within ${ms} ms`)), ms);
        waiting = (peer) => {
          clearTimeout(timer);
          taken++;
          done(peer);
        };
      });
    },
    async close() {
      for (const peer of peers) peer.close();
      await new Promise<void>((done) => server.close(() => done()));
    },
  };
}
