// `ipwarden serve` as a real process on ephemeral ports, with its own temporary database: its log
// (stdout) is kept, and the address it listens on is read from it.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'ipwarden.js');

export interface ServerProcess {
  child: ChildProcess;
  /** `http://127.0.0.1:PORT` (`https:` with --tls-cert) of the API. */
  base: string;
  port: number;
  /** Everything the process wrote so far (stdout, then stderr). */
  output(): string;
  /** Resolves with the exit code once the process has exited. */
  exited: Promise<number | null>;
  /** Ends the process if it still runs (SIGKILL after 5 s) and removes its database. */
  stop(): Promise<void>;
}

export async function startServerProcess(args: string[] = []): Promise<ServerProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'ipwarden-process-'));
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.DATABASE_URL;
  delete env.NODE_OPTIONS;
  const child = spawn(process.execPath, [BIN, 'serve', '--db', join(dir, 'p.db'), '--port', '0', '--host', '127.0.0.1', '--metrics-port', '0', '--log-level', 'info', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk) => (stdout += chunk));
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const output = () => stdout + stderr;
  const deadline = Date.now() + 20_000;
  let listening: RegExpMatchArray | null;
  while (!(listening = /"msg":"Server listening at (https?:\/\/127\.0\.0\.1:(\d+))"/.exec(stdout))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`the server did not start: ${output()}`);
    }
    await sleep(50);
  }
  return {
    child,
    base: listening[1]!,
    port: Number(listening[2]),
    output,
    exited,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
