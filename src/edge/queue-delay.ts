// How long datagrams have been waiting in a socket's receive queue, without kernel timestamps:
// a socket reads at most so many datagrams per turn of the event loop (libuv's dgram 32, the
// batched socket its batch), so a turn that brings fewer has emptied the queue. While every turn brings a full batch, the time since
// the first of them is how long the queue has stayed non-empty, and what the datagram being read
// has waited at most. A single slow turn (the process descheduled a moment) counts as nothing:
// only a backlog that outlives a turn does.

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
    this.drained = this.readThisTurn < this.readsPerTurn;
    this.readThisTurn = 0;
  };

  constructor(
    private readonly readsPerTurn: number,
    private readonly clock: QueueClock = realClock,
  ) {}

  /** Called for each datagram read; returns how long the queue has been non-empty, in ms. */
  read(): number {
    const now = this.clock.now();
    if (this.readThisTurn++ === 0) {
      this.clock.afterTurn(this.endTurn);
      if (this.drained) this.backlogSince = now;
    }
    return this.drained ? 0 : now - this.backlogSince;
  }
}
