// What a node tells of itself. Whether it is up, anyone may ask (load balancers ask without a
// token); how big its index is, which addresses its edge holds and what it has counted span every
// tenant, so only a superduper admin sees them.
import { requireSuperduper, type Actor } from './actor.ts';
import type { ServiceContext } from './context.ts';

export interface EgressSocketReport {
  ip: string;
  bound: boolean;
  error: string | null;
}

export async function nodeHealth(ctx: ServiceContext, actor: Actor, sipEgress?: () => Promise<EgressSocketReport[]>) {
  const database = await ctx.store.ping().then(
    () => 'up' as const,
    () => 'down' as const,
  );
  const stats = ctx.decisions.stats();
  const index = actor.superduper ? stats : { current: stats.current };
  // api.md §7.1: an unbound dedicated-IP socket is reported, not a degraded node.
  const sip = sipEgress && actor.superduper ? { sip: { egress: await sipEgress() } } : {};
  return { status: database === 'up' && stats.current ? ('ok' as const) : ('degraded' as const), database, index, ...sip };
}

/** The node's own counters (read by the caller, from wherever it keeps them), superduper only. */
export async function nodeCounters<T>(actor: Actor, read: () => Promise<T>): Promise<T> {
  requireSuperduper(actor);
  return read();
}
