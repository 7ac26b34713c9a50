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

/**
 * Whether a socket's new calls are being shed (server.ts): from the moment a datagram has waited
 * past `startMs` until one waits less than `stopMs`. Shedding only while the wait is past the bound
 * would hold the queue at the bound for as long as calls keep coming at about the edge's rate, so
 * the edge would not get back to short waits after an overload; shedding on down to `stopMs`
 * drains the backlog first.
 */
export class Shedding {
  private on = false;

  update(waitedMs: number, startMs: number, stopMs: number): boolean {
    if (waitedMs > startMs) this.on = true;
    else if (waitedMs < stopMs) this.on = false;
    return this.on;
  }
}

/** A socket's receive queue: how long it has kept datagrams waiting, and whether new calls are shed because of it. */
export interface Backlog {
  delay: QueueDelay;
  shedding: Shedding;
}

export function newBacklog(readsPerTurn: number): Backlog {
  return { delay: new QueueDelay(readsPerTurn), shedding: new Shedding() };
}
