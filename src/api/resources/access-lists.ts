// Access lists of accounts and devices (seeds 001/002, api.md §4), and the decision API.

import { dataOf, send, sendJson } from '../envelope.ts';
import type { RouteSpec } from '../route.ts';
import * as lists from '../../services/access-lists.ts';
import type { AccessList } from '../../core/acl.ts';
import type { AccountDecision, ListDecision, RealmDecision } from '../../services/decision-types.ts';
import { AccessListSchema, DEFAULT_LIMITS } from '../../services/schemas.ts';

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

// A decision answer's `data`, written out directly: JSON.stringify's generic walk of these small
// objects is a large share of a check answer. The text is JSON.stringify's, key order included
// (test/api/decision-json.test.ts); the enums need no escaping, the rest goes through it.

/** One list's part of a decision: decision, reason, then order and cidr when present. */
function listDecisionJson(part: ListDecision): string {
  const order = part.order === undefined ? '' : `,"order":"${part.order}"`;
  const cidr = part.cidr === undefined ? '' : `,"cidr":${JSON.stringify(part.cidr)}`;
  return `{"decision":"${part.decision}","reason":"${part.reason}"${order}${cidr}}`;
}

/** The check endpoint's `data`: the decision, the account's part, the device's when asked. */
export function decisionJson(verdict: AccountDecision): string {
  const device = verdict.device === undefined ? '' : `,"device":${listDecisionJson(verdict.device)}`;
  return `{"decision":"${verdict.decision}","account":${listDecisionJson(verdict.account)}${device}}`;
}

/** The decide endpoint's `data`: the decision, then what it was made for and why. */
export function realmDecisionJson(answer: RealmDecision): string {
  let json = `{"decision":"${answer.decision}"`;
  if (answer.reason) json += `,"reason":"${answer.reason}"`;
  if (answer.accountId) json += `,"account_id":${JSON.stringify(answer.accountId)}`;
  if (answer.deviceId) json += `,"device_id":${JSON.stringify(answer.deviceId)}`;
  if (answer.account) json += `,"account":${listDecisionJson(answer.account)}`;
  if (answer.device) json += `,"device":${listDecisionJson(answer.device)}`;
  return `${json}}`;
}

function listRoutes(url: string, what: string): RouteSpec[] {
  return [
    {
      method: 'GET',
      url,
      summary: `Read the ${what} access list ({} when none is set)`,
      handler: async ({ request, reply, actor, deps }) => sendJson(request, reply, listJson(await lists.getAccessList(deps.ctx, actor, ownerOf(request)))),
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
    handler: async ({ request, reply, actor, deps }) =>
      sendJson(request, reply, decisionJson(await lists.checkAccess(deps.ctx, actor, (request.params as Params).account_id, request.query as lists.CheckQuery))),
  },
  {
    method: 'GET',
    url: '/v2/access_lists/decide',
    summary: 'The decision an edge asks for, by realm and SIP username (superduper)',
    handler: async ({ request, reply, actor, deps }) => sendJson(request, reply, realmDecisionJson(lists.decideFromIndex(deps.ctx, actor, request.query as lists.DecideQuery))),
  },
];
