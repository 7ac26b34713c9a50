// Health (is the index current? can the database be reached?). Anyone may ask whether the node is
// up (load balancers ask without a token); how big the index is, only a superduper admin sees.

import { send } from '../envelope.ts';
import type { RouteSpec } from '../route.ts';

export const routes: RouteSpec[] = [
  {
    method: 'GET',
    url: '/v2/health',
    auth: 'optional',
    summary: 'Liveness, database reachability and whether the decision index is current (its sizes for a superduper admin)',
    handler: async ({ request, reply, actor, deps }) => {
      const database = await deps.ctx.store.ping().then(
        () => 'up',
        () => 'down',
      );
      const stats = deps.ctx.decisions.stats();
      const index = actor.superduper ? stats : { current: stats.current };
      // api.md §7.1: the dedicated-IP sockets, shown as the index's sizes are (which addresses a
      // node holds is the operator's business). An unbound one is reported, not a degraded node.
      const sip = deps.sip && actor.superduper ? { sip: { egress: await deps.sip.egress() } } : {};
      return send(request, reply, { status: database === 'up' && stats.current ? 'ok' : 'degraded', database, index, ...sip });
    },
  },
];
