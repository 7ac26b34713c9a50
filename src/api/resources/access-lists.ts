// Access lists of accounts and devices (seeds 001/002, api.md §4), and the decision API.

import { dataOf, send, sendJson } from '../envelope.ts';
import type { RouteSpec } from '../route.ts';
import * as lists from '../../services/access-lists.ts';
import { authorize, requireSuperduper } from '../../services/actor.ts';
import type { AccessList } from '../../core/acl.ts';
import type { RealmDecision } from '../../services/decision-types.ts';
import { AccessListSchema, DEFAULT_LIMITS } from '../../services/schemas.ts';
import { Failure } from '../../services/errors.ts';

type Params = { account_id: string; device_id?: string };
const ownerOf = (request: { params: unknown }): lists.ListOwner => {
  const p = request.params as Params;
  return p.device_id === undefined ? { accountId: p.account_id } : { accountId: p.account_id, deviceId: p.device_id };
};
const schema = AccessListSchema(DEFAULT_LIMITS.maxCidrs);

/**
 * A stored list's JSON, made once per stored version: a write replaces the list object (the index
 * reads the new row), so the object itself is the cache key.
 */
const jsonOf = new WeakMap<AccessList, string>();
export function listJson(list: AccessList | null): string {
  if (list === null) return '{}';
  let json = jsonOf.get(list);
  if (json === undefined) jsonOf.set(list, (json = JSON.stringify(lists.presentAccessList(list))));
  return json;
}

/** The decide endpoint's `data`: the decision, then what it was made for and why. */
export function realmDecisionData(answer: RealmDecision): Record<string, unknown> {
  const data: Record<string, unknown> = { decision: answer.decision };
  if (answer.reason) data.reason = answer.reason;
  if (answer.accountId) data.account_id = answer.accountId;
  if (answer.deviceId) data.device_id = answer.deviceId;
  if (answer.account) data.account = answer.account;
  if (answer.device) data.device = answer.device;
  return data;
}

function listRoutes(url: string, what: string): RouteSpec[] {
  return [
    {
      method: 'GET',
      url,
      summary: `Read the ${what} access list ({} when none is set)`,
      handler: async ({ request, reply, actor, deps }) => {
        const owner = ownerOf(request);
        // An account's list comes from the decision index, as current as the database after any
        // write (writes catch the index up before answering) and authorised the same way.
        if (owner.deviceId === undefined) {
          const stored = deps.ctx.decisions.storedAccessList(owner.accountId);
          const path = deps.ctx.decisions.accountPath(owner.accountId);
          if (stored !== undefined && path !== undefined) {
            authorize(actor, { path }, 'read');
            return sendJson(request, reply, listJson(stored));
          }
        }
        return send(request, reply, lists.presentAccessList(await lists.getAccessList(deps.ctx, actor, owner)));
      },
    },
    {
      method: 'POST',
      url,
      body: schema,
      summary: `Replace the ${what} access list`,
      handler: async ({ request, reply, actor, deps }) => {
        // dataOf: a missing, null or non-object `data` is an invalid envelope (a null must never
        // reach setAccessList, where it means "remove the list").
        return send(request, reply, lists.presentAccessList(await lists.setAccessList(deps.ctx, actor, ownerOf(request), dataOf(request))));
      },
    },
    {
      method: 'DELETE',
      url,
      summary: `Remove the ${what} access list`,
      handler: async ({ request, reply, actor, deps }) => {
        await lists.setAccessList(deps.ctx, actor, ownerOf(request), null);
        return send(request, reply, {});
      },
    },
  ];
}

export const routes: RouteSpec[] = [
  ...listRoutes('/v2/accounts/:account_id/access_lists', "account's"),
  ...listRoutes('/v2/accounts/:account_id/devices/:device_id/access_lists', "device's"),
  {
    method: 'GET',
    url: '/v2/accounts/:account_id/access_lists/check',
    summary: 'Would a request from ip (with user_agent, for device_id) be allowed, and which rule decided',
    handler: async ({ request, reply, actor, deps }) => {
      const query = request.query as { ip?: string; user_agent?: string; device_id?: string };
      return send(request, reply, await lists.checkAccess(deps.ctx, actor, (request.params as Params).account_id, query));
    },
  },
  {
    method: 'GET',
    url: '/v2/access_lists/decide',
    summary: 'The decision an edge asks for, by realm and SIP username (superduper)',
    handler: async ({ request, reply, actor, deps }) => {
      requireSuperduper(actor);
      const q = request.query as { ip?: string; realm?: string; username?: string; user_agent?: string };
      const missing = (['ip', 'realm'] as const).filter((k) => !q[k]);
      if (missing.length > 0) {
        throw new Failure('validation', 'validation error', { fields: Object.fromEntries(missing.map((k) => [k, { required: { message: 'Field is required but missing', target: 'query' } }])) });
      }
      return send(request, reply, realmDecisionData(deps.ctx.decisions.decideByRealm(q.ip!, q.realm!, q.username ?? '', q.user_agent ?? '')));
    },
  },
];
