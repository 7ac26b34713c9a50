// Feeding other SBCs (api.md §9): Kamailio's address file as text, and FreeSWITCH's acl.conf
// through mod_xml_curl. The latter is not a Crossbar route: mod_xml_curl posts a form, takes
// XML back and authenticates with HTTP basic auth (`gateway-credentials`), so it is registered
// in a scope of its own, with its own body parser, outside the route table.

import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Failure } from '../../services/errors.ts';
import { exportKamailioAddress, freeswitchConfiguration } from '../../services/exports.ts';
import type { ApiDeps, RouteSpec } from '../route.ts';

const kamailioAddress: RouteSpec = {
  method: 'GET',
  url: '/v2/exports/kamailio/address',
  summary: "Every active trunk entry in Kamailio's permissions address-file format (superduper)",
  contentType: 'text/plain; charset=utf-8',
  handler: async ({ reply, actor, deps }) => {
    const text = await exportKamailioAddress(deps.ctx, actor, deps.ctx.kamailioGroup ?? 1);
    reply.header('content-type', kamailioAddress.contentType);
    return text;
  },
};

export const routes: RouteSpec[] = [kamailioAddress];

/** The password of `Authorization: Basic …` (mod_xml_curl's gateway-credentials `user:API_KEY`). */
function basicPassword(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (typeof header !== 'string' || !/^basic /i.test(header)) return undefined;
  const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon < 0 ? undefined : decoded.slice(colon + 1);
}

/** mod_xml_curl's fields, from its form-encoded body (or the query, with `use-get-style`). */
function fieldsOf(request: FastifyRequest): URLSearchParams {
  const fields = new URLSearchParams(typeof request.body === 'string' ? request.body : '');
  for (const [name, value] of Object.entries(request.query as Record<string, unknown>)) if (typeof value === 'string' && !fields.has(name)) fields.set(name, value);
  return fields;
}

export function xmlCurlRoutes(deps: ApiDeps) {
  return async (scope: FastifyInstance) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'string' }, (_request, body, done) => done(null, String(body)));
    scope.route({
      method: ['GET', 'POST'],
      url: '/freeswitch/xml_curl',
      schema: { hide: true },
      handler: async (request, reply) => {
        const apiKey = basicPassword(request);
        if (apiKey === undefined) {
          reply.header('www-authenticate', 'Basic realm="ipwarden"');
          throw new Failure('unauthorized', 'invalid_credentials');
        }
        const actor = await deps.auth.actorOfApiKey(apiKey, request.ip);
        const fields = fieldsOf(request);
        const document = await freeswitchConfiguration(deps.ctx, actor, fields.get('section'), fields.get('key_value'));
        reply.header('content-type', 'text/xml');
        return document;
      },
    });
  };
}
