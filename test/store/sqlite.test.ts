// The Store contract on the embedded SQLite adapter, each test on its own temporary file.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import { contractSuite } from './contract.ts';

contractSuite('sqlite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ipwarden-store-'));
  const store = openSqliteStore(join(dir, 'store.db'));
  return {
    store,
    async cleanup() {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});
