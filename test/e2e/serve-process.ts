// `ipwarden serve` as a child process for the SIP end-to-end tests: a database with its first
// (superduper) account, the server started with the given flags and awaited, and a login.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { credentialsOf } from '../../src/services/passwords.ts';

const bin = join(import.meta.dirname, '..', '..', 'bin', 'ipwarden.js');

export interface ServeProcess {
  base: string;
  process: ChildProcess;
  /** The first account's admin token and the account's id. */
  token: string;
  masterId: string;
  /** An API call with that token: its `data`, asserted successful. */
  api(method: string, path: string, data?: unknown): Promise<any>;
  /** /metrics on the API's port, opened with `token`. */
  metrics(token: string): Promise<string>;
}

/** Creates the first account (admin / secret) in `db`, serves it on `httpPort` with `flags`, and logs in. */
export async function startServe(db: string, httpPort: number, realm: string, flags: string[]): Promise<ServeProcess> {
  const created = spawnSync(process.execPath, [bin, 'create-account', 'Master', realm, 'admin', 'secret', '--db', db], { encoding: 'utf8' });
  assert.equal(created.status, 0, created.stderr);
  const child = spawn(process.execPath, [bin, 'serve', '--db', db, '--port', String(httpPort), '--host', '127.0.0.1', '--metrics-port', '0', '--log-level', 'silent', ...flags], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const base = `http://127.0.0.1:${httpPort}`;
  for (let i = 0; ; i++) {
    try {
      await fetch(`${base}/v2/health`);
      break;
    } catch {
      // A server that exited (a port taken, say) is reported at once, not after the wait.
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`the server exited before answering (${child.exitCode ?? child.signalCode}); its stderr is above`);
      // SIP workers (one per core) build their own index before the API answers.
      if (i > 600) throw new Error('the server did not start');
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const login = await fetch(`${base}/v2/user_auth`, { method: 'PUT', body: JSON.stringify({ data: { credentials: credentialsOf('admin', 'secret'), account_realm: realm } }) });
  const session = (await login.json()) as { auth_token: string; data: { account_id: string } };
  const token = session.auth_token;
  async function api(method: string, path: string, data?: unknown) {
    const response = await fetch(`${base}${path}`, { method, headers: { 'x-auth-token': token }, ...(data === undefined ? {} : { body: JSON.stringify({ data }) }) });
    const body = (await response.json()) as { data: any };
    assert.ok(response.status < 300, `${method} ${path}: ${response.status} ${JSON.stringify(body)}`);
    return body.data;
  }
  const metrics = async (metricsToken: string) => (await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${metricsToken}` } })).text();
  return { base, process: child, token, masterId: session.data.account_id, api, metrics };
}
