// Running sipp (Debian package sip-tester) from the edge tests and the SIP bench: bounded in
// time, on loopback addresses of its own so parallel runs do not collide.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
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

/**
 * A random port below Linux's ephemeral range (32768–60999), from which every connection takes
 * its local port: a port picked there may be held on 127.0.0.1 by another test's connection.
 * With a fresh loopback address a clash is all but impossible.
 */
export function highPort(): number {
  return 20000 + Math.floor(Math.random() * 12768);
}

/** The SIP messages sipp logged as received with -trace_msg, as text. */
export function receivedMessages(messageLog: string): string[] {
  return messageLog
    .split(/^-{10,}.*$/m)
    .filter((block) => /message received/.test(block))
    .map((block) => block.slice(block.indexOf(':\n') + 2).trim());
}

/** A TCP port free on `host` now (bound and let go): for the TCP listeners of sipp and the server. */
export async function freeTcpPort(host: string): Promise<number> {
  const { createServer } = await import('node:net');
  const server = createServer();
  await new Promise<void>((done, fail) => server.once('error', fail).listen(0, host, () => done()));
  const { port } = server.address() as { port: number };
  await new Promise<void>((done) => server.close(() => done()));
  return port;
}

/** sipp's flags for a transport: over TCP one connection each way (`-t t1`). */
function transportFlags(transport: 'udp' | 'tcp'): string[] {
  return transport === 'tcp' ? ['-t', 't1'] : [];
}

/** sipp as the UAS (scenarios/uas.xml) on `uas`, answering `calls` calls; resolves to the INVITEs it received. */
export async function sippAnswer(dir: string, uas: { host: string; port: number }, calls: number, transport: 'udp' | 'tcp'): Promise<string[]> {
  const log = join(dir, `uas-${Math.random()}.log`);
  const result = await runSipp(
    ['-sf', join(SCENARIO_DIR, 'uas.xml'), ...transportFlags(transport), '-i', uas.host, '-p', String(uas.port), '-m', String(calls), '-timeout', '15s', '-trace_msg', '-message_file', log],
    { cwd: dir, killAfterMs: 20_000 },
  );
  assert.equal(result.code, 0, `UAS failed:\n${result.output.slice(-2000)}`);
  return receivedMessages(readFileSync(log, 'latin1')).filter((m) => m.startsWith('INVITE '));
}

/** sipp placing one call (scenarios/uac-OUTCOME.xml) from `from` to `to`, asserted to end as `outcome` says. */
export async function sippCall(
  dir: string,
  to: { host: string; port: number },
  outcome: 'answered' | 'rejected',
  from: { host: string; port: number },
  keys: { caller?: string; realm: string; ua: string },
  transport: 'udp' | 'tcp',
): Promise<void> {
  const result = await runSipp(
    [`${to.host}:${to.port}`, '-sf', join(SCENARIO_DIR, `uac-${outcome}.xml`), ...transportFlags(transport), '-i', from.host, '-p', String(from.port), '-m', '1',
      '-key', 'caller', keys.caller ?? 'alice', '-key', 'realm', keys.realm, '-key', 'ua', keys.ua, '-timeout', '10s', '-timeout_error', '-recv_timeout', '4000'],
    { cwd: dir, killAfterMs: 15_000 },
  );
  assert.equal(result.code, 0, `expected an ${outcome} call over ${transport} from ${from.host}; sipp said:\n${result.output.slice(-1500)}`);
}

/** A header's values in a message sipp logged, folded Vias split. */
export function loggedHeader(message: string, name: string): string[] {
  const values = message.split('\n').filter((l) => l.toLowerCase().startsWith(`${name.toLowerCase()}:`)).map((l) => l.slice(name.length + 1).trim());
  return name.toLowerCase() === 'via' ? values.flatMap((v) => v.split(/,\s*(?=SIP\/)/)) : values;
}
