// Health (is the index current? can the database be reached?); who sees what: node-status.ts.

import { nodeHealth } from '../../services/node-status.ts';
import { send } from '../envelope.ts';
import type { RouteSpec } from '../route.ts';

export const routes: RouteSpec[] = [
  {
    method: 'GET',
    url: '/v2/health',
    auth: 'optional',
    summary: 'Liveness, database reachability and whether the decision index is current (its sizes for a superduper admin)',
    handler: async ({ request, reply, actor, deps }) => send(request, reply, await nodeHealth(deps.ctx, actor, deps.sip?.egress)),
  },
];
