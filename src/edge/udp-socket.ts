// The edge's UDP sockets behind one shape: the batched native socket (batch-socket.ts) where it
// is built, else Node's dgram. With SIP workers, each worker binds its own batched socket on the
// edge's address (SO_REUSEPORT), or shares the primary's dgram handle through Node's cluster.
import { createSocket, type Socket } from 'node:dgram';
import type { Logger } from 'pino';
import { BatchSocket, DEFAULT_BATCH, loadBatchNative, type BatchNative } from './batch-socket.ts';

export interface EdgeSocket {
  /** Delivers datagrams to onMessage from now on. */
  start(): void;
  address(): { address: string; port: number };
  /** No callback: a failure arrives at the socket's onError. */
  send(bytes: Buffer, port: number, host: string): void;
  close(): Promise<void>;
}

export interface EdgeSocketOptions {
  /** An IP address. */
  host: string;
  port: number;
  recvBufferSize: number;
  /**
   * 'own': this process's alone. A number: that many SIP worker processes listen on host:port
   * (each its own SO_REUSEPORT socket, or Node cluster's one shared handle with dgram).
   */
  share: 'own' | number;
  /** `bytes` is only valid during the call; `waitedMs`, its time in the receive queue where the kernel timestamps it (the batched socket). */
  onMessage(bytes: Buffer, host: string, port: number, waitedMs?: number): void;
  onError(error: Error): void;
}

export interface EdgeSockets {
  kind: 'batch' | 'dgram';
  /** Datagrams one readiness event reads at most (QueueDelay's measure of a full turn). */
  readsPerTurn: number;
  open(options: EdgeSocketOptions): Promise<EdgeSocket>;
}

/** libuv's uv__udp_recvmsg reads this many datagrams per readiness event before it yields. */
export const DGRAM_READS_PER_TURN = 32;

let fallbackLogged = false;

/**
 * The batched sockets when the addon loads (`prefer` 'dgram' or a missing build: Node's dgram,
 * said once per process).
 */
export function edgeSockets(logger: Logger, prefer: 'batch' | 'dgram' = 'batch', load: () => BatchNative | Error = loadBatchNative): EdgeSockets {
  const native = prefer === 'batch' ? load() : null;
  if (native instanceof Error && !fallbackLogged) {
    fallbackLogged = true;
    logger.warn({ err: native }, 'batched UDP socket unavailable (npm ci builds it): the SIP edge uses Node dgram');
  }
  if (native === null || native instanceof Error) return { kind: 'dgram', readsPerTurn: DGRAM_READS_PER_TURN, open: openDgram };
  return { kind: 'batch', readsPerTurn: DEFAULT_BATCH, open: async (options) => openBatch(native, options) };
}

function openBatch(native: BatchNative, { host, port, recvBufferSize, share, onMessage, onError }: EdgeSocketOptions): EdgeSocket {
  const socket = new BatchSocket(native, {
    host,
    port,
    recvBufferSize,
    reusePort: share !== 'own',
    spread: share === 'own' ? 1 : share,
    paused: true,
    onMessage,
    onError,
  });
  return {
    start: () => socket.start(),
    address: () => socket.address(),
    send: (bytes, to, toHost) => socket.send(bytes, to, toHost),
    close: async () => socket.close(),
  };
}

async function openDgram({ host, port, recvBufferSize, share, onMessage, onError }: EdgeSocketOptions): Promise<EdgeSocket> {
  const socket: Socket = createSocket({ type: host.includes(':') ? 'udp6' : 'udp4', recvBufferSize });
  await new Promise<void>((done, fail) => {
    socket.once('error', fail);
    // In a cluster worker, exclusive: false shares the primary's handle.
    socket.bind({ port, address: host, exclusive: share === 'own' }, () => {
      socket.off('error', fail);
      done();
    });
  });
  socket.on('error', onError);
  return {
    // Node reads from the bind on: what comes before a 'message' listener is dropped.
    start: () => void socket.on('message', (bytes, rinfo) => onMessage(bytes, rinfo.address, rinfo.port)),
    address: () => socket.address(),
    send: (bytes, to, toHost) => socket.send(bytes, to, toHost),
    close: () => new Promise<void>((done) => socket.close(() => done())),
  };
}
