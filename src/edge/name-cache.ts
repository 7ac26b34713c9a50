// Host names in outbound Request-URIs (api.md §7.1), resolved by the system resolver and kept at
// most 30 s, so a call's requests do not each wait on DNS and a changed record is seen soon.
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';

export const NAME_TTL_MS = 30_000;
/** Names are the platform's carriers: few. Past this many, expired entries are swept. */
const SWEEP_ABOVE = 1024;

type Lookup = (host: string, family: 4 | 6) => Promise<string>;

interface Entry {
  address: string;
  expires: number;
}

export class NameCache {
  private readonly entries = new Map<string, Entry>();
  private readonly pending = new Map<string, Promise<string>>();

  constructor(
    private readonly resolveName: Lookup = async (host, family) => (await lookup(host, { family })).address,
    private readonly now: () => number = Date.now,
    private readonly ttlMs = NAME_TTL_MS,
  ) {}

  /** The address at once when `host` is one or is cached, else a promise of it (rejected when the name does not resolve). */
  resolve(host: string, family: 4 | 6): string | Promise<string> {
    if (isIP(host) !== 0) return host;
    const key = `${family} ${host}`;
    const entry = this.entries.get(key);
    if (entry !== undefined && entry.expires > this.now()) return entry.address;
    let promise = this.pending.get(key);
    if (promise === undefined) {
      promise = this.resolveName(host, family).then(
        (address) => {
          this.pending.delete(key);
          this.sweep();
          this.entries.set(key, { address, expires: this.now() + this.ttlMs });
          return address;
        },
        (error: unknown) => {
          // A failure is not kept: the next request asks again.
          this.pending.delete(key);
          throw error;
        },
      );
      this.pending.set(key, promise);
    }
    return promise;
  }

  private sweep(): void {
    if (this.entries.size < SWEEP_ABOVE) return;
    const now = this.now();
    for (const [key, entry] of this.entries) if (entry.expires <= now) this.entries.delete(key);
  }
}
