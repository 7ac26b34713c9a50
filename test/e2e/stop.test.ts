// Stopping cleanly (issue 20): SIGTERM to `ipwarden serve` stops accepting, lets the request in
// flight finish, says so in the log, exits 0 and releases its port; and `npm start`, whose script
// execs the server, passes the signal on instead of leaving the server orphaned.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { startServerProcess } from '../support/server-process.ts';

const refused = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = connect(port, '127.0.0.1', () => (socket.destroy(), resolve(false)));
    socket.on('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNREFUSED'));
  });

const bindable = (port: number) =>
  new Promise<boolean>((resolve) => {
    const probe = createServer();
    probe.once('error', () => resolve(false));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
  });

async function until(what: string, done: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!done()) {
    assert.ok(Date.now() < deadline, what);
    await sleep(20);
  }
}

/** A UDP port free a moment ago on 127.0.0.1. */
async function freeUdpPort(): Promise<number> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(resolve));
  return port;
}

const udpBindable = (port: number) =>
  new Promise<boolean>((resolve) => {
    const probe = createSocket('udp4');
    probe.once('error', () => resolve(false));
    probe.bind(port, '127.0.0.1', () => probe.close(() => resolve(true)));
  });

test('SIGTERM: the request in flight completes, no new connection is accepted, the log says so, exit 0, HTTP and SIP ports released', { timeout: 30_000 }, async () => {
  const sipPort = await freeUdpPort();
  const server = await startServerProcess(['--sip', `udp:127.0.0.1:${sipPort}`, '--sip-upstream', '127.0.0.1:9']);
  assert.equal(await udpBindable(sipPort), false, 'the SIP edge holds its socket');
  try {
    // A request in flight: its body arrives in two parts, the signal between them. It asks to
    // continue, so the server's 100 Continue says it has the request in hand.
    const body = JSON.stringify({ data: { note: 'slow' } });
    const req = request(`${server.base}/v2/health`, { method: 'GET', headers: { 'content-length': Buffer.byteLength(body), expect: '100-continue' } });
    const inHand = new Promise<void>((resolve) => req.once('continue', resolve));
    const answered = new Promise<{ status: number; text: string }>((resolve, reject) => {
      req.on('response', (response) => {
        let text = '';
        response.on('data', (chunk) => (text += chunk));
        response.on('end', () => resolve({ status: response.statusCode!, text }));
      });
      req.on('error', reject);
    });
    req.flushHeaders();
    await inHand;
    req.write(body.slice(0, 5));

    server.child.kill('SIGTERM');
    await until(`no stopping line: ${server.output()}`, () => /"signal":"SIGTERM".*ipwarden stopping/.test(server.output()));
    assert.equal(await refused(server.port), true, 'a new connection is refused while stopping');
    // Its metrics listener closes only once the requests in flight are answered: it still answers.
    const metricsUrl = /metrics listening at (http:\/\/[^"]+)/.exec(server.output())![1]!;
    assert.equal((await fetch(metricsUrl)).status, 200, 'still serving while a request is in flight');
    assert.equal(server.child.exitCode, null, 'still running while a request is in flight');

    req.end(body.slice(5));
    const answer = await answered;
    const finished = Date.now();
    assert.equal(answer.status, 200);
    assert.equal(JSON.parse(answer.text).data.status, 'ok');
    assert.equal(await server.exited, 0);
    // The connection the answer left open (kept alive) does not hold the stop up.
    assert.ok(Date.now() - finished < 3000, `exited ${Date.now() - finished} ms after the last answer`);
    assert.match(server.output(), /"msg":"ipwarden stopped"/);
    assert.equal(await bindable(server.port), true, 'the port is free again');
    assert.equal(await udpBindable(sipPort), true, 'the SIP socket is closed (the workers too)');
  } finally {
    await server.stop();
  }
});

test('SIGTERM to `npm start` reaches the server: it stops, nothing is left holding the port', { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ipwarden-npm-start-'));
  const env: NodeJS.ProcessEnv = { ...process.env, IPWARDEN_DB: join(dir, 'n.db'), IPWARDEN_PORT: '0', IPWARDEN_HOST: '127.0.0.1', IPWARDEN_METRICS_PORT: '0', IPWARDEN_LOG_LEVEL: 'info' };
  delete env.DATABASE_URL;
  delete env.NODE_OPTIONS;
  const npm = spawn('npm', ['start', '--silent'], { cwd: join(import.meta.dirname, '..', '..'), env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  npm.stdout!.on('data', (chunk) => (out += chunk));
  npm.stderr!.on('data', (chunk) => (out += chunk));
  try {
    await until(`npm start did not serve: ${out}`, () => /Server listening at http:\/\/127\.0\.0\.1:\d+/.test(out), 30_000);
    const port = Number(/Server listening at http:\/\/127\.0\.0\.1:(\d+)/.exec(out)![1]);
    const exited = new Promise((resolve) => npm.once('exit', resolve));
    npm.kill('SIGTERM');
    await exited;
    await until(`the server still answers on ${port} after npm exited: ${out}`, () => /"msg":"ipwarden stopped"/.test(out));
    assert.equal(await refused(port), true);
  } finally {
    npm.kill('SIGKILL');
    // Were the server left orphaned (the failure this test is about), it would hold this test's
    // pipes open: end it by the pid its own log gives.
    const pid = /"pid":(\d+)[^\n]*Server listening/.exec(out)?.[1];
    if (pid !== undefined) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // already gone, as it should be
      }
    }
    rmSync(dir, { recursive: true, force: true });
  }
});
