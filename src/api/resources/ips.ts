// Dedicated IPs (seed 000, api.md §3): the system pool (superduper) and each account's IPs.

import { dataOf, optionalDataOf, send, sendList } from '../envelope.ts';
import type { RouteSpec } from '../route.ts';
import * as ips from '../../services/ips.ts';
import { check, IpListSchema, PoolIpSchema, PoolIpUpdateSchema } from '../../services/schemas.ts';

type Params = { account_id: string; ip: string };
const params = (request: { params: unknown }) => request.params as Params;
const byIp = (r: { ip: string }) => r.ip;
const system = '/v2/ips';
const account = '/v2/accounts/:account_id/ips';

function addRoute(url: string): RouteSpec {
  return {
    method: 'PUT',
    url,
    body: PoolIpSchema,
    summary: 'Add an IP to the dedicated pool (superduper)',
    handler: async ({ request, reply, actor, deps }) => {
      const row = await ips.addPoolIp(deps.ctx, actor, dataOf(request), (request.params as Partial<Params>).account_id);
      return send(request, reply, ips.presentIp(row), { status: 201, revision: row.revision, location: `/v2/ips/${row.ip}` });
    },
  };
}

function distinctRoute(url: string, field: 'host' | 'zone'): RouteSpec {
  return {
    method: 'GET',
    url,
    summary: `Sorted distinct ${field}s of the pool`,
    handler: async ({ request, reply, actor, deps }) => send(request, reply, await ips.poolHostsOrZones(deps.ctx, actor, field, (request.params as Partial<Params>).account_id)),
  };
}

export const routes: RouteSpec[] = [
  addRoute(system),
  {
    method: 'GET',
    url: system,
    summary: 'The whole pool with status (superduper); filters zone, host, status',
    handler: async ({ request, reply, actor, deps }) => {
      return sendList(request, reply, await ips.listPool(deps.ctx, actor, request.query as ips.PoolQuery), byIp, ips.presentIp);
    },
  },
  distinctRoute(`${system}/hosts`, 'host'),
  distinctRoute(`${system}/zones`, 'zone'),
  {
    method: 'GET',
    url: `${system}/:ip`,
    summary: 'Read a pool IP (superduper)',
    handler: async ({ request, reply, actor, deps }) => {
      const row = await ips.getPoolIp(deps.ctx, actor, params(request).ip);
      return send(request, reply, ips.presentIp(row), { revision: row.revision });
    },
  },
  {
    method: 'POST',
    url: `${system}/:ip`,
    body: PoolIpUpdateSchema,
    summary: "Change a pool IP's zone or host (superduper)",
    handler: async ({ request, reply, actor, deps }) => {
      const row = await ips.updatePoolIp(deps.ctx, actor, params(request).ip, dataOf(request));
      return send(request, reply, ips.presentIp(row), { revision: row.revision });
    },
  },
  {
    method: 'DELETE',
    url: `${system}/:ip`,
    summary: 'Remove an unassigned IP from the pool (superduper)',
    handler: async ({ request, reply, actor, deps }) => send(request, reply, ips.presentIp(await ips.deletePoolIp(deps.ctx, actor, params(request).ip))),
  },
  addRoute(account),
  {
    method: 'GET',
    url: account,
    summary: 'Available IPs [{ip, zone}], optionally by zone and at most quantity',
    handler: async ({ request, reply, actor, deps }) => {
      const q = request.query as { zone?: string; quantity?: string };
      const quantity = Number(q.quantity);
      const options = { ...(q.zone ? { zone: q.zone } : {}), ...(Number.isInteger(quantity) && quantity > 0 ? { quantity } : {}) };
      return sendList(request, reply, await ips.listAvailable(deps.ctx, actor, params(request).account_id, options), byIp, ips.presentBrief);
    },
  },
  {
    method: 'POST',
    url: account,
    body: IpListSchema,
    summary: 'Assign IPs to the account, all or none',
    handler: async ({ request, reply, actor, deps }) => {
      const rows = await ips.assignIps(deps.ctx, actor, params(request).account_id, dataOf(request));
      return send(request, reply, { ips: rows.map(byIp) });
    },
  },
  {
    method: 'DELETE',
    url: account,
    summary: "Release the listed IPs, or all of the account's",
    handler: async ({ request, reply, actor, deps }) => {
      const data = optionalDataOf(request);
      // No body, or a data without ips: release all. An `ips` that is not a list of strings is a
      // client error, never "release everything".
      const listed = data === undefined || data.ips === undefined ? undefined : check(IpListSchema, data).ips;
      const rows = await ips.releaseIps(deps.ctx, actor, params(request).account_id, listed);
      return send(request, reply, { ips: rows.map(byIp) });
    },
  },
  {
    method: 'GET',
    url: `${account}/assigned`,
    summary: 'IPs assigned to the account [{ip, zone}], local zone first',
    handler: async ({ request, reply, actor, deps }) => sendList(request, reply, await ips.listAssigned(deps.ctx, actor, params(request).account_id), byIp, ips.presentBrief),
  },
  distinctRoute(`${account}/hosts`, 'host'),
  distinctRoute(`${account}/zones`, 'zone'),
  {
    method: 'GET',
    url: `${account}/:ip`,
    summary: 'An IP available or assigned to this account (or a descendant)',
    handler: async ({ request, reply, actor, deps }) => {
      const row = await ips.getAccountIp(deps.ctx, actor, params(request).account_id, params(request).ip);
      return send(request, reply, ips.presentIp(row), { revision: row.revision });
    },
  },
  {
    method: 'POST',
    url: `${account}/:ip`,
    summary: 'Assign one IP (the body, if any, is ignored)',
    handler: async ({ request, reply, actor, deps }) => {
      const row = await ips.assignIp(deps.ctx, actor, params(request).account_id, params(request).ip);
      return send(request, reply, ips.presentIp(row), { revision: row.revision });
    },
  },
  {
    method: 'DELETE',
    url: `${account}/:ip`,
    summary: 'Release one IP',
    handler: async ({ request, reply, actor, deps }) => {
      const row = await ips.releaseIp(deps.ctx, actor, params(request).account_id, params(request).ip);
      return send(request, reply, ips.presentIp(row), { revision: row.revision });
    },
  },
];
