// api.md §9: the Kamailio address export and FreeSWITCH's mod_xml_curl binding, over HTTP.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { XMLParser } from 'fast-xml-parser';
import { startHarness, type Harness } from '../support/harness.ts';

let h: Harness;
let a: { id: string; token: string; realm: string };
let b: { id: string; token: string; realm: string };
let trunkA = '';
let trunkB = '';
let masterKey = '';
let accountKey = '';

async function ok(method: string, url: string, data?: unknown, token = h.master.token): Promise<any> {
  const response = await h.request(method, url, { token, ...(data === undefined ? {} : { body: { data } }) });
  assert.ok(response.statusCode < 300, `${method} ${url}: ${response.body}`);
  return response.json().data;
}

before(async () => {
  h = await startHarness({ kamailioGroup: '7' });
  a = await h.account('Alpha');
  b = await h.account('Beta');
  trunkA = (await ok('PUT', `/v2/accounts/${a.id}/trunks`, { name: 'PBX' })).id;
  trunkB = (await ok('PUT', `/v2/accounts/${b.id}/trunks`, { name: 'Carrier' })).id;
  const off = (await ok('PUT', `/v2/accounts/${b.id}/trunks`, { name: 'Off', enabled: false })).id;
  await ok('PUT', `/v2/accounts/${a.id}/trunks/${trunkA}/ip_acls`, { ip_address: '203.0.113.10' });
  await ok('PUT', `/v2/accounts/${a.id}/trunks/${trunkA}/ip_acls`, { ip_address: '203.0.113.64/26' });
  await ok('PUT', `/v2/accounts/${a.id}/trunks/${trunkA}/ip_acls`, { ip_address: '192.0.2.5', enabled: false });
  await ok('PUT', `/v2/accounts/${b.id}/trunks/${trunkB}/ip_acls`, { ip_address: '198.51.100.0/24' });
  await ok('PUT', `/v2/accounts/${b.id}/trunks/${trunkB}/ip_acls`, { ip_address: '2001:db8:5::/48' });
  await ok('PUT', `/v2/accounts/${b.id}/trunks/${off}/ip_acls`, { ip_address: '192.0.2.9' });
  await ok('POST', `/v2/accounts/${a.id}/access_lists`, { order: 'allow,deny', cidrs: ['203.0.113.0/24'] });
  await ok('POST', `/v2/accounts/${b.id}/access_lists`, { order: 'deny,allow', cidrs: ['192.0.2.66'], user_agent: '^Yealink' });
  const device = (await ok('PUT', `/v2/accounts/${a.id}/devices`, { name: 'Desk', sip: { username: 'desk' } })).id;
  await ok('POST', `/v2/accounts/${a.id}/devices/${device}/access_lists`, { order: 'allow,deny', cidrs: ['203.0.113.9'] });
  masterKey = (await ok('GET', `/v2/accounts/${h.master.id}/api_key`)).api_key;
  accountKey = (await ok('GET', `/v2/accounts/${a.id}/api_key`)).api_key;
});
after(() => h.close());

describe('GET /v2/exports/kamailio/address', () => {
  test('every active trunk entry as `grp ip mask port ACCOUNT:TRUNK`, longest prefix first, in text/plain', async () => {
    const response = await h.request('GET', '/v2/exports/kamailio/address', { token: h.master.token });
    assert.equal(response.statusCode, 200);
    assert.match(String(response.headers['content-type']), /^text\/plain/);
    assert.equal(
      response.body,
      [`7 2001:db8:5:: 48 0 ${b.id}:${trunkB}`, `7 203.0.113.10 32 0 ${a.id}:${trunkA}`, `7 203.0.113.64 26 0 ${a.id}:${trunkA}`, `7 198.51.100.0 24 0 ${b.id}:${trunkB}`, ''].join('\n'),
    );
  });

  test('only a superduper admin may read it', async () => {
    const response = await h.request('GET', '/v2/exports/kamailio/address', { token: a.token });
    assert.equal(response.statusCode, 403);
    assert.equal(response.json().message, 'forbidden');
  });
});

describe('POST /freeswitch/xml_curl', () => {
  const form = (fields: Record<string, string>) => new URLSearchParams(fields).toString();
  const basic = (key: string) => `Basic ${Buffer.from(`freeswitch:${key}`).toString('base64')}`;
  const post = (body: string, authorization?: string) =>
    h.request('POST', '/freeswitch/xml_curl', { body, headers: { 'content-type': 'application/x-www-form-urlencoded', ...(authorization ? { authorization } : {}) } });
  const aclRequest = form({ hostname: 'fs1', section: 'configuration', tag_name: 'configuration', key_name: 'name', key_value: 'acl.conf', 'Event-Name': 'REQUEST_PARAMS' });
  const parser = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '@', commentPropName: '#comment', isArray: (name) => ['list', 'node', '#comment'].includes(name) });

  test("answers mod_xml_curl's acl.conf request with one list per account and the trunk list", async () => {
    const response = await post(aclRequest, basic(masterKey));
    assert.equal(response.statusCode, 200, response.body);
    assert.match(String(response.headers['content-type']), /^text\/xml/);
    const lists = parser.parse(response.body).document.section.configuration['network-lists'].list as any[];
    const byName = new Map(lists.map((l) => [l['@name'], l]));
    assert.deepEqual([...byName.keys()].sort(), [`ipwarden-${a.id}`, `ipwarden-${b.id}`, 'ipwarden-trunks'].sort());
    const alpha = byName.get(`ipwarden-${a.id}`);
    assert.equal(alpha['@default'], 'deny');
    assert.deepEqual(
      alpha.node.map((n: any) => [n['@type'], n['@cidr']]),
      [
        ['allow', '203.0.113.0/24'],
        ['allow', '::ffff:203.0.113.0/120'],
      ],
    );
    assert.match(alpha['#comment'].join('\n'), /devices .* are not here/);
    const beta = byName.get(`ipwarden-${b.id}`);
    assert.equal(beta['@default'], 'allow');
    assert.match(beta['#comment'].join('\n'), /ipwarden: inexact[\s\S]*user_agent/);
    const trunks = byName.get('ipwarden-trunks');
    assert.equal(trunks['@default'], 'deny');
    const cidrs = trunks.node.map((n: any) => n['@cidr']);
    for (const cidr of ['203.0.113.10/32', '203.0.113.64/26', '198.51.100.0/24', '2001:db8:5::/48']) assert.ok(cidrs.includes(cidr), cidr);
    for (const inactive of ['192.0.2.5/32', '192.0.2.9/32']) assert.ok(!cidrs.includes(inactive), inactive);
  });

  test('anything else is the "not found" result document', async () => {
    for (const body of [form({ section: 'directory', key_value: 'acme.test' }), form({ section: 'configuration', key_value: 'sofia.conf' })]) {
      const response = await post(body, basic(masterKey));
      assert.equal(response.statusCode, 200);
      assert.equal(parser.parse(response.body).document.section.result['@status'], 'not found');
    }
  });

  test("basic auth: a superduper account's API key, nothing less", async () => {
    const none = await post(aclRequest);
    assert.equal(none.statusCode, 401);
    assert.match(String(none.headers['www-authenticate']), /^Basic/);
    assert.equal((await post(aclRequest, basic('0'.repeat(64)))).statusCode, 401);
    const tenant = await post(aclRequest, basic(accountKey));
    assert.equal(tenant.statusCode, 403);
    assert.ok(!tenant.body.includes(b.id), 'nothing about other tenants');
  });
});
