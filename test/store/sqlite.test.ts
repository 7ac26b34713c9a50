// The Store contract on the embedded SQLite adapter, each test on its own temporary file.

import { contractSuite } from './contract.ts';
import { openSqliteInTempDir } from './open-stores.ts';

contractSuite('sqlite', openSqliteInTempDir);
