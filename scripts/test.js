#!/usr/bin/env node
// `npm test`: every test/**/*.test.ts under Node's own test runner (with tsx for TypeScript).
// Node 20's --test takes no globs, so the files are listed here. Pass paths to run a subset.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

function testFiles(dir) {
  return readdirSync(dir).sort().flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return testFiles(path);
    return name.endsWith('.test.ts') ? [path] : [];
  });
}

const args = process.argv.slice(2);
const files = args.length > 0 ? args : testFiles('test');
// Tests bind ephemeral ports only: every server a test starts, in process or spawned, inherits
// this, so none takes the fixed default metrics port (8001) from another running at once.
const env = { ...process.env, IPWARDEN_METRICS_PORT: process.env.IPWARDEN_METRICS_PORT ?? '0' };
const result = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-reporter=spec', '--test-concurrency=2', ...files],
  { stdio: 'inherit', env },
);
process.exit(result.status ?? 1);
