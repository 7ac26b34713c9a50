// The audit trail of an account (api.md §2): newest first, 50 a page by default.

import { send } from '../envelope.ts';
import type { RouteSpec } from '../route.ts';
import { listAudit } from '../../services/audit.ts';

export const routes: RouteSpec[] = [
  {
    method: 'GET',
    url: '/v2/accounts/:account_id/audit',
    summary: 'Who changed what, newest first (page_size default 50, start_key, resource filter)',
    handler: async ({ request, reply, actor, deps }) => {
      const q = request.query as { resource?: string; page_size?: string; start_key?: string };
      const size = Number(q.page_size);
      const pageSize = Number.isInteger(size) && size > 0 ? Math.min(size, 1000) : 50;
      const start = Number(q.start_key);
      const page = await listAudit(deps.ctx, actor, (request.params as { account_id: string }).account_id, {
        pageSize,
        ...(q.resource ? { resource: q.resource } : {}),
        ...(Number.isInteger(start) && start > 0 ? { startKey: start } : {}),
      });
      const extra: Record<string, unknown> = { page_size: page.entries.length };
      if (q.start_key !== undefined) extra.start_key = q.start_key;
      if (page.nextStartKey !== undefined) extra.next_start_key = page.nextStartKey;
      return send(request, reply, page.entries, { extra });
    },
  },
];
