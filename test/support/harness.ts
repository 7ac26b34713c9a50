// A whole API over a private database for one test file: the real app, services and store,
// driven with app.inject (no port). Helpers log in the way a KAZOO client does.

import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { buildApp } from '../../src/api/app.ts';
import { loadConfig, type Config } from '../../src/config.ts';
import { startServices, type Services } from '../../src/main.ts';
import { bootstrapAccount } from '../../src/services/bootstrap.ts';
import { SYSTEM_ACTOR } from '../../src/services/actor.ts';
import type { AuthTime } from '../../src/services/auth.ts';
import { credentialsOf } from '../../src/services/passwords.ts';

export interface Harness {
  app: FastifyInstance;
  services: Services;
  config: Config;
  /** The superduper master account and its admin's token. */
  master: { id: string; token: string };
  request(method: string, url: string, options?: { token?: string; body?: unknown; headers?: Record<string, string> }): Promise<LightMyRequestResponse & { json(): any }>;
  /** Creates an account (child of `parentId`, or top-level under the master) with an admin user, and logs in. */
  account(name: string, options?: { parentId?: string; token?: string }): Promise<{ id: string; token: string; realm: string }>;
  /** Adds a user to an account and logs in as them. */
  user(accountId: string, realm: string, privLevel: 'admin' | 'user', token: string): Promise<{ id: string; token: string }>;
  login(username: string, password: string, realm: string): Promise<string>;
  close(): Promise<void>;
}

let counter = 0;

/** `flags` are settings as the CLI takes them (e.g. { maxCidrs: '5' }); `authTime` e.g. a TestClock's. */
export async function startHarness(flags: Record<string, string> = {}, authTime: AuthTime = {}): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), 'ipwarden-test-'));
  const config = loadConfig({ db: join(dir, 'test.db'), logLevel: 'silent', ...flags }, {});
  const services = await startServices(config, undefined, authTime);
  const app = await buildApp(services, { corsOrigin: config.corsOrigin, bodyLimit: config.bodyLimit, registry: new Registry(), ...(config.trustProxy ? { trustProxy: config.trustProxy } : {}) });
  await app.ready();

  const request: Harness['request'] = async (method, url, options = {}) => {
    const headers: Record<string, string> = { ...(options.headers ?? {}) };
    if (options.token) headers['x-auth-token'] = options.token;
    const response = await app.inject({
      method: method as 'GET',
      url,
      headers,
      ...(options.body === undefined ? {} : { payload: typeof options.body === 'string' ? options.body : JSON.stringify(options.body) }),
    });
    return response as LightMyRequestResponse & { json(): any };
  };

  const login = async (username: string, password: string, realm: string) => {
    const response = await request('PUT', '/v2/user_auth', { body: { data: { credentials: credentialsOf(username, password), account_realm: realm } } });
    if (response.statusCode !== 201) throw new Error(`login failed: ${response.body}`);
    return response.json().auth_token as string;
  };

  const masterAccount = await bootstrapAccount(services.ctx, SYSTEM_ACTOR, { name: 'Master', realm: 'master.test', username: 'admin', password: 'secret' });
  const master = { id: masterAccount.id, token: await login('admin', 'secret', 'master.test') };

  const harness: Harness = {
    app,
    services,
    config,
    master,
    request,
    login,
    async account(name, options = {}) {
      const realm = `${name.toLowerCase().replace(/[^a-z0-9]/g, '')}${++counter}.test`;
      const parent = options.parentId ?? master.id;
      const created = await request('PUT', `/v2/accounts/${parent}`, { token: options.token ?? master.token, body: { data: { name, realm } } });
      if (created.statusCode !== 201) throw new Error(`account creation failed: ${created.body}`);
      const id = created.json().data.id as string;
      const user = await request('PUT', `/v2/accounts/${id}/users`, { token: options.token ?? master.token, body: { data: { username: 'admin', password: 'pw', priv_level: 'admin' } } });
      if (user.statusCode !== 201) throw new Error(`user creation failed: ${user.body}`);
      return { id, realm, token: await login('admin', 'pw', realm) };
    },
    async user(accountId, realm, privLevel, token) {
      const username = `${privLevel}${++counter}`;
      const created = await request('PUT', `/v2/accounts/${accountId}/users`, { token, body: { data: { username, password: 'pw', priv_level: privLevel } } });
      if (created.statusCode !== 201) throw new Error(`user creation failed: ${created.body}`);
      return { id: created.json().data.id as string, token: await login(username, 'pw', realm) };
    },
    async close() {
      await app.close();
      await services.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return harness;
}
