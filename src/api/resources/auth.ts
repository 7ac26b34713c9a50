// user_auth, api_auth, token_auth (api.md §2).

import type { TSchema } from '@sinclair/typebox';
import type { Authenticator, Session } from '../../services/auth.ts';
import { dataOf, send, type Data } from '../envelope.ts';
import type { RouteSpec } from '../route.ts';
import { ApiAuthSchema, UserAuthSchema } from '../../services/schemas.ts';

/** Who, and until when; the token itself travels in the envelope. */
function presentSession(session: Session): Record<string, unknown> {
  const data: Record<string, unknown> = {
    account_id: session.actor.accountId,
    method: session.method,
    expires_at: session.expiresAt,
    is_superduper_admin: session.actor.superduper,
  };
  if (session.actor.userId !== undefined) data.owner_id = session.actor.userId;
  return data;
}

/** A login: a token for whoever the body proves to be (a token sent along is ignored). */
function login(url: string, body: TSchema, summary: string, open: (auth: Authenticator, data: Data, source: string) => Promise<Session>): RouteSpec {
  return {
    method: 'PUT',
    url,
    auth: 'none',
    body,
    summary,
    handler: async ({ request, reply, deps }) => {
      const session = await open(deps.auth, dataOf(request), request.ip);
      request.authToken = session.token;
      return send(request, reply, presentSession(session), { status: 201 });
    },
  };
}

export const routes: RouteSpec[] = [
  login('/v2/user_auth', UserAuthSchema, 'Log in with md5("username:password") and an account name or realm', (auth, data, source) => auth.userAuth(data, source)),
  login('/v2/api_auth', ApiAuthSchema, "Log in with an account's API key", (auth, data, source) => auth.apiAuth(data, source)),
  {
    method: 'GET',
    url: '/v2/token_auth',
    summary: 'About the token',
    handler: async ({ request, reply, deps }) => send(request, reply, presentSession(await deps.auth.verify(request.authToken!))),
  },
  {
    method: 'DELETE',
    url: '/v2/token_auth',
    summary: 'Log out: the token stops working',
    handler: async ({ request, reply, actor, deps }) => {
      await deps.auth.revoke(request.authToken!, actor);
      return send(request, reply, {});
    },
  },
];
