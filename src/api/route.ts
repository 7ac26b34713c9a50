// One row of the route table. Every resource file exports its rows; app.ts registers them, answers
// 405 for the other methods of each path, and the authorisation-matrix test walks the same table.

import type { TSchema } from '@sinclair/typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Authenticator } from '../services/auth.ts';
import type { Actor } from '../services/actor.ts';
import type { ServiceContext } from '../services/context.ts';
import type { EgressSocketReport } from '../services/node-status.ts';

export type Method = 'GET' | 'PUT' | 'POST' | 'PATCH' | 'DELETE';

export interface ApiDeps {
  ctx: ServiceContext;
  auth: Authenticator;
  /** The SIP edge, when this process runs one: its dedicated-IP sockets go in health (api.md §7.1). */
  sip?: { egress(): Promise<EgressSocketReport[]> };
}

export interface Handler {
  (call: { request: FastifyRequest; reply: FastifyReply; actor: Actor; deps: ApiDeps }): Promise<unknown>;
}

export interface RouteSpec {
  method: Method;
  url: string;
  /**
   * 'token': a valid token is required (the default); 'none': no token (logins); 'optional': a
   * valid token names the caller, no token or any other is the anonymous caller (health).
   */
  auth?: 'token' | 'none' | 'optional';
  /** The body's `data` schema, for the OpenAPI document. */
  body?: TSchema;
  summary: string;
  /** What a success is sent as, when it is not JSON (api.md §9: the Kamailio export's text/plain); errors stay JSON. */
  contentType?: string;
  handler: Handler;
}
