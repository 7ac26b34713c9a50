// How long datagrams have been waiting in a socket's receive queue, without kernel timestamps:
// libuv reads at most 32 datagrams from a readable socket per turn of the event loop, so a turn
// that brings fewer has emptied the queue. From the first read after such a turn, the time
// since then is how long the queue has stayed non-empty: near zero while the edge keeps up, and
// growing, under a backlog, as the wait of the datagram being read.

/** libuv's uv__udp_recvmsg reads this many datagrams per readiness event before it yields. */
const READS_PER_TURN = 32;

export interface QueueClock {
  now(): number;
  /** Runs `fn` once the event loop has handled this turn's I/O (setImmediate). */
  afterTurn(fn: () => void): void;
}

const realClock: QueueClock = { now: () => performance.now(), afterTurn: (fn) => void setImmediate(fn) };

export class QueueDelay {
  private backlogSince = 0;
  private drained = true;
  private readThisTurn = 0;
  private readonly endTurn = () => {
    this.drained = this.readThisTurn < READS_PER_TURN;
    this.readThisTurn = 0;
  };

  constructor(private readonly clock: QueueClock = realClock) {}

  /** Called for each datagram read; returns how long the queue has been non-empty, in ms. */
  read(): number {
    const now = this.clock.now();
    if (this.readThisTurn++ === 0) {
      this.clock.afterTurn(this.endTurn);
      if (this.drained) this.backlogSince = now;
    }
    return now - this.backlogSince;
  }
}
