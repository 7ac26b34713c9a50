// The dedicated-IP pool as the SIP edge's egress needs it (api.md §7.1): which pool IPs this
// node's host serves, who each IP is assigned to, and each account's IPs here in
// `/ips/assigned` order. Kept in memory, fed by the change feed with the decision index (§6), so
// an assignment made on any node applies to the next request here and no packet reads the store.

import type { ChangeRow, IpRow, Repository } from '../store/port.ts';
import type { ChangeFollower } from './decisions.ts';
import { assignedOrder, sortByAddress } from './ips.ts';

/** What the edge's pure pipeline asks, on every outbound request. */
export interface EgressReader {
  /** The account a pool IP is assigned to; null when it is available or not in the pool. */
  assigneeOf(ip: string): string | null;
  /** The account's assigned IPs whose host is this node's, in `/ips/assigned` order. */
  heldFor(accountId: string): readonly string[];
}

/** What the edge's socket layer follows: the pool IPs whose host is this node's. */
export interface EgressSource extends EgressReader {
  hosted(): readonly string[];
  /** Set by the edge: called with the new list whenever it changes. */
  onHostedChange: ((ips: readonly string[]) => void) | null;
}

export interface EgressPoolOptions {
  /** `--sip-host`: the pool `host` this node serves; none holds no pool IP. */
  host?: string | undefined;
  /** `--zone`: listed first, as `/ips/assigned` does. */
  zone?: string | undefined;
}

interface PoolState {
  assignees: Map<string, string>;
  held: Map<string, readonly string[]>;
  /** Every pool IP whose host is this node's, assigned or not, by address. */
  hosted: readonly string[];
}

const NONE: readonly string[] = [];

export class EgressPool implements EgressSource, ChangeFollower {
  private state: PoolState = { assignees: new Map(), held: new Map(), hosted: NONE };
  onHostedChange: ((ips: readonly string[]) => void) | null = null;

  constructor(
    private readonly read: Repository,
    private readonly options: EgressPoolOptions,
  ) {}

  async load(): Promise<void> {
    this.swap(await this.read.listIps({}));
  }

  /**
   * The pool is an operator's addresses (tens to thousands of rows), so a batch touching it is
   * applied by reading it again and swapping, whatever the batch held.
   */
  async apply(changes: readonly ChangeRow[]): Promise<void> {
    if (changes.some((c) => c.kind === 'ips' || c.kind === 'account_deleted')) await this.load();
  }

  hosted(): readonly string[] {
    return this.state.hosted;
  }

  assigneeOf(ip: string): string | null {
    return this.state.assignees.get(ip) ?? null;
  }

  heldFor(accountId: string): readonly string[] {
    return this.state.held.get(accountId) ?? NONE;
  }

  private swap(rows: IpRow[]): void {
    const assignees = new Map<string, string>();
    const byAccount = new Map<string, IpRow[]>();
    const here = rows.filter((r) => r.host === this.options.host);
    for (const row of rows) if (row.assignedTo !== null) assignees.set(row.ip, row.assignedTo);
    for (const row of here) {
      if (row.assignedTo === null) continue;
      const list = byAccount.get(row.assignedTo);
      if (list) list.push(row);
      else byAccount.set(row.assignedTo, [row]);
    }
    const held = new Map<string, readonly string[]>();
    for (const [account, list] of byAccount) held.set(account, assignedOrder(list, this.options.zone).map((r) => r.ip));
    const hosted = sortByAddress(here).map((r) => r.ip);
    const hostedChanged = hosted.join() !== this.state.hosted.join();
    this.state = { assignees, held, hosted };
    if (hostedChanged) this.onHostedChange?.(hosted);
  }
}
