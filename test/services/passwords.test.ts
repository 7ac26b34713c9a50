// Issue 20: a stored hash names its own scrypt cost (N, r, p, key length), so raising the cost of
// new hashes later never breaks the logins of old ones.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { credentialsOf, hashCredentials, verifyCredentials } from '../../src/services/passwords.ts';

const credentials = credentialsOf('alice', 'correct horse');
const wrong = credentialsOf('alice', 'battery staple');

test('hashes stored with other scrypt parameters still verify, by their own parameters', async () => {
  const costs = [
    { N: 1024, r: 4, p: 2, keyLength: 48 },
    { N: 2048, r: 8, p: 1, keyLength: 16 },
    // Above the 32 MiB Node allows scrypt by default: the memory cap follows the stored cost.
    { N: 32768, r: 8, p: 1, keyLength: 32 },
  ];
  for (const cost of costs) {
    const stored = await hashCredentials(credentials, cost);
    const [, n, r, p, , key] = stored.split('$');
    assert.deepEqual([Number(n), Number(r), Number(p), Buffer.from(key!, 'base64').length], [cost.N, cost.r, cost.p, cost.keyLength]);
    assert.equal(await verifyCredentials(credentials, stored), true, JSON.stringify(cost));
    assert.equal(await verifyCredentials(credentials.toUpperCase(), stored), true, 'md5 hex in either case');
    assert.equal(await verifyCredentials(wrong, stored), false, JSON.stringify(cost));
  }
});

test('the default cost is scrypt N=16384, r=8, p=1, 32-byte key', async () => {
  const stored = await hashCredentials(credentials);
  assert.match(stored, /^scrypt\$16384\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]{44}$/);
  assert.equal(await verifyCredentials(credentials, stored), true);
});

test('a stored hash that is malformed or asks for an unreasonable cost matches nothing', async () => {
  const good = await hashCredentials(credentials, { N: 1024, r: 1, p: 1, keyLength: 32 });
  const [, , , , salt, key] = good.split('$');
  for (const stored of [
    'plaintext',
    `bcrypt$1024$1$1$${salt}$${key}`,
    `scrypt$1000$1$1$${salt}$${key}`, // N not a power of two
    `scrypt$${2 ** 21}$1$1$${salt}$${key}`, // N too large
    `scrypt$1024$0$1$${salt}$${key}`,
    `scrypt$1024$1$1$${salt}$${Buffer.alloc(8).toString('base64')}`, // key too short
    `${good}$extra`,
  ]) {
    assert.equal(await verifyCredentials(credentials, stored), false, stored);
  }
});
