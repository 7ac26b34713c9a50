// Trunks and their IP ACL entries (seed 003, api.md §5), and the lookup an edge asks.

import { send, sendList } from '../envelope.ts';
import type { RouteSpec } from '../route.ts';
import { collectionRoutes } from './crud.ts';
import { IpAclSchema, TrunkSchema } from '../../services/schemas.ts';
import * as trunks from '../../services/trunks.ts';

const trunkRoutes = collectionRoutes({
  base: '/v2/accounts/:account_id/trunks',
  idParam: 'trunk_id',
  noun: 'trunk',
  schema: TrunkSchema,
  present: trunks.presentTrunk,
  create: (ctx, actor, p, body) => trunks.createTrunk(ctx, actor, p.account_id!, body),
  list: (ctx, actor, p) => trunks.listTrunks(ctx, actor, p.account_id!),
  get: (ctx, actor, p) => trunks.getTrunk(ctx, actor, p.account_id!, p.trunk_id!),
  update: (ctx, actor, p, body, options) => trunks.updateTrunk(ctx, actor, p.account_id!, p.trunk_id!, body, options),
  remove: (ctx, actor, p) => trunks.deleteTrunk(ctx, actor, p.account_id!, p.trunk_id!),
});

const ipAclRoutes = collectionRoutes({
  base: '/v2/accounts/:account_id/trunks/:trunk_id/ip_acls',
  idParam: 'ip_acl_id',
  noun: 'trunk IP ACL entry',
  schema: IpAclSchema,
  present: trunks.presentIpAcl,
  create: (ctx, actor, p, body) => trunks.createIpAcl(ctx, actor, p.account_id!, p.trunk_id!, body),
  createMany: (ctx, actor, p, items) => trunks.createIpAcls(ctx, actor, p.account_id!, p.trunk_id!, items),
  list: (ctx, actor, p) => trunks.listIpAcls(ctx, actor, p.account_id!, p.trunk_id!),
  get: (ctx, actor, p) => trunks.getIpAcl(ctx, actor, p.account_id!, p.trunk_id!, p.ip_acl_id!),
  update: (ctx, actor, p, body, options) => trunks.updateIpAcl(ctx, actor, p.account_id!, p.trunk_id!, p.ip_acl_id!, body, options),
  remove: (ctx, actor, p) => trunks.deleteIpAcl(ctx, actor, p.account_id!, p.trunk_id!, p.ip_acl_id!),
});

export const routes: RouteSpec[] = [
  ...trunkRoutes,
  ...ipAclRoutes,
  {
    method: 'GET',
    url: '/v2/accounts/:account_id/ip_acls',
    summary: "List an account's IP ACL entries, optionally of one trunk",
    handler: async ({ request, reply, actor, deps }) => {
      const trunkId = (request.query as { trunk_id?: string }).trunk_id;
      const rows = await trunks.listIpAcls(deps.ctx, actor, (request.params as { account_id: string }).account_id, trunkId || undefined);
      return sendList(request, reply, rows, (r) => r.id, trunks.presentIpAcl);
    },
  },
  {
    method: 'GET',
    url: '/v2/ip_acls/lookup',
    summary: 'Which trunk a source address authenticates (superduper)',
    handler: async ({ request, reply, actor, deps }) => {
      const match = trunks.lookupTrunk(deps.ctx, actor, (request.query as { ip?: string }).ip);
      return send(request, reply, { ip: match.ip, account_id: match.accountId, trunk_id: match.trunkId, ip_acl_id: match.ipAclId, ip_address: match.ipAddress });
    },
  },
];
