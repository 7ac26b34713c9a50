// The pool as the SIP edge's egress sees it (api.md §7.1), kept by the change feed: which IPs
// this node's host serves, who holds each one, and each account's IPs here in /ips/assigned order.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config.ts';
import { startServices } from '../../src/main.ts';
import { startHarness, type Harness } from '../support/harness.ts';

describe('EgressPool', () => {
  let h: Harness;
  const hostedChanges: string[][] = [];

  before(async () => {
    h = await startHarness({ sipHost: 'edge-1.example', zone: 'east' });
    h.services.pool.onHostedChange = (ips) => hostedChanges.push([...ips]);
  });
  after(() => h.close());

  const add = async (ip: string, zone: string, host: string) => {
    const response = await h.request('PUT', '/v2/ips', { token: h.master.token, body: { data: { ip, zone, host } } });
    assert.equal(response.statusCode, 201, response.body);
  };
  const as = async (method: string, url: string, data?: unknown) => {
    const response = await h.request(method, url, { token: h.master.token, ...(data === undefined ? {} : { body: { data } }) });
    assert.ok(response.statusCode < 300, response.body);
  };

  it('serves the pool IPs whose host is its own, assigned or not, and follows each pool write', async () => {
    const pool = h.services.pool;
    await add('10.0.0.10', 'east', 'edge-1.example');
    await add('10.0.0.9', 'west', 'edge-1.example');
    await add('10.0.0.20', 'east', 'edge-2.example');
    assert.deepEqual(pool.hosted(), ['10.0.0.9', '10.0.0.10']);
    await as('POST', '/v2/ips/10.0.0.20', { host: 'edge-1.example' });
    assert.deepEqual(pool.hosted(), ['10.0.0.9', '10.0.0.10', '10.0.0.20']);
    await as('DELETE', '/v2/ips/10.0.0.9');
    assert.deepEqual(pool.hosted(), ['10.0.0.10', '10.0.0.20']);
    assert.deepEqual(hostedChanges.at(-1), ['10.0.0.10', '10.0.0.20']);
  });

  it('knows who holds each IP, and lists an account’s IPs here with this zone first, then by address', async () => {
    const pool = h.services.pool;
    const a = await h.account('Egress A');
    const b = await h.account('Egress B');
    await add('10.0.1.5', 'west', 'edge-1.example');
    await add('10.0.1.7', 'east', 'edge-1.example');
    await add('10.0.1.6', 'east', 'edge-1.example');
    await add('10.0.1.1', 'east', 'elsewhere.example');
    await as('POST', `/v2/accounts/${a.id}/ips`, { ips: ['10.0.1.5', '10.0.1.7', '10.0.1.6', '10.0.1.1'] });
    assert.deepEqual(pool.heldFor(a.id), ['10.0.1.6', '10.0.1.7', '10.0.1.5']);
    assert.equal(pool.assigneeOf('10.0.1.1'), a.id);
    assert.equal(pool.assigneeOf('10.0.0.10'), null);
    // Moving an IP: released by A, taken by B; each step is seen at once.
    await as('DELETE', `/v2/accounts/${a.id}/ips/10.0.1.6`);
    assert.equal(pool.assigneeOf('10.0.1.6'), null);
    await as('POST', `/v2/accounts/${b.id}/ips/10.0.1.6`);
    assert.equal(pool.assigneeOf('10.0.1.6'), b.id);
    assert.deepEqual(pool.heldFor(a.id), ['10.0.1.7', '10.0.1.5']);
    assert.deepEqual(pool.heldFor(b.id), ['10.0.1.6']);
    // Deleting an account releases its IPs (api.md §2).
    await as('DELETE', `/v2/accounts/${a.id}`);
    assert.deepEqual(pool.heldFor(a.id), []);
    assert.equal(pool.assigneeOf('10.0.1.7'), null);
  });

  it('another process writing the same database is followed through the change feed', async () => {
    const other = await startServices(loadConfig({ db: h.config.db, logLevel: 'silent', sipHost: 'edge-1.example' }, {}));
    try {
      await add('10.0.2.1', 'east', 'edge-1.example');
      assert.ok(!other.pool.hosted().includes('10.0.2.1'));
      await other.ctx.decisions.catchUp();
      assert.ok(other.pool.hosted().includes('10.0.2.1'));
    } finally {
      await other.close();
    }
  });
});
