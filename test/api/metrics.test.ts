// Prometheus metrics (issue 6): requests by route and status, decisions by result, decision
// latency, index size and rebuild time, served by `serve` on its own listener (issue 20: loopback
// by default), and on the API's port only to a bearer of --metrics-token.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { describeConfig, loadConfig } from '../../src/config.ts';
import { serve, type Server } from '../../src/main.ts';
import { bootstrapAccount } from '../../src/services/bootstrap.ts';
import { SYSTEM_ACTOR } from '../../src/services/actor.ts';
import { credentialsOf } from '../../src/services/passwords.ts';

async function withServer(flags: Record<string, string>, fn: (server: Server, base: string, metricsBase: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'ipwarden-metrics-'));
  const server = await serve(loadConfig({ db: join(dir, 'm.db'), port: '0', host: '127.0.0.1', metricsPort: '0', logLevel: 'silent', ...flags }, {}));
  try {
    const { port } = server.app.server.address() as { port: number };
    const metrics = server.metrics.address() as { address: string; port: number };
    await fn(server, `http://127.0.0.1:${port}`, `http://${metrics.address}:${metrics.port}`);
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

test('GET /metrics counts requests and decisions and reports the index', async () => {
  await withServer({}, async (server, base, metricsBase) => {
    const account = await bootstrapAccount(server.services.ctx, SYSTEM_ACTOR, { name: 'M', realm: 'm.test', username: 'admin', password: 'pw' });
    const login = await fetch(`${base}/v2/user_auth`, { method: 'PUT', body: JSON.stringify({ data: { credentials: credentialsOf('admin', 'pw'), account_realm: 'm.test' } }) });
    const token = ((await login.json()) as { auth_token: string }).auth_token;
    const headers = { 'x-auth-token': token };
    await fetch(`${base}/v2/accounts/${account.id}/access_lists`, { method: 'POST', headers, body: JSON.stringify({ data: { order: 'allow,deny', cidrs: ['192.0.2.0/24'] } }) });
    for (const ip of ['192.0.2.7', '192.0.2.8', '198.51.100.1']) await fetch(`${base}/v2/accounts/${account.id}/access_lists/check?ip=${ip}`, { headers });

    const scrape = await fetch(`${metricsBase}/metrics`);
    assert.equal(scrape.status, 200);
    assert.match(scrape.headers.get('content-type') ?? '', /^text\/plain/);
    const metrics = await scrape.text();
    assert.match(metrics, /ipwarden_http_requests_total\{method="GET",route="\/v2\/accounts\/:account_id\/access_lists\/check",status="200"\} 3/);
    assert.match(metrics, /ipwarden_decisions_total\{kind="access_list",result="allow"\} 2/);
    assert.match(metrics, /ipwarden_decisions_total\{kind="access_list",result="deny"\} 1/);
    assert.match(metrics, /ipwarden_decision_duration_seconds_count\{kind="access_list"\} 3/);
    assert.match(metrics, /ipwarden_index_accounts 1/);
    assert.match(metrics, /ipwarden_index_rebuild_seconds \d/);
    assert.match(metrics, /ipwarden_index_current 1/);
  });
});

test("metrics are not public by default: their own listener on loopback; the API's port answers 404", async () => {
  const defaults = loadConfig({}, {});
  assert.equal(defaults.metricsHost, '127.0.0.1');
  assert.equal(defaults.metricsPort, 8001);
  assert.equal(defaults.metricsToken, undefined);
  await withServer({}, async (server, base, metricsBase) => {
    assert.equal((server.metrics.address() as { address: string }).address, '127.0.0.1');
    const onApi = await fetch(`${base}/metrics`);
    assert.equal(onApi.status, 404);
    assert.equal(((await onApi.json()) as { message: string }).message, 'bad_identifier');
    // The metrics listener serves /metrics alone.
    assert.equal((await fetch(`${metricsBase}/v2/health`)).status, 404);
    assert.equal((await fetch(`${metricsBase}/metrics`)).headers.get('x-content-type-options'), 'nosniff');
  });
});

test("with --metrics-token the API's port serves /metrics to its bearer only (401 otherwise)", async () => {
  // The token is a secret: the configuration printed at start hides it.
  assert.equal(describeConfig(loadConfig({ metricsToken: 'scrape-secret-1' }, {})).metricsToken, '***');
  await withServer({ metricsToken: 'scrape-secret-1' }, async (_server, base) => {
    assert.equal((await fetch(`${base}/metrics`)).status, 401);
    assert.equal((await fetch(`${base}/metrics`, { headers: { authorization: 'Bearer wrong' } })).status, 401);
    const scrape = await fetch(`${base}/metrics`, { headers: { authorization: 'Bearer scrape-secret-1' } });
    assert.equal(scrape.status, 200);
    assert.match(await scrape.text(), /ipwarden_index_current 1/);
  });
});
