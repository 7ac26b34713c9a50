// The PostgreSQL the tests use (IPWARDEN_TEST_DATABASE_URL, else the local test database): is it
// reachable, a URL for one schema of it, and an admin connection for set-up and clean-up.

import { randomBytes } from 'node:crypto';
import pg from 'pg';

export const BASE_URL = process.env.IPWARDEN_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** The URL of `schema` (every connection gets it as its search_path), optionally through another port on 127.0.0.1. */
export function schemaUrl(base: string, schema: string, port?: number): string {
  const url = new URL(base);
  if (port !== undefined) {
    url.hostname = '127.0.0.1';
    url.port = String(port);
  }
  url.searchParams.set('options', `-c search_path=${schema}`);
  return url.toString();
}

/** Why PostgreSQL cannot be used, or null when it can. */
export async function unreachable(): Promise<string | null> {
  const client = new pg.Client({ connectionString: BASE_URL, connectionTimeoutMillis: 3000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('SELECT 1');
    return null;
  } catch (error) {
    return `PostgreSQL not reachable at ${BASE_URL}: ${(error as Error).message || String(error)}`;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Runs `fn` on a fresh connection to the test database, closed afterwards. */
export async function admin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client(BASE_URL);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** A fresh schema of the test database: its URL, and `drop()` for the clean-up. */
export async function freshSchema(): Promise<{ url: string; drop(): Promise<void> }> {
  const schema = `t_${randomBytes(6).toString('hex')}`;
  await admin((c) => c.query(`CREATE SCHEMA ${schema}`));
  return { url: schemaUrl(BASE_URL, schema), drop: () => admin(async (c) => void (await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`))) };
}
