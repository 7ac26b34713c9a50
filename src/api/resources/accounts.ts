// Accounts (api.md §2): child creation, read, replace, patch, delete, children, descendants, API key.

import { send, sendList, dataOf } from '../envelope.ts';
import { updateOptions } from './crud.ts';
import type { RouteSpec } from '../route.ts';
import * as accounts from '../../services/accounts.ts';
import { AccountSchema } from '../../services/schemas.ts';

type Params = { account_id: string };
const id = (request: { params: unknown }) => (request.params as Params).account_id;
const byId = (a: { id: string }) => a.id;

export const routes: RouteSpec[] = [
  {
    method: 'PUT',
    url: '/v2/accounts/:account_id',
    body: AccountSchema,
    summary: 'Create a child account under this one',
    handler: async ({ request, reply, actor, deps }) => {
      const child = await accounts.createChildAccount(deps.ctx, actor, id(request), dataOf(request));
      return send(request, reply, accounts.presentAccount(child), { status: 201, revision: child.revision, location: `/v2/accounts/${child.id}` });
    },
  },
  {
    method: 'GET',
    url: '/v2/accounts/:account_id',
    summary: 'Read an account',
    handler: async ({ request, reply, actor, deps }) => {
      const account = await accounts.findAccount(deps.ctx, actor, id(request), 'read');
      return send(request, reply, accounts.presentAccount(account), { revision: account.revision });
    },
  },
  ...(['POST', 'PATCH'] as const).map(
    (method): RouteSpec => ({
      method,
      url: '/v2/accounts/:account_id',
      body: AccountSchema,
      summary: method === 'POST' ? 'Replace an account' : 'Merge fields into an account',
      handler: async ({ request, reply, actor, deps }) => {
        const account = await accounts.updateAccount(deps.ctx, actor, id(request), dataOf(request), updateOptions(request, method === 'PATCH'));
        return send(request, reply, accounts.presentAccount(account), { revision: account.revision });
      },
    }),
  ),
  {
    method: 'DELETE',
    url: '/v2/accounts/:account_id',
    summary: 'Delete an account without children (its dedicated IPs go back to the pool)',
    handler: async ({ request, reply, actor, deps }) => {
      const account = await accounts.deleteAccount(deps.ctx, actor, id(request));
      return send(request, reply, accounts.presentAccount(account));
    },
  },
  {
    method: 'GET',
    url: '/v2/accounts/:account_id/children',
    summary: 'The direct children of an account',
    handler: async ({ request, reply, actor, deps }) => sendList(request, reply, await accounts.listChildren(deps.ctx, actor, id(request)), byId, accounts.presentAccount),
  },
  {
    method: 'GET',
    url: '/v2/accounts/:account_id/descendants',
    summary: 'Every descendant of an account',
    handler: async ({ request, reply, actor, deps }) => sendList(request, reply, await accounts.listDescendants(deps.ctx, actor, id(request)), byId, accounts.presentAccount),
  },
  {
    method: 'GET',
    url: '/v2/accounts/:account_id/api_key',
    summary: "The account's API key (admins of the account and its ancestors)",
    handler: async ({ request, reply, actor, deps }) => send(request, reply, { api_key: await accounts.readApiKey(deps.ctx, actor, id(request)) }),
  },
  {
    method: 'PUT',
    url: '/v2/accounts/:account_id/api_key',
    summary: 'Replace the API key: the new one is in this answer, the old one stops working on every node',
    handler: async ({ request, reply, actor, deps }) => send(request, reply, { api_key: await accounts.rotateApiKey(deps.ctx, actor, id(request)) }, { status: 201 }),
  },
];
