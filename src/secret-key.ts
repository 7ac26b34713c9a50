// Where the deployment's secret key comes from (issue 20): `--secret-key` / IPWARDEN_SECRET_KEY
// (64 hex characters), else the file `secret.key` in the data directory (beside the SQLite file,
// `--db`), generated there on first use. A PostgreSQL deployment uses the same file unless the
// key is given, so several nodes must be given one key (the database refuses any other).

import { linkSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import type { Config } from './config.ts';

export interface SecretKey {
  key: Buffer;
  /** Set when the key was generated just now: what to tell the operator. */
  notice?: string;
}

const KEY_TEXT = /^[0-9a-fA-F]{64}$/;

function fromText(text: string, origin: string): Buffer {
  const trimmed = text.trim();
  if (!KEY_TEXT.test(trimmed)) throw new Error(`${origin} must hold 64 hexadecimal characters (32 bytes)`);
  return Buffer.from(trimmed, 'hex');
}

export function secretKeyFile(config: Pick<Config, 'db'>): string {
  return resolve(join(dirname(config.db), 'secret.key'));
}

export function loadSecretKey(config: Pick<Config, 'db' | 'secretKey'>): SecretKey {
  if (config.secretKey !== undefined) return { key: fromText(config.secretKey, '--secret-key') };
  const file = secretKeyFile(config);
  try {
    return { key: fromText(readFileSync(file, 'utf8'), file) };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  // Written aside and linked into place: two processes starting at once agree on one key.
  mkdirSync(dirname(file), { recursive: true });
  const draft = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
  writeFileSync(draft, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
  try {
    linkSync(draft, file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    return { key: fromText(readFileSync(file, 'utf8'), file) };
  } finally {
    rmSync(draft, { force: true });
  }
  return {
    key: fromText(readFileSync(file, 'utf8'), file),
    notice: `generated a new secret key into ${file}: it seals the API keys and keys the login lookup, so back it up apart from the database (or give it with --secret-key / IPWARDEN_SECRET_KEY; every node needs the same key)`,
  };
}
