// The five routes of a KAZOO collection (PUT and GET on the collection; GET, POST, PATCH and
// DELETE on one member), written once. Each resource says how to call its service and how to
// show a row; POST replaces, PATCH merges, both honour If-Match.

import type { TSchema } from '@sinclair/typebox';
import type { FastifyRequest } from 'fastify';
import { dataListOf, dataOf, ifMatch, send, sendList, type Data } from '../envelope.ts';
import type { Handler, RouteSpec } from '../route.ts';
import type { Actor } from '../../services/actor.ts';
import type { ServiceContext } from '../../services/context.ts';

export type Params = Record<string, string>;
export type UpdateOptions = { merge: boolean; expectedRevision?: string };

export interface Collection<Row extends { id: string; revision: string }> {
  /** The collection's path, e.g. '/v2/accounts/:account_id/users'. */
  base: string;
  /** The member's path parameter, e.g. 'user_id'. */
  idParam: string;
  noun: string;
  schema: TSchema;
  present(row: Row): unknown;
  create(ctx: ServiceContext, actor: Actor, p: Params, body: Data): Promise<Row>;
  /** When given, a PUT whose `data` is an array creates every item, all or nothing. */
  createMany?(ctx: ServiceContext, actor: Actor, p: Params, items: unknown[]): Promise<Row[]>;
  list(ctx: ServiceContext, actor: Actor, p: Params, query: Params): Promise<Row[]>;
  get(ctx: ServiceContext, actor: Actor, p: Params): Promise<Row>;
  update(ctx: ServiceContext, actor: Actor, p: Params, body: Data, options: UpdateOptions): Promise<Row>;
  remove(ctx: ServiceContext, actor: Actor, p: Params): Promise<Row>;
}

const paramsOf = (request: FastifyRequest) => request.params as Params;

export function updateOptions(request: FastifyRequest, merge: boolean): UpdateOptions {
  const expected = ifMatch(request);
  return expected === undefined ? { merge } : { merge, expectedRevision: expected };
}

export function collectionRoutes<Row extends { id: string; revision: string }>(c: Collection<Row>): RouteSpec[] {
  const member = `${c.base}/:${c.idParam}`;
  const update =
    (merge: boolean): Handler =>
    async ({ request, reply, actor, deps }) => {
      const row = await c.update(deps.ctx, actor, paramsOf(request), dataOf(request), updateOptions(request, merge));
      return send(request, reply, c.present(row), { revision: row.revision });
    };
  return [
    {
      method: 'PUT',
      url: c.base,
      body: c.schema,
      summary: `Create a ${c.noun}`,
      handler: async ({ request, reply, actor, deps }) => {
        const items = c.createMany ? dataListOf(request) : undefined;
        if (items !== undefined) return send(request, reply, (await c.createMany!(deps.ctx, actor, paramsOf(request), items)).map((row) => c.present(row)), { status: 201 });
        const row = await c.create(deps.ctx, actor, paramsOf(request), dataOf(request));
        const location = `${request.url.split('?')[0]!.replace(/\/$/, '')}/${row.id}`;
        return send(request, reply, c.present(row), { status: 201, revision: row.revision, location });
      },
    },
    {
      method: 'GET',
      url: c.base,
      summary: `List ${c.noun}s`,
      handler: async ({ request, reply, actor, deps }) => sendList(request, reply, await c.list(deps.ctx, actor, paramsOf(request), request.query as Params), (row) => row.id, c.present),
    },
    {
      method: 'GET',
      url: member,
      summary: `Read a ${c.noun}`,
      handler: async ({ request, reply, actor, deps }) => {
        const row = await c.get(deps.ctx, actor, paramsOf(request));
        return send(request, reply, c.present(row), { revision: row.revision });
      },
    },
    { method: 'POST', url: member, body: c.schema, summary: `Replace a ${c.noun}`, handler: update(false) },
    { method: 'PATCH', url: member, body: c.schema, summary: `Merge fields into a ${c.noun}`, handler: update(true) },
    {
      method: 'DELETE',
      url: member,
      summary: `Delete a ${c.noun}`,
      handler: async ({ request, reply, actor, deps }) => send(request, reply, c.present(await c.remove(deps.ctx, actor, paramsOf(request)))),
    },
  ];
}
