// The edge's sockets on dedicated IPs (api.md §7.1): one per IP of this host, following the pool;
// an address that is not on the machine is reported and logged once, never fatal.
import assert from 'node:assert/strict';
import dgram, { createSocket } from 'node:dgram';
import { syncBuiltinESMExports } from 'node:module';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { EgressSockets } from '../../src/edge/egress-sockets.ts';
import { highPort } from './sipp.ts';

function capturedLogger() {
  const lines: Array<{ msg: string; ip?: string }> = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      lines.push(JSON.parse(String(chunk)));
      done();
    },
  });
  return { lines, logger: pino({ level: 'info' }, stream) };
}

const until = async (condition: () => boolean, what: string) => {
  for (let i = 0; i < 200 && !condition(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(condition(), what);
};

describe('EgressSockets', () => {
  it('binds each IP, receives on it, reports an unbindable address once, and closes what leaves the pool', async (t) => {
    // Every bind attempt opens a socket: counted, so the test waits for retries, not for time.
    const opened = t.mock.method(dgram, 'createSocket');
    syncBuiltinESMExports();
    t.after(() => {
      opened.mock.restore();
      syncBuiltinESMExports();
    });
    const port = highPort();
    const { lines, logger } = capturedLogger();
    const received: string[] = [];
    const sockets = new EgressSockets({
      port,
      recvBufferSize: 65536,
      logger,
      retryMs: 20,
      onMessage: (ip, bytes) => received.push(`${ip} ${bytes.toString()}`),
      onError: () => undefined,
    });
    try {
      // 192.0.2.1 (TEST-NET-1) is on no interface of this machine.
      sockets.sync(['127.0.21.31', '127.0.21.32', '192.0.2.1']);
      await until(() => sockets.status().filter((s) => s.bound).length === 2 && sockets.status().some((s) => s.error !== null), 'two bound, one failed');
      assert.deepEqual(
        sockets.status().map(({ ip, bound }) => ({ ip, bound })),
        [{ ip: '127.0.21.31', bound: true }, { ip: '127.0.21.32', bound: true }, { ip: '192.0.2.1', bound: false }],
      );
      assert.match(sockets.status()[2]!.error!, /EADDRNOTAVAIL/);
      assert.ok(sockets.holds('127.0.21.31') && !sockets.holds('192.0.2.1'));

      const client = createSocket('udp4');
      client.send('hello', port, '127.0.21.32');
      await until(() => received.length === 1, 'a datagram on the dedicated IP');
      client.close();
      assert.deepEqual(received, ['127.0.21.32 hello']);

      // Retried every 20 ms here, logged once: wait until three retries have opened their sockets
      // (after the three first binds and the test's client).
      await until(() => opened.mock.callCount() >= 7, 'three retries of the unbindable address');
      assert.equal(lines.filter((l) => l.ip === '192.0.2.1' && /cannot bind/.test(l.msg)).length, 1);

      sockets.sync(['127.0.21.31']);
      assert.deepEqual(sockets.status().map((s) => s.ip), ['127.0.21.31']);
      // The port is free again on the IP that left.
      const reuse = createSocket('udp4');
      await new Promise<void>((done, fail) => {
        reuse.once('error', fail);
        reuse.bind(port, '127.0.21.32', () => done());
      });
      reuse.close();
    } finally {
      await sockets.close();
    }
  });
});
