// User secrets (api.md §2): clients send md5hex("username:password") with a lowercased username;
// we store a slow KDF (scrypt) of that md5 and never the md5 itself. Each stored hash names its own
// cost (`scrypt$N$r$p$salt$key`, the key length being the key's), so the cost of new hashes can be
// raised without breaking the logins of old ones (issue 20).

// The module object rather than named imports: a test counts the scrypt calls by spying on it.
import crypto from 'node:crypto';

interface Cost {
  N: number;
  r: number;
  p: number;
  keyLength: number;
}

/** The cost of hashes stored from now on. */
const CURRENT: Cost = { N: 16384, r: 8, p: 1, keyLength: 32 };

/** Beyond these a stored hash is refused rather than allowed to take the process's memory or time. */
const MOST: Cost = { N: 1 << 20, r: 32, p: 16, keyLength: 128 };

function derive(secret: string, salt: Buffer, cost: Cost): Promise<Buffer> {
  // scrypt needs about 128·N·r bytes; Node refuses more than `maxmem` (32 MiB by default).
  const maxmem = Math.max(32 << 20, 256 * cost.N * cost.r);
  return new Promise((resolve, reject) => {
    crypto.scrypt(secret, salt, cost.keyLength, { N: cost.N, r: cost.r, p: cost.p, maxmem }, (error, key) => (error ? reject(error) : resolve(key)));
  });
}

/** What a KAZOO client sends as `credentials`. */
export function credentialsOf(username: string, password: string): string {
  return crypto.createHash('md5').update(`${username.toLowerCase()}:${password}`).digest('hex');
}

function format(cost: Cost, salt: Buffer, key: Buffer): string {
  return `scrypt$${cost.N}$${cost.r}$${cost.p}$${salt.toString('base64')}$${key.toString('base64')}`;
}

export async function hashCredentials(credentials: string, cost: Cost = CURRENT): Promise<string> {
  const salt = crypto.randomBytes(16);
  return format(cost, salt, await derive(credentials.toLowerCase(), salt, cost));
}

const whole = (text: string | undefined, most: number, least = 1) => {
  const n = Number(text);
  return Number.isInteger(n) && n >= least && n <= most ? n : undefined;
};

/** The stored hash's cost, salt and key, or undefined when it is not one we can check. */
function parse(stored: string): { cost: Cost; salt: Buffer; key: Buffer } | undefined {
  const [scheme, n, r, p, salt, key, ...rest] = stored.split('$');
  const N = whole(n, MOST.N, 2);
  const cost = { N: N ?? 0, r: whole(r, MOST.r) ?? 0, p: whole(p, MOST.p) ?? 0, keyLength: 0 };
  if (scheme !== 'scrypt' || rest.length > 0 || salt === undefined || key === undefined || N === undefined || (N & (N - 1)) !== 0 || cost.r === 0 || cost.p === 0) return undefined;
  const expected = Buffer.from(key, 'base64');
  if (expected.length < 16 || expected.length > MOST.keyLength) return undefined;
  return { cost: { ...cost, keyLength: expected.length }, salt: Buffer.from(salt, 'base64'), key: expected };
}

/** One scrypt at the stored hash's own cost. */
export async function verifyCredentials(credentials: string, stored: string): Promise<boolean> {
  const parsed = parse(stored);
  if (parsed === undefined) return false;
  const actual = await derive(credentials.toLowerCase(), parsed.salt, parsed.cost);
  return crypto.timingSafeEqual(actual, parsed.key);
}

/** A hash that matches nothing, to spend the same time when no user is a candidate. */
export const DUMMY_HASH = format(CURRENT, Buffer.alloc(16), Buffer.alloc(CURRENT.keyLength));
