// Access lists of accounts and devices (seeds 001/002, api.md §4) and the decision API, through
// the real app over a private SQLite database.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { assertError } from '../support/responses.ts';
import { startHarness, type Harness } from '../support/harness.ts';

let h: Harness;
before(async () => {
  h = await startHarness({ maxCidrs: '5' });
});
after(() => h.close());

type Tenant = { id: string; token: string; realm: string };

async function device(tenant: Tenant, username: string, extra: Record<string, unknown> = {}) {
  const created = await h.request('PUT', `/v2/accounts/${tenant.id}/devices`, { token: tenant.token, body: { data: { name: `Phone ${username}`, sip: { username }, ...extra } } });
  assert.equal(created.statusCode, 201, created.body);
  return created.json().data.id as string;
}

const q = (params: Record<string, string>) => new URLSearchParams(params).toString();

async function check(tenant: Tenant, params: Record<string, string>) {
  const response = await h.request('GET', `/v2/accounts/${tenant.id}/access_lists/check?${q(params)}`, { token: tenant.token });
  assert.equal(response.statusCode, 200, response.body);
  return response.json().data;
}

async function setList(tenant: Tenant, data: unknown, deviceId?: string) {
  const url = deviceId ? `/v2/accounts/${tenant.id}/devices/${deviceId}/access_lists` : `/v2/accounts/${tenant.id}/access_lists`;
  const response = await h.request('POST', url, { token: tenant.token, body: { data } });
  assert.equal(response.statusCode, 200, response.body);
  return response.json();
}

describe('the seed requests', () => {
  test('account list: GET none → {}, POST returns what was stored, GET shows it, DELETE → {}', async () => {
    const t = await h.account('Seed One');
    const url = `/v2/accounts/${t.id}/access_lists`;
    const empty = await h.request('GET', url, { token: t.token });
    assert.equal(empty.statusCode, 200);
    assert.equal(empty.headers['content-type'], 'application/json');
    const emptyBody = empty.json();
    assert.deepEqual(emptyBody.data, {});
    assert.equal(emptyBody.status, 'success');
    assert.equal(emptyBody.auth_token, t.token);
    assert.equal(typeof emptyBody.request_id, 'string');

    // The seed sends `curl -d`, i.e. form-urlencoded: the body is still read as JSON.
    const posted = await h.request('POST', url, {
      token: t.token,
      body: '{"data": {"order": "allow,deny","cidrs": ["127.0.0.3/32"]}}',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    assert.equal(posted.statusCode, 200, posted.body);
    assert.deepEqual(posted.json().data, { cidrs: ['127.0.0.3/32'], order: 'allow,deny' });
    assert.equal(posted.json().status, 'success');

    const read = await h.request('GET', url, { token: t.token });
    assert.deepEqual(read.json().data, { cidrs: ['127.0.0.3/32'], order: 'allow,deny' });

    const removed = await h.request('DELETE', url, { token: t.token });
    assert.equal(removed.statusCode, 200);
    assert.deepEqual(removed.json().data, {});
    assert.deepEqual((await h.request('GET', url, { token: t.token })).json().data, {});
  });

  test('device list: the seed bodies, and DELETE with application/json and no body (SDKs)', async () => {
    const t = await h.account('Seed Two');
    const d = await device(t, 'seed2');
    const url = `/v2/accounts/${t.id}/devices/${d}/access_lists`;
    assert.deepEqual((await h.request('GET', url, { token: t.token })).json().data, {});
    const posted = await h.request('POST', url, { token: t.token, body: { data: { order: 'deny,allow', cidrs: ['127.0.0.3/32'] } } });
    assert.equal(posted.statusCode, 200);
    assert.deepEqual(posted.json().data, { cidrs: ['127.0.0.3/32'], order: 'deny,allow' });
    assert.deepEqual((await h.request('GET', url, { token: t.token })).json().data, { cidrs: ['127.0.0.3/32'], order: 'deny,allow' });
    // The device document shows the list too.
    assert.deepEqual((await h.request('GET', `/v2/accounts/${t.id}/devices/${d}`, { token: t.token })).json().data.access_lists, { cidrs: ['127.0.0.3/32'], order: 'deny,allow' });
    const removed = await h.request('DELETE', url, { token: t.token, headers: { 'content-type': 'application/json' } });
    assert.equal(removed.statusCode, 200, removed.body);
    assert.deepEqual(removed.json().data, {});
    assert.deepEqual((await h.request('GET', url, { token: t.token })).json().data, {});
    assert.equal((await h.request('GET', `/v2/accounts/${t.id}/devices/${d}`, { token: t.token })).json().data.access_lists, undefined);
  });

  test('POST replaces the whole list (user_agent gone when not sent again)', async () => {
    const t = await h.account('Replace');
    await setList(t, { order: 'allow,deny', cidrs: ['10.0.0.0/8'], user_agent: 'Yealink' });
    const replaced = await setList(t, { order: 'deny,allow', cidrs: ['192.0.2.1'] });
    assert.deepEqual(replaced.data, { order: 'deny,allow', cidrs: ['192.0.2.1'] });
    assert.deepEqual((await h.request('GET', `/v2/accounts/${t.id}/access_lists`, { token: t.token })).json().data, { order: 'deny,allow', cidrs: ['192.0.2.1'] });
  });

  test('PUT and PATCH → 405 on both paths', async () => {
    const t = await h.account('Methods');
    const d = await device(t, 'methods');
    for (const url of [`/v2/accounts/${t.id}/access_lists`, `/v2/accounts/${t.id}/devices/${d}/access_lists`]) {
      for (const method of ['PUT', 'PATCH']) {
        const response = await h.request(method, url, { token: t.token, body: { data: { order: 'allow,deny', cidrs: [] } } });
        const body = assertError(response, 405, 'invalid_method');
        assert.deepEqual(body.data, { message: 'method not allowed' });
      }
    }
  });

  test('unknown account or device → 404 bad_identifier naming it', async () => {
    const t = await h.account('Unknown');
    const ghost = 'f'.repeat(32);
    for (const method of ['GET', 'POST', 'DELETE']) {
      const body = method === 'POST' ? { data: { order: 'allow,deny', cidrs: [] } } : undefined;
      const a = assertError(await h.request(method, `/v2/accounts/${ghost}/access_lists`, { token: h.master.token, body }), 404, 'bad_identifier');
      assert.deepEqual(a.data, { cause: ghost, message: 'bad identifier' });
      const d = assertError(await h.request(method, `/v2/accounts/${t.id}/devices/${ghost}/access_lists`, { token: t.token, body }), 404, 'bad_identifier');
      assert.deepEqual(d.data, { cause: ghost, message: 'bad identifier' });
    }
    // Another account's device is not found under this account.
    const other = await h.account('Unknown Other');
    const theirs = await device(other, 'theirs');
    assertError(await h.request('GET', `/v2/accounts/${t.id}/devices/${theirs}/access_lists`, { token: t.token }), 404, 'bad_identifier');
    assertError(await h.request('GET', `/v2/accounts/${t.id}/access_lists/check?ip=1.2.3.4&device_id=${ghost}`, { token: t.token }), 404, 'bad_identifier');
  });
});

describe('validation', () => {
  test('every invalid field at once', async () => {
    const t = await h.account('Invalid');
    const url = `/v2/accounts/${t.id}/access_lists`;
    const response = await h.request('POST', url, { token: t.token, body: { data: { order: 'allow', user_agent: 5 } } });
    const body = assertError(response, 400, 'validation error');
    assert.ok(body.data.order.enum, JSON.stringify(body.data));
    assert.ok(body.data.cidrs.required, JSON.stringify(body.data));
    assert.ok(body.data.user_agent.type, JSON.stringify(body.data));
    assert.equal(body.data.order.enum.value, 'allow');
  });

  test('each bad CIDR at cidrs.N, with the network form for host bits', async () => {
    const t = await h.account('Bad Cidrs');
    const url = `/v2/accounts/${t.id}/access_lists`;
    const cidrs = ['192.0.2.0/24', 'garbage', '300.1.1.1/32', '10.0.0.0/33', '10.0.0.1/24'];
    const body = assertError(await h.request('POST', url, { token: t.token, body: { data: { order: 'bogus', cidrs } } }), 400, 'validation error');
    assert.ok(body.data.order.enum);
    assert.equal(body.data['cidrs.0'], undefined);
    for (const i of [1, 2, 3, 4]) assert.ok(body.data[`cidrs.${i}`], `cidrs.${i} in ${JSON.stringify(body.data)}`);
    const rule = (i: number) => Object.values(body.data[`cidrs.${i}`] as Record<string, { message: string; value?: string }>)[0]!;
    assert.equal(rule(1).value, 'garbage');
    assert.match(rule(4).message, /10\.0\.0\.0\/24/);
    assert.match(rule(3).message, /33/);
    // And with a valid order, the same CIDR errors (IPv6 too).
    const again = assertError(await h.request('POST', url, { token: t.token, body: { data: { order: 'allow,deny', cidrs: ['2001:db8::1/129', '2001:db8::1/32', '::1'] } } }), 400, 'validation error');
    assert.deepEqual(Object.keys(again.data).sort(), ['cidrs.0', 'cidrs.1']);
    assert.match(JSON.stringify(again.data['cidrs.1']), /2001:db8::\/32/);
    // Nothing stored.
    assert.deepEqual((await h.request('GET', url, { token: t.token })).json().data, {});
  });

  test('a body without data, data null, or data an array → 400 invalid request envelope (nothing removed)', async () => {
    const t = await h.account('Envelope');
    const url = `/v2/accounts/${t.id}/access_lists`;
    await setList(t, { order: 'allow,deny', cidrs: ['192.0.2.1'] });
    for (const body of [{}, { data: null }, { data: [] }, { order: 'allow,deny', cidrs: [] }]) {
      assertError(await h.request('POST', url, { token: t.token, body }), 400, 'invalid request envelope');
    }
    assertError(await h.request('POST', url, { token: t.token }), 400, 'invalid request envelope');
    const unparseable = assertError(await h.request('POST', url, { token: t.token, body: '{"data": ' }), 400, 'validation error');
    assert.deepEqual(unparseable.data, { json: { invalid: { message: 'All JSON must be valid', target: 'body' } } });
    assert.deepEqual((await h.request('GET', url, { token: t.token })).json().data, { order: 'allow,deny', cidrs: ['192.0.2.1'] });
  });

  test('cidrs: [] is valid, and denies everything under allow,deny (empty_list)', async () => {
    const t = await h.account('Empty');
    const stored = await setList(t, { order: 'allow,deny', cidrs: [] });
    assert.deepEqual(stored.data, { order: 'allow,deny', cidrs: [] });
    const verdict = await check(t, { ip: '192.0.2.1' });
    assert.deepEqual(verdict, { decision: 'deny', account: { decision: 'deny', reason: 'empty_list', order: 'allow,deny' } });
    await setList(t, { order: 'deny,allow', cidrs: [] });
    assert.deepEqual(await check(t, { ip: '192.0.2.1' }), { decision: 'allow', account: { decision: 'allow', reason: 'empty_list', order: 'deny,allow' } });
  });

  test('more than the limit → 400 maxItems (limit 5)', async () => {
    const t = await h.account('Limit');
    const five = ['192.0.2.1', '192.0.2.2', '192.0.2.3', '192.0.2.4', '192.0.2.5'];
    await setList(t, { order: 'allow,deny', cidrs: five });
    const body = assertError(await h.request('POST', `/v2/accounts/${t.id}/access_lists`, { token: t.token, body: { data: { order: 'allow,deny', cidrs: [...five, '192.0.2.6'] } } }), 400, 'validation error');
    assert.ok(body.data.cidrs.maxItems, JSON.stringify(body.data));
    assert.match(body.data.cidrs.maxItems.message, /5/);
    // The same limit applies to a device body's access_lists.
    const d = await device(t, 'limit');
    const viaDevice = assertError(
      await h.request('POST', `/v2/accounts/${t.id}/devices/${d}`, { token: t.token, body: { data: { name: 'x', sip: { username: 'limit' }, access_lists: { order: 'allow,deny', cidrs: [...five, '192.0.2.6'] } } } }),
      400,
      'validation error',
    );
    assert.ok(viaDevice.data['access_lists.cidrs'].maxItems, JSON.stringify(viaDevice.data));
  });

  test('unknown fields are dropped; ui_metadata ignored', async () => {
    const t = await h.account('Unknown Fields');
    const stored = await setList(t, { order: 'allow,deny', cidrs: ['192.0.2.1'], colour: 'blue', ui_metadata: { origin: 'monster' }, nested: { a: 1 } });
    assert.deepEqual(stored.data, { order: 'allow,deny', cidrs: ['192.0.2.1'] });
    assert.deepEqual((await h.request('GET', `/v2/accounts/${t.id}/access_lists`, { token: t.token })).json().data, { order: 'allow,deny', cidrs: ['192.0.2.1'] });
  });

  test('CIDRs are stored as given, in the order given', async () => {
    const t = await h.account('As Given');
    const cidrs = ['2001:DB8::/32', '198.51.100.7', '::ffff:192.0.2.1', '0.0.0.0/0'];
    assert.deepEqual((await setList(t, { order: 'deny,allow', cidrs })).data.cidrs, cidrs);
  });

  test('user_agent: backreferences and lookaround refused; a catastrophic-for-backtracking pattern accepted and fast', { timeout: 10_000 }, async () => {
    const t = await h.account('Regex');
    const url = `/v2/accounts/${t.id}/access_lists`;
    for (const pattern of ['(a)\\1', '(?=a)b', '(?!a)b', '(?<=a)b', '(?<!a)b', '(']) {
      const body = assertError(await h.request('POST', url, { token: t.token, body: { data: { order: 'allow,deny', cidrs: [], user_agent: pattern } } }), 400, 'validation error');
      assert.ok(body.data.user_agent, `${pattern}: ${JSON.stringify(body.data)}`);
    }
    await setList(t, { order: 'deny,allow', cidrs: [], user_agent: '(a+)+$' });
    const started = performance.now();
    // (The User-Agent is cut to 1 KiB before matching: the '!' must come within it.)
    const verdict = await check(t, { ip: '192.0.2.1', user_agent: `${'a'.repeat(1000)}!` });
    const elapsed = performance.now() - started;
    assert.equal(verdict.decision, 'deny');
    assert.equal(verdict.account.reason, 'user_agent_mismatch');
    assert.ok(elapsed < 2000, `took ${elapsed} ms`);
    const matching = await check(t, { ip: '192.0.2.1', user_agent: 'a'.repeat(100_000) });
    assert.equal(matching.decision, 'allow');
  });

  test('user_agent: a pattern whose compiled program is too large is refused, naming user_agent', async () => {
    const t = await h.account('Big Regex');
    const url = `/v2/accounts/${t.id}/access_lists`;
    // Eleven characters, a thousand instructions: repetition counts multiply the program.
    for (const pattern of ['[a-z]{1000}', '(?:Yealink|Polycom){200}', 'x{300}']) {
      const body = assertError(await h.request('POST', url, { token: t.token, body: { data: { order: 'allow,deny', cidrs: [], user_agent: pattern } } }), 400, 'validation error');
      assert.match(body.data.user_agent?.format?.message ?? '', /instructions, more than 256/, `${pattern}: ${JSON.stringify(body.data)}`);
    }
    // A device's list, and a list inside a device body, are held to the same bound.
    const phone = await device(t, 'bigregex');
    const onDevice = assertError(await h.request('POST', `${url.replace('/access_lists', '')}/devices/${phone}/access_lists`, { token: t.token, body: { data: { order: 'allow,deny', cidrs: [], user_agent: 'x{300}' } } }), 400, 'validation error');
    assert.ok(onDevice.data.user_agent, JSON.stringify(onDevice.data));
    // Real patterns are far below the bound.
    await setList(t, { order: 'allow,deny', cidrs: ['0.0.0.0/0'], user_agent: '^(Yealink|Polycom|Grandstream|Cisco|snom|Fanvil) .*(T4[0-9]S|VVX [0-9]{3})' });
    await setList(t, { order: 'allow,deny', cidrs: ['0.0.0.0/0'], user_agent: 'x{250}' });
  });

  test('user_agent: only the first 1 KiB of a User-Agent is matched', async () => {
    const t = await h.account('Long UA');
    await setList(t, { order: 'allow,deny', cidrs: ['0.0.0.0/0'], user_agent: 'Yealink' });
    assert.equal((await check(t, { ip: '192.0.2.1', user_agent: `${' '.repeat(1017)}Yealink` })).decision, 'allow');
    const beyond = await check(t, { ip: '192.0.2.1', user_agent: `${' '.repeat(1018)}Yealink` });
    assert.deepEqual(beyond.account, { decision: 'deny', reason: 'user_agent_mismatch', order: 'allow,deny' });
  });
});

describe('the decision API', () => {
  test('allow,deny: matched / not_matched, with the deciding cidr', async () => {
    const t = await h.account('Allow Deny');
    await setList(t, { order: 'allow,deny', cidrs: ['198.51.100.0/24', '192.0.2.7', '2001:db8:1::/48'] });
    assert.deepEqual(await check(t, { ip: '198.51.100.9' }), { decision: 'allow', account: { decision: 'allow', reason: 'matched', order: 'allow,deny', cidr: '198.51.100.0/24' } });
    assert.deepEqual(await check(t, { ip: '192.0.2.7' }), { decision: 'allow', account: { decision: 'allow', reason: 'matched', order: 'allow,deny', cidr: '192.0.2.7' } });
    assert.deepEqual(await check(t, { ip: '192.0.2.8' }), { decision: 'deny', account: { decision: 'deny', reason: 'not_matched', order: 'allow,deny' } });
    assert.deepEqual(await check(t, { ip: '2001:db8:1:2::5' }), { decision: 'allow', account: { decision: 'allow', reason: 'matched', order: 'allow,deny', cidr: '2001:db8:1::/48' } });
    assert.deepEqual(await check(t, { ip: '2001:db8:2::5' }), { decision: 'deny', account: { decision: 'deny', reason: 'not_matched', order: 'allow,deny' } });
    // ::ffff:a.b.c.d is matched as a.b.c.d.
    assert.equal((await check(t, { ip: '::ffff:198.51.100.9' })).account.cidr, '198.51.100.0/24');
    assert.equal((await check(t, { ip: '::ffff:192.0.2.8' })).decision, 'deny');
  });

  test('deny,allow: matched denies, not_matched allows', async () => {
    const t = await h.account('Deny Allow');
    await setList(t, { order: 'deny,allow', cidrs: ['198.51.100.0/24', '2001:db8::/32'] });
    assert.deepEqual(await check(t, { ip: '198.51.100.1' }), { decision: 'deny', account: { decision: 'deny', reason: 'matched', order: 'deny,allow', cidr: '198.51.100.0/24' } });
    assert.deepEqual(await check(t, { ip: '203.0.113.1' }), { decision: 'allow', account: { decision: 'allow', reason: 'not_matched', order: 'deny,allow' } });
    assert.equal((await check(t, { ip: '2001:db8::1' })).decision, 'deny');
    assert.equal((await check(t, { ip: '2001:db9::1' })).decision, 'allow');
  });

  test('no list allows (no_list); a bad or missing ip → 400', async () => {
    const t = await h.account('No List');
    assert.deepEqual(await check(t, { ip: '192.0.2.1' }), { decision: 'allow', account: { decision: 'allow', reason: 'no_list' } });
    for (const ip of ['', 'garbage', '01.2.3.4', 'fe80::1%eth0', '1.2.3']) {
      const body = assertError(await h.request('GET', `/v2/accounts/${t.id}/access_lists/check?${q({ ip })}`, { token: t.token }), 400, 'validation error');
      assert.ok(body.data.ip, JSON.stringify(body.data));
    }
    assertError(await h.request('GET', `/v2/accounts/${t.id}/access_lists/check`, { token: t.token }), 400, 'validation error');
  });

  test('0.0.0.0/0 matches an IPv6 source; ::/0 matches IPv6 only', async () => {
    const t = await h.account('All');
    await setList(t, { order: 'allow,deny', cidrs: ['0.0.0.0/0'] });
    assert.deepEqual(await check(t, { ip: '2001:db8::1' }), { decision: 'allow', account: { decision: 'allow', reason: 'matched', order: 'allow,deny', cidr: '0.0.0.0/0' } });
    assert.equal((await check(t, { ip: '203.0.113.9' })).decision, 'allow');
    await setList(t, { order: 'allow,deny', cidrs: ['::/0'] });
    assert.equal((await check(t, { ip: '2001:db8::1' })).decision, 'allow');
    assert.equal((await check(t, { ip: '203.0.113.9' })).decision, 'deny');
    // deny,allow with 0.0.0.0/0 denies IPv6 too.
    await setList(t, { order: 'deny,allow', cidrs: ['0.0.0.0/0'] });
    assert.equal((await check(t, { ip: 'fe80::1' })).decision, 'deny');
  });

  test('user_agent: mismatch denies whatever the address; unanchored and case-sensitive; no agent is ""', async () => {
    const t = await h.account('Agents');
    await setList(t, { order: 'allow,deny', cidrs: ['192.0.2.0/24'], user_agent: 'Yealink SIP-T4' });
    assert.deepEqual(await check(t, { ip: '192.0.2.1', user_agent: 'Yealink SIP-T46S 66.85.0.5' }), { decision: 'allow', account: { decision: 'allow', reason: 'matched', order: 'allow,deny', cidr: '192.0.2.0/24' } });
    assert.deepEqual(await check(t, { ip: '192.0.2.1', user_agent: 'yealink sip-t46s' }), { decision: 'deny', account: { decision: 'deny', reason: 'user_agent_mismatch', order: 'allow,deny' } });
    assert.equal((await check(t, { ip: '192.0.2.1' })).account.reason, 'user_agent_mismatch');
    await setList(t, { order: 'deny,allow', cidrs: [], user_agent: '^$' });
    assert.equal((await check(t, { ip: '192.0.2.1' })).decision, 'allow');
    assert.equal((await check(t, { ip: '192.0.2.1', user_agent: 'x' })).account.reason, 'user_agent_mismatch');
  });

  test('device list and account list must both allow', async () => {
    const t = await h.account('Combined');
    const d = await device(t, 'combined');
    const other = await device(t, 'other');
    await setList(t, { order: 'allow,deny', cidrs: ['198.51.100.0/24'] });
    await setList(t, { order: 'deny,allow', cidrs: ['198.51.100.66'] }, d);
    assert.deepEqual(await check(t, { ip: '198.51.100.1', device_id: d }), {
      decision: 'allow',
      account: { decision: 'allow', reason: 'matched', order: 'allow,deny', cidr: '198.51.100.0/24' },
      device: { decision: 'allow', reason: 'not_matched', order: 'deny,allow' },
    });
    assert.deepEqual(await check(t, { ip: '198.51.100.66', device_id: d }), {
      decision: 'deny',
      account: { decision: 'allow', reason: 'matched', order: 'allow,deny', cidr: '198.51.100.0/24' },
      device: { decision: 'deny', reason: 'matched', order: 'deny,allow', cidr: '198.51.100.66' },
    });
    assert.deepEqual(await check(t, { ip: '203.0.113.1', device_id: d }), {
      decision: 'deny',
      account: { decision: 'deny', reason: 'not_matched', order: 'allow,deny' },
      device: { decision: 'allow', reason: 'not_matched', order: 'deny,allow' },
    });
    // A device without a list: no_list; the account list alone decides.
    assert.deepEqual((await check(t, { ip: '198.51.100.66', device_id: other })).device, { decision: 'allow', reason: 'no_list' });
    assert.equal((await check(t, { ip: '198.51.100.66', device_id: other })).decision, 'allow');
    // Without device_id there is no device part.
    assert.equal((await check(t, { ip: '198.51.100.66' })).device, undefined);
  });

  test('a change is visible to the very next check, every time', async () => {
    const t = await h.account('Next');
    const d = await device(t, 'next');
    for (let round = 0; round < 40; round++) {
      const octet = String(round + 1);
      const order = round % 2 === 0 ? 'allow,deny' : 'deny,allow';
      await setList(t, { order, cidrs: [`198.51.100.${octet}`] }, round % 3 === 0 ? d : undefined);
      const verdict = await check(t, { ip: `198.51.100.${octet}`, device_id: d });
      const part = round % 3 === 0 ? verdict.device : verdict.account;
      assert.equal(part.reason, 'matched', `round ${round}`);
      assert.equal(part.decision, order === 'allow,deny' ? 'allow' : 'deny', `round ${round}`);
      if (round % 5 === 0) {
        await h.request('DELETE', round % 3 === 0 ? `/v2/accounts/${t.id}/devices/${d}/access_lists` : `/v2/accounts/${t.id}/access_lists`, { token: t.token });
        const cleared = await check(t, { ip: `198.51.100.${octet}`, device_id: d });
        assert.equal((round % 3 === 0 ? cleared.device : cleared.account).reason, 'no_list', `round ${round}`);
      }
    }
  });

  test('deleting a device makes a later check for it 404; deleting its list → no_list', async () => {
    const t = await h.account('Gone');
    const d = await device(t, 'gone');
    await setList(t, { order: 'allow,deny', cidrs: [] }, d);
    assert.equal((await check(t, { ip: '192.0.2.1', device_id: d })).decision, 'deny');
    const removed = await h.request('DELETE', `/v2/accounts/${t.id}/devices/${d}`, { token: t.token });
    assert.equal(removed.statusCode, 200);
    assertError(await h.request('GET', `/v2/accounts/${t.id}/access_lists/check?ip=192.0.2.1&device_id=${d}`, { token: t.token }), 404, 'bad_identifier');
  });
});

describe('/v2/access_lists/decide', () => {
  test('superduper only; by realm and SIP username', async () => {
    const t = await h.account('Decide');
    const d = await device(t, 'alice');
    await setList(t, { order: 'allow,deny', cidrs: ['198.51.100.0/24'] });
    await setList(t, { order: 'deny,allow', cidrs: ['198.51.100.66'] }, d);
    const url = (params: Record<string, string>) => `/v2/access_lists/decide?${q(params)}`;
    assertError(await h.request('GET', url({ ip: '198.51.100.1', realm: t.realm, username: 'alice' }), { token: t.token }), 403, 'forbidden');
    const asMaster = await h.request('GET', url({ ip: '198.51.100.1', realm: t.realm, username: 'alice' }), { token: h.master.token });
    assert.equal(asMaster.statusCode, 200, asMaster.body);
    assert.deepEqual(asMaster.json().data, {
      decision: 'allow',
      account_id: t.id,
      device_id: d,
      account: { decision: 'allow', reason: 'matched', order: 'allow,deny', cidr: '198.51.100.0/24' },
      device: { decision: 'allow', reason: 'not_matched', order: 'deny,allow' },
    });
    const denied = (await h.request('GET', url({ ip: '198.51.100.66', realm: t.realm.toUpperCase(), username: 'alice' }), { token: h.master.token })).json().data;
    assert.equal(denied.decision, 'deny');
    assert.equal(denied.device.reason, 'matched');
    // A username naming no device: the account list alone.
    const noDevice = (await h.request('GET', url({ ip: '198.51.100.66', realm: t.realm, username: 'bob' }), { token: h.master.token })).json().data;
    assert.equal(noDevice.decision, 'allow');
    assert.equal(noDevice.device_id, undefined);
    assert.equal(noDevice.account_id, t.id);
    // User agents apply.
    await setList(t, { order: 'allow,deny', cidrs: ['198.51.100.0/24'], user_agent: '^Good' });
    const ua = (await h.request('GET', url({ ip: '198.51.100.1', realm: t.realm, username: 'bob', user_agent: 'Bad' }), { token: h.master.token })).json().data;
    assert.equal(ua.decision, 'deny');
    assert.equal(ua.account.reason, 'user_agent_mismatch');
    // Missing ip / realm → 400.
    const missing = assertError(await h.request('GET', '/v2/access_lists/decide', { token: h.master.token }), 400, 'validation error');
    assert.ok(missing.data.ip && missing.data.realm);
  });

  test('unknown realm → deny with reason unknown_realm by default', async () => {
    const response = await h.request('GET', '/v2/access_lists/decide?ip=192.0.2.1&realm=nowhere.invalid&username=x', { token: h.master.token });
    assert.equal(response.statusCode, 200);
    assert.deepEqual(response.json().data, { decision: 'deny', reason: 'unknown_realm' });
  });

  test('unknown realm → allow under sipUnknownRealm=allow', async () => {
    const other = await startHarness({ sipUnknownRealm: 'allow' });
    try {
      const response = await other.request('GET', '/v2/access_lists/decide?ip=192.0.2.1&realm=nowhere.invalid&username=x', { token: other.master.token });
      assert.equal(response.statusCode, 200);
      assert.deepEqual(response.json().data, { decision: 'allow', reason: 'unknown_realm' });
    } finally {
      await other.close();
    }
  });
});

describe('Monster UI style device updates', () => {
  test('GET the device, change the name, POST the fetched document back: the list is kept and applied', async () => {
    const t = await h.account('Monster');
    const d = await device(t, 'monster', { sip: { username: 'monster', password: 'sippw' } });
    await setList(t, { order: 'allow,deny', cidrs: ['198.51.100.0/24'] }, d);
    const fetched = (await h.request('GET', `/v2/accounts/${t.id}/devices/${d}`, { token: t.token })).json().data;
    assert.deepEqual(fetched.access_lists, { order: 'allow,deny', cidrs: ['198.51.100.0/24'] });
    const posted = await h.request('POST', `/v2/accounts/${t.id}/devices/${d}`, { token: t.token, body: { data: { ...fetched, name: 'Renamed', ui_metadata: { version: '4.3' } }, accept_charges: true } });
    assert.equal(posted.statusCode, 200, posted.body);
    assert.equal(posted.json().data.name, 'Renamed');
    assert.deepEqual(posted.json().data.access_lists, { order: 'allow,deny', cidrs: ['198.51.100.0/24'] });
    assert.equal((await check(t, { ip: '198.51.100.9', device_id: d })).device.reason, 'matched');

    // Posting back a modified access_lists applies it at once.
    const again = (await h.request('GET', `/v2/accounts/${t.id}/devices/${d}`, { token: t.token })).json().data;
    const changed = await h.request('POST', `/v2/accounts/${t.id}/devices/${d}`, { token: t.token, body: { data: { ...again, access_lists: { order: 'deny,allow', cidrs: ['198.51.100.9'], junk: 1 } } } });
    assert.equal(changed.statusCode, 200, changed.body);
    assert.deepEqual(changed.json().data.access_lists, { order: 'deny,allow', cidrs: ['198.51.100.9'] });
    assert.deepEqual((await check(t, { ip: '198.51.100.9', device_id: d })).device, { decision: 'deny', reason: 'matched', order: 'deny,allow', cidr: '198.51.100.9' });

    // A body without access_lists keeps the list (POST and PATCH).
    const kept = await h.request('POST', `/v2/accounts/${t.id}/devices/${d}`, { token: t.token, body: { data: { name: 'Plain', sip: { username: 'monster' } } } });
    assert.equal(kept.statusCode, 200, kept.body);
    assert.deepEqual(kept.json().data.access_lists, { order: 'deny,allow', cidrs: ['198.51.100.9'] });
    const patched = await h.request('PATCH', `/v2/accounts/${t.id}/devices/${d}`, { token: t.token, body: { data: { name: 'Patched' } } });
    assert.equal(patched.statusCode, 200, patched.body);
    assert.deepEqual(patched.json().data.access_lists, { order: 'deny,allow', cidrs: ['198.51.100.9'] });
    assert.equal((await check(t, { ip: '198.51.100.9', device_id: d })).decision, 'deny');

    // An invalid access_lists in a device body is refused with dotted fields.
    const bad = assertError(
      await h.request('POST', `/v2/accounts/${t.id}/devices/${d}`, { token: t.token, body: { data: { ...again, access_lists: { order: 'x', cidrs: ['10.0.0.1/24'] } } } }),
      400,
      'validation error',
    );
    assert.ok(bad.data['access_lists.order'], JSON.stringify(bad.data));
    assert.equal((await check(t, { ip: '198.51.100.9', device_id: d })).decision, 'deny');
  });

  test('a device created with access_lists enforces them at once', async () => {
    const t = await h.account('Created With');
    const d = await device(t, 'withlist', { access_lists: { order: 'allow,deny', cidrs: ['192.0.2.0/24'] } });
    assert.equal((await check(t, { ip: '192.0.2.5', device_id: d })).device.reason, 'matched');
    assert.equal((await check(t, { ip: '198.51.100.5', device_id: d })).decision, 'deny');
  });
});
