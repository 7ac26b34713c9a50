// The `ipwarden` command as a real process, on a given SQLite file, for the e2e tests.

import { spawn } from 'node:child_process';
import { join } from 'node:path';

export const BIN = join(import.meta.dirname, '..', '..', 'bin', 'ipwarden.js');

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The environment of a CLI run on `db` (no PostgreSQL, no inherited loader options). */
export function baseEnv(db: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, IPWARDEN_DB: db, IPWARDEN_LOG_LEVEL: 'silent' };
  delete env.DATABASE_URL;
  delete env.NODE_OPTIONS;
  return env;
}

export function cli(db: string, ...args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: baseEnv(db), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
