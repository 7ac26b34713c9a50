// Outbound Request-URI hosts (api.md §7.1): resolved by the system resolver, kept at most 30 s.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NameCache, NAME_TTL_MS } from '../../src/edge/name-cache.ts';

function fakeResolver(answers: Record<string, string>) {
  const asked: string[] = [];
  const resolve = async (host: string, family: 4 | 6) => {
    asked.push(`${host}/${family}`);
    const address = answers[host];
    if (address === undefined) throw new Error(`ENOTFOUND ${host}`);
    return address;
  };
  return { asked, resolve };
}

describe('NameCache', () => {
  it('returns an address as itself, without asking the resolver', () => {
    const dns = fakeResolver({});
    const cache = new NameCache(dns.resolve);
    assert.equal(cache.resolve('198.51.100.1', 4), '198.51.100.1');
    assert.equal(cache.resolve('2001:db8::1', 6), '2001:db8::1');
    assert.deepEqual(dns.asked, []);
  });

  it('asks once for concurrent requests, answers at once while fresh, and asks again after 30 s', async () => {
    const dns = fakeResolver({ 'carrier.example': '198.51.100.5' });
    let now = 1_000_000;
    const cache = new NameCache(dns.resolve, () => now);
    const first = cache.resolve('carrier.example', 4);
    const second = cache.resolve('carrier.example', 4);
    assert.ok(first instanceof Promise && second === first);
    assert.equal(await first, '198.51.100.5');
    now += NAME_TTL_MS - 1;
    assert.equal(cache.resolve('carrier.example', 4), '198.51.100.5');
    assert.deepEqual(dns.asked, ['carrier.example/4']);
    dns.asked.length = 0;
    now += 1;
    const again = cache.resolve('carrier.example', 4);
    assert.ok(again instanceof Promise);
    assert.equal(await again, '198.51.100.5');
    assert.deepEqual(dns.asked, ['carrier.example/4']);
    assert.equal(NAME_TTL_MS, 30_000);
  });

  it('does not keep a failure: the next request asks again', async () => {
    const dns = fakeResolver({});
    const cache = new NameCache(dns.resolve);
    await assert.rejects(Promise.resolve(cache.resolve('gone.example', 4)), /ENOTFOUND/);
    await assert.rejects(Promise.resolve(cache.resolve('gone.example', 4)), /ENOTFOUND/);
    assert.equal(dns.asked.length, 2);
  });
});
