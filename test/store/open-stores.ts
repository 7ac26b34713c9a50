// The stores the store tests run on, each opened fresh and with its clean-up: SQLite in a
// temporary directory, PostgreSQL in a fresh schema of the test database.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Store } from '../../src/store/port.ts';
import { openPostgresStore } from '../../src/store/postgres.ts';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import { freshSchema } from '../support/postgres.ts';

export interface OpenedStore {
  store: Store;
  cleanup(): Promise<void>;
}

export async function openSqliteInTempDir(): Promise<OpenedStore> {
  const dir = mkdtempSync(join(tmpdir(), 'ipwarden-store-'));
  const store = openSqliteStore(join(dir, 'store.db'));
  return {
    store,
    async cleanup() {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function openPostgresInFreshSchema(): Promise<OpenedStore> {
  const schema = await freshSchema();
  const store = await openPostgresStore(schema.url);
  return {
    store,
    async cleanup() {
      await store.close();
      await schema.drop();
    },
  };
}
