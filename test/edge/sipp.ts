// Running sipp (Debian package sip-tester) from the edge tests and the SIP bench: bounded in
// time, on loopback addresses of its own so parallel runs do not collide.
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const SCENARIO_DIR = fileURLToPath(new URL('./scenarios/', import.meta.url));

/** Why sipp cannot run here, or null when it can. */
export function sippMissing(): string | null {
  const probe = spawnSync('sipp', ['-v'], { encoding: 'utf8' });
  if (probe.error) return `sipp is not installed (apt-get install sip-tester): ${probe.error.message}`;
  return null;
}

export interface SippResult {
  /** sipp's exit code: 0 when every call succeeded, 1 when some failed. */
  code: number | null;
  killed: boolean;
  output: string;
  ms: number;
}

/** Runs sipp, killing it after `killAfterMs` whatever its own timeouts say. */
export function runSipp(args: string[], opts: { cwd: string; killAfterMs: number }): Promise<SippResult> {
  const started = performance.now();
  const child = spawn('sipp', ['-nostdin', ...args], { cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('latin1')));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('latin1')));
  let killed = false;
  const timer = setTimeout(() => {
    killed = true;
    child.kill('SIGKILL');
  }, opts.killAfterMs);
  return new Promise((done, fail) => {
    child.on('error', fail);
    child.on('close', (code) => {
      clearTimeout(timer);
      done({ code, killed, output, ms: performance.now() - started });
    });
  });
}

/** A random address in 127.0.0.0/8 (all of it is loopback on Linux), never 127.0.0.1. */
export function loopbackAddress(): string {
  const byte = () => Math.floor(Math.random() * 254) + 1;
  return `127.${byte()}.${byte()}.${byte()}`;
}

/** A random high port; with a fresh loopback address a clash is all but impossible. */
export function highPort(): number {
  return 20000 + Math.floor(Math.random() * 40000);
}

/** The SIP messages sipp logged as received with -trace_msg, as text. */
export function receivedMessages(messageLog: string): string[] {
  return messageLog
    .split(/^-{10,}.*$/m)
    .filter((block) => /message received/.test(block))
    .map((block) => block.slice(block.indexOf(':\n') + 2).trim());
}
