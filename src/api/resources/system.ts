// Health (is the index current? can the database be reached?).

import { send } from '../envelope.ts';
import type { RouteSpec } from '../route.ts';

export const routes: RouteSpec[] = [
  {
    method: 'GET',
    url: '/v2/health',
    auth: 'none',
    summary: 'Liveness, database reachability and the state of the decision index',
    handler: async ({ request, reply, deps }) => {
      const database = await deps.ctx.store.ping().then(
        () => 'up',
        () => 'down',
      );
      const index = deps.ctx.decisions.stats();
      return send(request, reply, { status: database === 'up' && index.current ? 'ok' : 'degraded', database, index });
    },
  },
];
