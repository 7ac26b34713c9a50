// api.md §9 migration: Kamailio address files and FreeSWITCH acl.conf lists into ipwarden, by the
// API's own rules, all or nothing, with a dry run; the imported data exports back the same.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { SYSTEM_ACTOR } from '../../src/services/actor.ts';
import { exportFreeswitchAcl, exportKamailioAddress } from '../../src/services/exports.ts';
import { importFreeswitchAcl, importKamailioAddress, type KamailioMapping } from '../../src/services/imports.ts';
import { startHarness, type Harness } from '../support/harness.ts';
import { admin, BASE_URL, schemaUrl, unreachable } from '../support/postgres.ts';

let h: Harness;
let a: { id: string; token: string; realm: string };
let b: { id: string; token: string; realm: string };
let trunkA = '';
let trunkA2 = '';
let trunkB = '';

async function ok(method: string, url: string, data?: unknown): Promise<any> {
  const response = await h.request(method, url, { token: h.master.token, ...(data === undefined ? {} : { body: { data } }) });
  assert.ok(response.statusCode < 300, `${method} ${url}: ${response.body}`);
  return response.json().data;
}

const noMapping = (): KamailioMapping => ({ groups: new Map(), tags: new Map() });
const exported = () => exportKamailioAddress(h.services.ctx, SYSTEM_ACTOR, 1);
const importFile = (text: string, mapping = noMapping(), dryRun = false) => importKamailioAddress(h.services.ctx, SYSTEM_ACTOR, text, mapping, { dryRun });

before(async () => {
  h = await startHarness({ maxIpAclsPerTrunk: '5' });
  a = await h.account('Alpha');
  b = await h.account('Beta');
  trunkA = (await ok('PUT', `/v2/accounts/${a.id}/trunks`, { name: 'PBX' })).id;
  trunkA2 = (await ok('PUT', `/v2/accounts/${a.id}/trunks`, { name: 'Backup' })).id;
  trunkB = (await ok('PUT', `/v2/accounts/${b.id}/trunks`, { name: 'Carrier' })).id;
  // Beta already owns this block: nobody else may take any of it.
  await ok('PUT', `/v2/accounts/${b.id}/trunks/${trunkB}/ip_acls`, { ip_address: '198.51.100.0/24' });
});
after(() => h.close());

describe('import kamailio-address', () => {
  test('refuses the whole file when any record fails, naming each with its line and reason', async () => {
    const before = await exported();
    const file = [
      '# carriers',
      '1 203.0.113.10 32 0 x', //           2: fine
      '1 198.51.100.7 32 0 x', //           3: inside Beta's block
      '1 10.1.2.3 32 0 x', //               4: private
      '1 203.0.113.11 32 5060 x', //        5: a port
      'one 203.0.113.12', //                6: not a record
      '2 203.0.113.13', //                  7: group 2 has no trunk
      '1 203.0.113.14 32 0 nobody', //      8: tag mapped to an unknown trunk
    ].join('\n');
    const mapping: KamailioMapping = { groups: new Map([[1, { accountId: a.id, trunkId: trunkA }]]), tags: new Map([['nobody', { accountId: a.id, trunkId: '00000000-0000-4000-8000-000000000000' }]]) };
    const report = await importFile(file, mapping);
    assert.equal(report.applied, false);
    assert.deepEqual(
      report.created.map((i) => i.source),
      ['line 2'],
    );
    const reasons = Object.fromEntries(report.refused.map((i) => [i.source, i.reason]));
    assert.deepEqual(Object.keys(reasons).sort(), ['line 3', 'line 4', 'line 5', 'line 6', 'line 7', 'line 8']);
    assert.match(reasons['line 3']!, /overlaps an address authenticating another account/);
    assert.match(reasons['line 4']!, /not a public address: it is in 10\.0\.0\.0\/8/);
    assert.match(reasons['line 5']!, /port 5060/);
    assert.match(reasons['line 6']!, /group 'one' is not a whole number/);
    assert.match(reasons['line 7']!, /no trunk for group 2: give --map 2=ACCOUNT_ID:TRUNK_ID/);
    assert.match(reasons['line 8']!, /bad identifier; 00000000-0000-4000-8000-000000000000/);
    assert.equal(await exported(), before, 'nothing was written');
  });

  test('a dry run reports and writes nothing; the real run creates every record in one go', async () => {
    const file = '1 203.0.113.20\n1 203.0.113.32 28 0 backup\n';
    const mapping: KamailioMapping = { groups: new Map([[1, { accountId: a.id, trunkId: trunkA }]]), tags: new Map([['backup', { accountId: a.id, trunkId: trunkA2 }]]) };
    const before = await exported();
    const dry = await importFile(file, mapping, true);
    assert.equal(dry.applied, false);
    assert.deepEqual(
      dry.created.map((i) => [i.source, i.what, i.target]),
      [
        ['line 1', '203.0.113.20', `${a.id}:${trunkA}`],
        ['line 2', '203.0.113.32/28', `${a.id}:${trunkA2}`],
      ],
    );
    assert.equal(await exported(), before);
    const real = await importFile(file, mapping);
    assert.equal(real.applied, true);
    assert.deepEqual(real.refused, []);
    const after = await exported();
    assert.ok(after.includes(`1 203.0.113.20 32 0 ${a.id}:${trunkA}\n`), after);
    assert.ok(after.includes(`1 203.0.113.32 28 0 ${a.id}:${trunkA2}\n`), after);
    // written by the rules' own path: audited, and the decision index sees them at once
    assert.equal(h.services.ctx.decisions.lookupTrunk('203.0.113.40')?.trunkId, trunkA2);
  });

  test('records of one file are checked against each other: two tenants may not share a block', async () => {
    const file = `1 192.0.2.0 24 0 ${a.id}:${trunkA}\n1 192.0.2.128 25 0 ${b.id}:${trunkB}\n`;
    const report = await importFile(file);
    assert.equal(report.applied, false);
    assert.deepEqual(
      report.refused.map((i) => i.source),
      ['line 2'],
    );
    assert.match(report.refused[0]!.reason!, /another account/);
  });

  test("the trunk's limit counts what the file adds", async () => {
    const file = ['1 203.0.113.100', '1 203.0.113.101', '1 203.0.113.102', '1 203.0.113.103', '1 203.0.113.104', '1 203.0.113.105'].join('\n');
    const report = await importFile(file, { groups: new Map([[1, { accountId: b.id, trunkId: trunkB }]]), tags: new Map() });
    assert.equal(report.applied, false);
    assert.deepEqual(
      report.refused.map((i) => i.source),
      ['line 5', 'line 6'],
    );
    assert.match(report.refused[0]!.reason!, /at most 5 IP ACL entries/);
  });

  test('import → export round-trips an address file ipwarden wrote', async () => {
    const fresh = await startHarness();
    try {
      const acct = await fresh.request('PUT', `/v2/accounts/${fresh.master.id}`, { token: fresh.master.token, body: { data: { name: 'Gamma', realm: 'gamma.test' } } });
      const gamma = acct.json().data.id as string;
      const trunks = [];
      for (const name of ['One', 'Two']) trunks.push((await fresh.request('PUT', `/v2/accounts/${gamma}/trunks`, { token: fresh.master.token, body: { data: { name } } })).json().data.id as string);
      const file = [
        `1 2001:db8:7::1 128 0 ${gamma}:${trunks[1]}`,
        `1 2001:db8:8:: 48 0 ${gamma}:${trunks[1]}`,
        `1 203.0.113.9 32 0 ${gamma}:${trunks[0]}`,
        `1 203.0.113.64 26 0 ${gamma}:${trunks[0]}`,
        `1 198.51.100.0 24 0 ${gamma}:${trunks[1]}`,
        '',
      ].join('\n');
      const report = await importKamailioAddress(fresh.services.ctx, SYSTEM_ACTOR, file, noMapping(), { dryRun: false });
      assert.deepEqual(report.refused, []);
      assert.equal(report.applied, true);
      assert.equal(await exportKamailioAddress(fresh.services.ctx, SYSTEM_ACTOR, 1), file);
    } finally {
      await fresh.close();
    }
  });
});

describe('import freeswitch-acl', () => {
  const acl = (lists: string) => `<configuration name="acl.conf" description="Network Lists"><network-lists>${lists}</network-lists></configuration>`;

  test('mapped lists become access lists; unmapped ones are skipped; one list FreeSWITCH cannot give as one order refuses the file', async () => {
    const file = acl(`
      <list name="office" default="deny"><node type="allow" cidr="203.0.113.0/24"/><node type="allow" host="192.0.2.0" mask="255.255.255.0"/></list>
      <list name="blocked" default="allow"><node type="deny" cidr="2001:db8::/32"/></list>
      <list name="lan" default="allow"><node type="deny" cidr="10.0.0.0/8"/></list>
      <list name="mixed" default="deny"><node type="allow" cidr="203.0.113.0/24"/><node type="deny" cidr="203.0.113.128/25"/></list>`);
    const mapping = new Map([
      ['office', a.id],
      ['blocked', b.id],
      ['mixed', b.id],
    ]);
    const refused = await importFreeswitchAcl(h.services.ctx, SYSTEM_ACTOR, file, mapping, { dryRun: false });
    assert.equal(refused.applied, false);
    assert.deepEqual(
      refused.refused.map((i) => [i.source, i.reason?.replace(/:.*/, '')]),
      [['list mixed', '203.0.113.128/25 (deny) inside 203.0.113.0/24 (allow)']],
    );
    assert.deepEqual(
      refused.skipped.map((i) => i.source),
      ['list lan'],
    );
    assert.equal((await ok('GET', `/v2/accounts/${a.id}/access_lists`)).order, undefined, 'nothing written');

    mapping.delete('mixed');
    const applied = await importFreeswitchAcl(h.services.ctx, SYSTEM_ACTOR, file, mapping, { dryRun: false });
    assert.equal(applied.applied, true);
    assert.deepEqual(await ok('GET', `/v2/accounts/${a.id}/access_lists`), { order: 'allow,deny', cidrs: ['203.0.113.0/24', '192.0.2.0/24'] });
    assert.deepEqual(await ok('GET', `/v2/accounts/${b.id}/access_lists`), { order: 'deny,allow', cidrs: ['2001:db8::/32'] });
    // the decision index follows at once
    assert.equal(h.services.ctx.decisions.decide(b.id, undefined, '2001:db8::1', '')!.decision, 'deny');
  });

  test('export → import: ipwarden-ACCOUNT lists map themselves and come back with the same decisions', async () => {
    const xml = await exportFreeswitchAcl(h.services.ctx, SYSTEM_ACTOR);
    await ok('DELETE', `/v2/accounts/${a.id}/access_lists`);
    const report = await importFreeswitchAcl(h.services.ctx, SYSTEM_ACTOR, xml, new Map(), { dryRun: false });
    assert.equal(report.applied, true, JSON.stringify(report));
    assert.deepEqual(
      report.skipped.map((i) => i.source),
      ['list ipwarden-trunks'],
    );
    const list = await ok('GET', `/v2/accounts/${a.id}/access_lists`);
    assert.equal(list.order, 'allow,deny');
    assert.deepEqual([...list.cidrs].sort(), ['192.0.2.0/24', '203.0.113.0/24']);
  });

  test('a file that is no acl.conf is a validation error', async () => {
    await assert.rejects(importFreeswitchAcl(h.services.ctx, SYSTEM_ACTOR, '<configuration name="sofia.conf"/>', new Map(), { dryRun: true }), /validation error/);
  });
});

const pgUnavailable = await unreachable();
describe('import kamailio-address on PostgreSQL', { skip: process.env.CI === 'true' ? false : (pgUnavailable ?? false) }, () => {
  test('one refused record leaves nothing written; the corrected file is written whole and exports back', async () => {
    assert.equal(pgUnavailable, null, pgUnavailable ?? '');
    const schema = `t_${randomBytes(6).toString('hex')}`;
    const pgh = await startHarness({ databaseUrl: schemaUrl(BASE_URL, schema) });
    try {
      const create = async (url: string, data: unknown) => (await pgh.request('PUT', url, { token: pgh.master.token, body: { data } })).json().data.id as string;
      const mine = await create(`/v2/accounts/${pgh.master.id}`, { name: 'Mine', realm: 'mine.test' });
      const theirs = await create(`/v2/accounts/${pgh.master.id}`, { name: 'Theirs', realm: 'theirs.test' });
      const myTrunk = await create(`/v2/accounts/${mine}/trunks`, { name: 'PBX' });
      const theirTrunk = await create(`/v2/accounts/${theirs}/trunks`, { name: 'PBX' });
      await create(`/v2/accounts/${theirs}/trunks/${theirTrunk}/ip_acls`, { ip_address: '198.51.100.0/24' });
      const file = `1 203.0.113.9 32 0 ${mine}:${myTrunk}\n1 198.51.100.9 32 0 ${mine}:${myTrunk}\n`;
      const refused = await importKamailioAddress(pgh.services.ctx, SYSTEM_ACTOR, file, noMapping(), { dryRun: false });
      assert.equal(refused.applied, false);
      assert.deepEqual(refused.refused.map((i) => i.source), ['line 2']);
      const only = `1 198.51.100.0 24 0 ${theirs}:${theirTrunk}\n`;
      assert.equal(await exportKamailioAddress(pgh.services.ctx, SYSTEM_ACTOR, 1), only);
      const good = `1 203.0.113.9 32 0 ${mine}:${myTrunk}\n1 203.0.113.64 26 0 ${mine}:${myTrunk}\n`;
      const applied = await importKamailioAddress(pgh.services.ctx, SYSTEM_ACTOR, good, noMapping(), { dryRun: false });
      assert.equal(applied.applied, true, JSON.stringify(applied.refused));
      assert.equal(await exportKamailioAddress(pgh.services.ctx, SYSTEM_ACTOR, 1), good + only);
    } finally {
      await pgh.close();
      await admin((c) => c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`));
    }
  });
});
