// What the deployment's secret key protects (issue 20): API keys at rest, sealed with AES-256-GCM
// (bound to their account, so a sealed key cannot be moved to another row), and the login tag
// that lets user_auth find its one candidate user before the one slow hash (auth.ts). Each use
// gets its own subkey (HKDF), and the database keeps a check value, so a node started with
// another key refuses to start rather than failing every login and API key read.

import { createCipheriv, createDecipheriv, createHash, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Store } from '../store/port.ts';

const SEALED_PREFIX = 'v1';
const CHECK_NAME = 'secret_key_check';

function subkey(master: Buffer, purpose: string): Buffer {
  return Buffer.from(hkdfSync('sha256', master, Buffer.alloc(0), `ipwarden ${purpose}`, 32));
}

/** API keys are 256 random bits: a plain SHA-256 is a safe lookup key for them. */
export function apiKeyHashOf(apiKey: string): string {
  return createHash('sha256').update(apiKey).digest('hex');
}

export class Secrets {
  private readonly sealKey: Buffer;
  private readonly tagKey: Buffer;
  /** Shows which key sealed a database's values, without revealing it. */
  readonly check: string;

  constructor(master: Buffer) {
    if (master.length !== 32) throw new Error('the secret key must be 32 bytes');
    this.sealKey = subkey(master, 'api key sealing');
    this.tagKey = subkey(master, 'login tag');
    this.check = subkey(master, 'key check').toString('hex');
  }

  /** The HMAC by which a user's credentials (KAZOO's md5 hex, case-insensitive) are found. */
  loginTag(credentials: string): string {
    return createHmac('sha256', this.tagKey).update(credentials.toLowerCase()).digest('hex');
  }

  seal(accountId: string, apiKey: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.sealKey, iv);
    cipher.setAAD(Buffer.from(accountId));
    const sealed = Buffer.concat([cipher.update(apiKey, 'utf8'), cipher.final()]);
    return [SEALED_PREFIX, iv, sealed, cipher.getAuthTag()].map((part) => (typeof part === 'string' ? part : part.toString('base64url'))).join('.');
  }

  /** Throws when the value was not sealed for this account under this key. */
  open(accountId: string, sealed: string): string {
    const [prefix, iv, data, tag] = sealed.split('.');
    if (prefix !== SEALED_PREFIX || iv === undefined || data === undefined || tag === undefined) throw new Error('not a sealed API key');
    const decipher = createDecipheriv('aes-256-gcm', this.sealKey, Buffer.from(iv, 'base64url'));
    decipher.setAAD(Buffer.from(accountId));
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([decipher.update(Buffer.from(data, 'base64url')), decipher.final()]).toString('utf8');
  }
}

/**
 * At start-up, in one transaction: a new database records the key's check value, a database set
 * up with another key refuses this one, and API keys stored in plaintext by an earlier release
 * are sealed (their column then holds their hash).
 */
export async function adoptSecretKey(store: Store, secrets: Secrets): Promise<void> {
  const sealed = await store.transaction(async (tx) => {
    const check = await tx.getDeploymentValue(CHECK_NAME);
    if (check === undefined) await tx.insertDeploymentValue(CHECK_NAME, secrets.check);
    else if (check.length !== secrets.check.length || !timingSafeEqual(Buffer.from(check), Buffer.from(secrets.check))) {
      throw new Error('this database was set up with another secret key: give every node the same key (--secret-key / IPWARDEN_SECRET_KEY, or the same secret.key file)');
    }
    const plain = (await tx.listAccounts()).filter((a) => a.apiKeySealed === null);
    for (const account of plain) {
      const plaintext = account.apiKeyHash;
      await tx.setApiKey(account.id, apiKeyHashOf(plaintext), secrets.seal(account.id, plaintext));
    }
    return plain.length;
  });
  if (sealed > 0) await store.purge?.();
}
