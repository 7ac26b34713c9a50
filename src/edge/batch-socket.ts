// A UDP socket that reads and writes datagrams in batches (native/batch_socket.c): one recvmmsg
// and one call into JS for up to `batch` datagrams, one sendmmsg for the replies they bring.
// Node's dgram makes a syscall, a JS callback and an rinfo object per datagram received and a
// syscall per datagram sent, which is most of what a relayed SIP packet costs.
import { createRequire } from 'node:module';
import { isIP } from 'node:net';

/** The addon's interface (build/Release/batch_socket.node). */
interface NativeSocket {
  readonly data: Buffer;
  readonly meta: Int32Array;
  readonly addr: Uint8Array;
}
export interface BatchNative {
  open(
    family: 4 | 6,
    host: string,
    port: number,
    reusePort: boolean,
    spread: number,
    recvBufferSize: number,
    batch: number,
    paceAfter: number,
    onBatch: (count: number) => void,
    onError: (code: string) => void,
  ): NativeSocket;
  address(socket: NativeSocket): [string, number];
  queue(socket: NativeSocket, bytes: Buffer, port: number, host: string): boolean;
  start(socket: NativeSocket): void;
  flush(socket: NativeSocket): void;
  close(socket: NativeSocket): void;
}

/** native/batch_socket.c's receive slot and per-datagram meta (length, port, family, µs waited in the receive queue or -1). */
const SLOT = 65536 + 64;
const META = 4;
export const DEFAULT_BATCH = 64;
/**
 * Wakeups within one millisecond after which the socket reads on a 1 ms tick instead
 * (native/batch_socket.c). Under a half-core cap the CPU an answered call fell from 116 µs at
 * 3,000 calls/s to 56 at 9,000 as batches grew with the load; pacing makes them grow sooner. At
 * 3,750 answered calls/s (one worker, 10 k entries) it read 13 datagrams a wakeup against 7.5, and
 * spent 69-73 µs a call against 76-77 (docs/performance.md, issue 22).
 */
export const DEFAULT_PACE_AFTER = 3;

let loaded: BatchNative | Error | undefined;

/** The addon, or why it cannot be used (not built, not Linux). Loaded once. */
export function loadBatchNative(): BatchNative | Error {
  if (loaded === undefined) {
    try {
      loaded = createRequire(import.meta.url)('../../build/Release/batch_socket.node') as BatchNative;
    } catch (error) {
      loaded = error instanceof Error ? error : new Error(String(error));
    }
  }
  return loaded;
}

export interface BatchSocketOptions {
  /** An IP address (IPv4 or IPv6; `::` hears IPv4 senders too). */
  host: string;
  port: number;
  /** SO_REUSEPORT: other sockets (other processes) may bind the same address and port. */
  reusePort?: boolean;
  /** With reusePort: the group's size; each datagram goes to one of its sockets at random. */
  spread?: number;
  /** SO_RCVBUF (the kernel caps it at net.core.rmem_max). */
  recvBufferSize?: number;
  /** Datagrams read per readiness event, at most. */
  batch?: number;
  /** Wakeups within a millisecond after which reads go on a 1 ms tick until one finds nothing; 0: never. */
  paceAfter?: number;
  /** Read only once start() is called (datagrams wait in the kernel's queue meanwhile). */
  paused?: boolean;
  /**
   * A datagram; `bytes` is only valid during the call (the next read reuses its memory).
   * `waitedMs`: how long it waited in the receive queue, by the kernel's receive timestamp.
   */
  onMessage(bytes: Buffer, host: string, port: number, waitedMs?: number): void;
  /** A failed send or read, as a Node system error code (EHOSTUNREACH...). */
  onError(error: Error): void;
}

// Sends queued while a batch is handled go out in one sendmmsg per socket when it ends: the
// replies to a batch may leave from another socket than the one it came in on.
let handling = 0;
const pending = new Set<BatchSocket>();

function flushPending(): void {
  for (const socket of pending) socket.flush();
  pending.clear();
}

export class BatchSocket {
  readonly batch: number;
  private readonly handle: NativeSocket;
  private closed = false;
  private lastV4 = -1;
  private lastV4Text = '';
  private readonly v4Names = new Map<number, string>();

  /** Binds at once; throws a system error (EADDRINUSE...) as dgram's bind would report it. */
  constructor(
    private readonly native: BatchNative,
    private readonly options: BatchSocketOptions,
  ) {
    const family = isIP(options.host);
    if (family === 0) throw new TypeError(`not an IP address: ${options.host}`);
    this.batch = options.batch ?? DEFAULT_BATCH;
    this.handle = native.open(
      family as 4 | 6,
      options.host,
      options.port,
      options.reusePort ?? false,
      options.spread ?? 1,
      options.recvBufferSize ?? 0,
      this.batch,
      options.paceAfter ?? DEFAULT_PACE_AFTER,
      (count) => this.onBatch(count),
      (code) => options.onError(Object.assign(new Error(`batch socket: ${code}`), { code })),
    );
    if (!options.paused) this.start();
  }

  start(): void {
    if (!this.closed) this.native.start(this.handle);
  }

  address(): { address: string; port: number } {
    const [address, port] = this.native.address(this.handle);
    return { address, port };
  }

  /** Queued while a batch is handled, sent at once otherwise. */
  send(bytes: Buffer, port: number, host: string): void {
    if (this.closed) return;
    let accepted: boolean;
    try {
      accepted = this.native.queue(this.handle, bytes, port, host);
    } catch (error) {
      return this.options.onError(error as Error);
    }
    if (!accepted) this.options.onError(Object.assign(new Error('batch socket: send queue full'), { code: 'ENOBUFS' }));
    if (handling > 0) pending.add(this);
    else this.native.flush(this.handle);
  }

  flush(): void {
    if (!this.closed) this.native.flush(this.handle);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    pending.delete(this);
    this.native.close(this.handle);
  }

  private onBatch(count: number): void {
    const { data, meta, addr } = this.handle;
    handling++;
    try {
      for (let i = 0; i < count && !this.closed; i++) {
        const m = i * META;
        const start = i * SLOT;
        const waited = meta[m + 3]!;
        this.options.onMessage(data.subarray(start, start + meta[m]!), meta[m + 2] === 4 ? this.v4Name(addr, i * 16) : v6Name(addr, i * 16), meta[m + 1]!, waited < 0 ? undefined : waited / 1000);
      }
    } finally {
      if (--handling === 0) flushPending();
    }
  }

  /** Callers repeat: their addresses' texts are kept rather than built for every datagram. */
  private v4Name(addr: Uint8Array, at: number): string {
    const key = ((addr[at]! << 24) | (addr[at + 1]! << 16) | (addr[at + 2]! << 8) | addr[at + 3]!) >>> 0;
    if (key === this.lastV4) return this.lastV4Text;
    let name = this.v4Names.get(key);
    if (name === undefined) {
      if (this.v4Names.size >= 4096) this.v4Names.clear();
      name = `${addr[at]}.${addr[at + 1]}.${addr[at + 2]}.${addr[at + 3]}`;
      this.v4Names.set(key, name);
    }
    this.lastV4 = key;
    this.lastV4Text = name;
    return name;
  }
}

/** RFC 5952 text of 16 bytes: lowercase, the longest run of two or more zero groups as `::`. */
function v6Name(addr: Uint8Array, at: number): string {
  const groups: number[] = [];
  for (let g = 0; g < 8; g++) groups.push((addr[at + 2 * g]! << 8) | addr[at + 2 * g + 1]!);
  let best = -1;
  let bestLength = 1;
  for (let g = 0; g < 8; ) {
    if (groups[g] !== 0) {
      g++;
      continue;
    }
    let end = g;
    while (end < 8 && groups[end] === 0) end++;
    if (end - g > bestLength) [best, bestLength] = [g, end - g];
    g = end;
  }
  const hex = (from: number, to: number) => groups.slice(from, to).map((x) => x.toString(16)).join(':');
  return best < 0 ? hex(0, 8) : `${hex(0, best)}::${hex(best + bestLength, 8)}`;
}
