// Issue 27: the API over HTTPS, and a renewed certificate served without a restart.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { get } from 'node:https';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createServer, type TLSSocket } from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { followCertificate, readCertificate } from '../../src/certificate.ts';
import { installCertificate, makeCertificate, type TestCertificate } from '../support/certificate.ts';
import { startServerProcess, type ServerProcess } from '../support/server-process.ts';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'ipwarden.js');

/** The fingerprint of the certificate a new connection to `port` is shown. */
function servedFingerprint(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket: TLSSocket = connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      resolve(socket.getPeerCertificate().fingerprint256);
      socket.destroy();
    });
    socket.once('error', reject);
  });
}

async function eventually(what: string, check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  assert.fail(`${what} did not happen within 5 s`);
}

function certificateFiles(pair: TestCertificate) {
  const dir = mkdtempSync(join(tmpdir(), 'ipwarden-tls-'));
  const files = { cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') };
  writeFileSync(files.cert, pair.cert);
  writeFileSync(files.key, pair.key);
  return files;
}

describe('the certificate files', () => {
  test('a missing file or a key of another certificate is refused, naming the file', () => {
    const first = makeCertificate();
    const second = makeCertificate();
    const files = certificateFiles(first);
    assert.throws(() => readCertificate({ ...files, key: join(tmpdir(), 'no-such-key.pem') }), /cannot read the TLS key .*no-such-key\.pem/);
    const mismatched = certificateFiles({ ...first, key: second.key });
    assert.throws(() => readCertificate(mismatched), /cannot be used together/);
    assert.ok(readCertificate(files).cert);
  });

  test('a renewal is served to new connections once its files change; a broken one keeps the old', async () => {
    const first = makeCertificate('first');
    const second = makeCertificate('second');
    const files = certificateFiles(first);
    const server = createServer(readCertificate(files), (socket) => socket.end());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    const failures: string[] = [];
    const follower = followCertificate(server, files, { intervalMs: 20, onFailed: (e) => failures.push(e.message) });
    try {
      assert.equal(await servedFingerprint(port), first.fingerprint);
      // A certificate whose key is not (yet) there: refused, the first stays in service.
      writeFileSync(files.cert, second.cert);
      await eventually('the failed reload', async () => failures.length > 0);
      assert.equal(await servedFingerprint(port), first.fingerprint);
      installCertificate(second, files);
      await eventually('the second certificate', async () => (await servedFingerprint(port)) === second.fingerprint);
    } finally {
      follower.stop();
      server.close();
    }
  });
});

describe('ipwarden serve --tls-cert --tls-key', () => {
  let server: ServerProcess;
  let first: TestCertificate;
  let files: { cert: string; key: string };
  before(async () => {
    first = makeCertificate('first');
    files = certificateFiles(first);
    server = await startServerProcess(['--tls-cert', files.cert, '--tls-key', files.key]);
  });
  after(() => server.stop());

  test('answers the API and the console over HTTPS, verified against its certificate', async () => {
    assert.match(server.base, /^https:\/\//);
    const answer = (path: string) =>
      new Promise<{ status: number; type: string; body: string }>((resolve, reject) => {
        get(`${server.base}${path}`, { ca: first.cert }, (res) => {
          let body = '';
          res.on('data', (chunk) => (body += chunk));
          res.on('end', () => resolve({ status: res.statusCode!, type: String(res.headers['content-type']), body }));
        }).once('error', reject);
      });
    const accounts = await answer('/v2/accounts/4fd8b0c2a1e34f5d9c7a8b6e5d4c3b2a');
    assert.equal(accounts.status, 401);
    assert.equal(JSON.parse(accounts.body).error, '401');
    const consolePage = await answer('/');
    assert.equal(consolePage.status, 200);
    assert.match(consolePage.type, /text\/html/);
  });

  test('plain HTTP on the HTTPS port gets no API answer', async () => {
    const outcome = await new Promise<string>((resolve) => {
      const req = httpRequest({ host: '127.0.0.1', port: server.port, path: '/v2/health' }, (res) => resolve(`status ${res.statusCode}`));
      req.once('error', (error) => resolve(`error ${(error as NodeJS.ErrnoException).code}`));
      req.end();
    });
    assert.doesNotMatch(outcome, /status 200/);
  });

  test('SIGHUP serves the renewed certificate to new connections', async () => {
    const second = makeCertificate('second');
    assert.equal(await servedFingerprint(server.port), first.fingerprint);
    installCertificate(second, files);
    server.child.kill('SIGHUP');
    await eventually('the renewed certificate', async () => (await servedFingerprint(server.port)) === second.fingerprint);
    assert.equal(server.child.exitCode, null, 'SIGHUP does not stop the server');
    await eventually('the reload logged', async () => /TLS certificate loaded/.test(server.output()));
  });
});

test('--tls-cert without --tls-key, or an unreadable certificate, stops the start with the reason', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ipwarden-tls-'));
  const run = (flags: string[]) => spawnSync(process.execPath, [BIN, 'serve', '--db', join(dir, 'x.db'), '--port', '0', '--metrics-port', '0', ...flags], { encoding: 'utf8', timeout: 20_000 });
  const alone = run(['--tls-cert', join(dir, 'cert.pem')]);
  assert.notEqual(alone.status, 0);
  assert.match(alone.stderr, /--tls-cert and --tls-key/);
  const missing = run(['--tls-cert', join(dir, 'cert.pem'), '--tls-key', join(dir, 'key.pem')]);
  assert.notEqual(missing.status, 0);
  assert.match(missing.stderr, /cannot read the TLS certificate/);
});
