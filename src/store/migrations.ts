// Versioned migrations: plain SQL files named NNN_name.sql, applied in order, each once, each in
// its own transaction, recorded in schema_migrations. Every store runs them at start-up.

import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

const directory = fileURLToPath(new URL('./migrations/', import.meta.url));

export function loadMigrations(): Migration[] {
  return readdirSync(directory)
    .filter((file) => /^\d{3}_[a-z0-9_]+\.sql$/.test(file))
    .sort()
    .map((file) => ({ version: Number(file.slice(0, 3)), name: file, sql: readFileSync(join(directory, file), 'utf8') }));
}

/** Splits a migration into statements (the files hold no semicolons inside strings). */
export function statementsOf(sql: string): string[] {
  return sql
    .split(/;\s*(?:\n|$)/)
    .map((s) => s.replace(/^\s*--.*$/gm, '').trim())
    .filter((s) => s.length > 0);
}
