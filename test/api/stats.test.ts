// GET /v2/stats (issue 25): this node's decision and SIP counters, as /metrics counts them, for the
// console's live chart; superduper only (the figures span every tenant).

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { createEdgeMetrics } from '../../src/edge/metrics.ts';
import { loadConfig } from '../../src/config.ts';
import { serve } from '../../src/main.ts';
import { bootstrapAccount } from '../../src/services/bootstrap.ts';
import { SYSTEM_ACTOR } from '../../src/services/actor.ts';
import { credentialsOf } from '../../src/services/passwords.ts';
import { buildApp } from '../../src/api/app.ts';
import { startHarness } from '../support/harness.ts';

test('GET /v2/stats counts the decisions /metrics counts, allowed and denied', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ipwarden-stats-'));
  const server = await serve(loadConfig({ db: join(dir, 's.db'), port: '0', host: '127.0.0.1', logLevel: 'silent', metricsPort: '0' }, {}));
  try {
    const base = `http://127.0.0.1:${(server.app.server.address() as { port: number }).port}`;
    const account = await bootstrapAccount(server.services.ctx, SYSTEM_ACTOR, { name: 'S', realm: 's.test', username: 'admin', password: 'pw' });
    const login = await fetch(`${base}/v2/user_auth`, { method: 'PUT', body: JSON.stringify({ data: { credentials: credentialsOf('admin', 'pw'), account_realm: 's.test' } }) });
    const headers = { 'x-auth-token': ((await login.json()) as { auth_token: string }).auth_token };
    const stats = async () => {
      const response = await fetch(`${base}/v2/stats`, { headers });
      assert.equal(response.status, 200);
      assert.equal(response.headers.get('content-type'), 'application/json');
      return ((await response.json()) as { data: unknown }).data;
    };
    assert.deepEqual(await stats(), { decisions: { allowed: 0, denied: 0 }, sip: { forwarded: 0, rejected: 0 } });

    await fetch(`${base}/v2/accounts/${account.id}/access_lists`, { method: 'POST', headers, body: JSON.stringify({ data: { order: 'allow,deny', cidrs: ['192.0.2.0/24'] } }) });
    for (const ip of ['192.0.2.7', '192.0.2.8', '198.51.100.1']) await fetch(`${base}/v2/accounts/${account.id}/access_lists/check?ip=${ip}`, { headers });
    assert.deepEqual(await stats(), { decisions: { allowed: 2, denied: 1 }, sip: { forwarded: 0, rejected: 0 } });
    const metrics = await (await fetch(`http://127.0.0.1:${(server.metrics.address() as { port: number }).port}/metrics`)).text();
    assert.match(metrics, /ipwarden_decisions_total\{kind="access_list",result="allow"\} 2/);
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('GET /v2/stats sums the SIP edge counters over their labels', async () => {
  const h = await startHarness();
  const registry = new Registry();
  const edge = createEdgeMetrics(registry);
  const app = await buildApp(h.services, { corsOrigin: '*', bodyLimit: 1 << 20, registry });
  try {
    const to = { host: '127.0.0.1', port: 5060 };
    for (const direction of ['request', 'response', 'request'] as const) edge.count({ action: 'forward', direction, to, transport: 'udp', bytes: Buffer.alloc(0) });
    edge.count({ action: 'reject', reason: 'acl' });
    edge.count({ action: 'drop', reason: 'keepalive' });
    const response = await app.inject({ method: 'GET', url: '/v2/stats', headers: { 'x-auth-token': h.master.token } });
    assert.deepEqual(response.json().data, { decisions: { allowed: 0, denied: 0 }, sip: { forwarded: 3, rejected: 1 } });
  } finally {
    await app.close();
    await h.close();
  }
});

test('GET /v2/stats is for a superduper admin only', async () => {
  const h = await startHarness();
  try {
    const tenant = await h.account('Tenant');
    const refused = await h.request('GET', '/v2/stats', { token: tenant.token });
    assert.equal(refused.statusCode, 403);
    assert.deepEqual(refused.json().data, { message: 'forbidden' });
    assert.equal((await h.request('GET', '/v2/stats')).statusCode, 401);
  } finally {
    await h.close();
  }
});
