// The batched UDP socket (native/batch_socket.c) on real datagrams on loopback, and the edge's
// fallback to Node's dgram where the addon is not built.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { Writable } from 'node:stream';
import { BatchSocket, loadBatchNative, type BatchNative, type BatchSocketOptions } from '../../src/edge/batch-socket.ts';
import { edgeSockets } from '../../src/edge/udp-socket.ts';

const loaded = loadBatchNative();
if (loaded instanceof Error) throw new Error(`the addon must be built for these tests (npm ci builds it): ${loaded.message}`);
const native: BatchNative = loaded;

async function udp(type: 'udp4' | 'udp6', host: string): Promise<Socket> {
  const socket = createSocket({ type, recvBufferSize: 1 << 20 });
  socket.bind(0, host);
  await once(socket, 'listening');
  return socket;
}

async function until(what: string, done: () => boolean, ms = 3000): Promise<void> {
  for (const started = Date.now(); !done(); await new Promise((r) => setTimeout(r, 5))) {
    if (Date.now() - started > ms) throw new Error(`timed out waiting for ${what}`);
  }
}

/** Sends argv[2] datagrams to 127.0.0.124:argv[1], one every 0.1 ms or so (a spin, then a turn of the loop for the send). */
const SPACED_SENDER = `
const socket = require('node:dgram').createSocket('udp4');
const [port, count] = process.argv.slice(1).map(Number);
socket.bind(0, '127.0.0.125', async () => {
  for (let i = 0; i < count; i++) {
    for (const until = process.hrtime.bigint() + 100000n; process.hrtime.bigint() < until; );
    socket.send('spaced ' + i, port, '127.0.0.124');
    await new Promise((r) => setImmediate(r));
  }
  socket.close();
});`;

/** How many datagrams each turn of the event loop that brought any brought. */
class Turns {
  readonly sizes: number[] = [];
  private inTurn = false;

  count(): void {
    // Each read is one turn of the event loop: setImmediate runs after it.
    if (!this.inTurn) {
      this.inTurn = true;
      this.sizes.push(0);
      setImmediate(() => (this.inTurn = false));
    }
    this.sizes[this.sizes.length - 1]!++;
  }
}

interface Seen {
  text: string;
  host: string;
  port: number;
}

function open(options: Partial<BatchSocketOptions> & { host: string }, seen: Seen[] = [], errors: Error[] = []): BatchSocket {
  return new BatchSocket(native, {
    port: 0,
    onMessage: (bytes, host, port) => seen.push({ text: bytes.toString(), host, port }),
    onError: (error) => errors.push(error),
    ...options,
  });
}

describe('BatchSocket', () => {
  it('reads what is queued in batches of at most `batch`, one call into JS each, each datagram with its bytes and source', async () => {
    const seen: Seen[] = [];
    const turns = new Turns();
    const socket = open({
      host: '127.0.0.120',
      batch: 16,
      paused: true,
      onMessage: (bytes, host, port) => {
        seen.push({ text: bytes.toString(), host, port });
        turns.count();
      },
    });
    const sender = await udp('udp4', '127.0.0.121');
    try {
      const { port } = socket.address();
      for (let i = 0; i < 100; i++) sender.send(`datagram ${i} ${'x'.repeat(i * 10)}`, port, '127.0.0.120');
      // All 100 wait in the kernel's queue while the socket is paused.
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(seen.length, 0);
      socket.start();
      await until('100 datagrams', () => seen.length === 100);
      assert.deepEqual(turns.sizes, [16, 16, 16, 16, 16, 16, 4]);
      assert.deepEqual(
        seen.map((s) => s.text),
        Array.from({ length: 100 }, (_, i) => `datagram ${i} ${'x'.repeat(i * 10)}`),
      );
      assert.ok(seen.every((s) => s.host === '127.0.0.121' && s.port === sender.address().port));
    } finally {
      socket.close();
      sender.close();
    }
  });

  it('paces its reads under load: datagrams a tenth of a millisecond apart are read on a 1 ms tick, several a turn, and a lone one after the load still arrives', async () => {
    /** Datagrams a turn of the loop, on average. */
    const readPaced = async (paceAfter: number) => {
      const turns = new Turns();
      const socket = open({ host: '127.0.0.124', paceAfter, onMessage: () => turns.count() });
      const sender = await udp('udp4', '127.0.0.125');
      try {
        const { port } = socket.address();
        // From another process, so the sends are spaced while this one's loop waits.
        const spaced = spawn(process.execPath, ['-e', SPACED_SENDER, String(port), '300'], { stdio: 'inherit' });
        await once(spaced, 'exit');
        await until('300 datagrams', () => turns.sizes.reduce((a, b) => a + b, 0) === 300);
        const afterLoad = turns.sizes.length;
        await new Promise((r) => setTimeout(r, 20));
        sender.send('alone', port, '127.0.0.124');
        await until('the lone datagram', () => turns.sizes.length === afterLoad + 1);
        return 300 / afterLoad;
      } finally {
        socket.close();
        sender.close();
      }
    };
    const paced = await readPaced(3);
    const unpaced = await readPaced(0);
    // Paced, 6-7 a turn here, unpaced 1.0-1.3: a slower sender brings fewer a millisecond.
    assert.ok(paced >= 2, `paced: ${paced.toFixed(1)} datagrams a turn`);
    assert.ok(unpaced < paced, `unpaced: ${unpaced.toFixed(1)} datagrams a turn, paced ${paced.toFixed(1)}`);
  });

  it("tells how long each datagram waited in the kernel's receive queue, by the kernel's receive timestamp", async () => {
    const waits: (number | undefined)[] = [];
    const socket = open({ host: '127.0.0.120', paused: true, onMessage: (_bytes, _host, _port, waitedMs) => waits.push(waitedMs) });
    const sender = await udp('udp4', '127.0.0.121');
    try {
      sender.send('early', socket.address().port, '127.0.0.120');
      await new Promise((r) => setTimeout(r, 80));
      socket.start();
      await until('the early datagram', () => waits.length === 1);
      sender.send('prompt', socket.address().port, '127.0.0.120');
      await until('the prompt datagram', () => waits.length === 2);
      // The first waited out the pause; the second was read as it came.
      assert.ok(waits[0]! >= 70 && waits[0]! < 1000, `the early datagram waited ${waits[0]} ms`);
      assert.ok(waits[1]! >= 0 && waits[1]! < 50, `the prompt datagram waited ${waits[1]} ms`);
    } finally {
      socket.close();
      sender.close();
    }
  });

  it('sends what a batch queues, flushing early when the queue is full, and a send outside a batch at once', async () => {
    const peer = await udp('udp4', '127.0.0.122');
    const replies: string[] = [];
    peer.on('message', (bytes) => replies.push(bytes.toString()));
    let socket: BatchSocket | undefined;
    socket = open({
      host: '127.0.0.120',
      batch: 8,
      paused: true,
      // Five replies a datagram, 40 a batch of 8: more than the 32 (4 × batch) the queue holds.
      onMessage: (bytes, host, port) => {
        for (let k = 0; k < 5; k++) socket!.send(Buffer.from(`${bytes} reply ${k}`), port, host);
      },
    });
    try {
      for (let i = 0; i < 24; i++) peer.send(`d${i}`, socket.address().port, '127.0.0.120');
      await new Promise((r) => setTimeout(r, 50));
      socket.start();
      await until('120 replies', () => replies.length === 120);
      assert.deepEqual(new Set(replies).size, 120);
      assert.ok(replies.includes('d23 reply 4'));
      // Outside a batch a send leaves at once.
      socket.send(Buffer.from('alone'), peer.address().port, '127.0.0.122');
      await until('the lone send', () => replies.at(-1) === 'alone');
    } finally {
      socket.close();
      peer.close();
    }
  });

  it('works on IPv6, and a socket on :: hears IPv4 senders as a.b.c.d and answers them', async () => {
    const seen: Seen[] = [];
    const six = open({ host: '::1' }, seen);
    const any = open({ host: '::' }, seen);
    const sender6 = await udp('udp6', '::1');
    const sender4 = await udp('udp4', '127.0.0.123');
    try {
      assert.deepEqual(six.address().address, '::1');
      sender6.send('over six', six.address().port, '::1');
      sender4.send('over four', any.address().port, '127.0.0.1');
      await until('two datagrams', () => seen.length === 2);
      const bySix = seen.find((s) => s.text === 'over six')!;
      const byFour = seen.find((s) => s.text === 'over four')!;
      assert.deepEqual(bySix, { text: 'over six', host: '::1', port: sender6.address().port });
      assert.deepEqual(byFour, { text: 'over four', host: '127.0.0.123', port: sender4.address().port });
      const [answers6, answers4] = [once(sender6, 'message'), once(sender4, 'message')];
      six.send(Buffer.from('back six'), bySix.port, bySix.host);
      any.send(Buffer.from('back four'), byFour.port, byFour.host);
      assert.equal(String((await answers6)[0]), 'back six');
      assert.equal(String((await answers4)[0]), 'back four');
    } finally {
      six.close();
      any.close();
      sender6.close();
      sender4.close();
    }
  });

  it('spreads one sender over the sockets bound to one address with reusePort, not by its address and port', async () => {
    const first: Seen[] = [];
    const second: Seen[] = [];
    const a = open({ host: '127.0.0.124', reusePort: true, spread: 2 }, first);
    const b = open({ host: '127.0.0.124', port: a.address().port, reusePort: true, spread: 2 }, second);
    const sender = await udp('udp4', '127.0.0.125');
    try {
      for (let i = 0; i < 200; i++) sender.send(`n${i}`, a.address().port, '127.0.0.124');
      await until('200 datagrams', () => first.length + second.length === 200);
      // At random, one of them getting fewer than 40 of 200 has a chance below 1e-17.
      assert.ok(first.length > 40 && second.length > 40, `${first.length} / ${second.length}`);
      // Once one closes, the other hears everything.
      a.close();
      second.length = 0;
      for (let i = 0; i < 50; i++) sender.send(`m${i}`, b.address().port, '127.0.0.124');
      await until('50 datagrams on the one left', () => second.length === 50);
    } finally {
      a.close();
      b.close();
      sender.close();
    }
  });

  it('reports a send it cannot make to onError instead of throwing, and a bind it cannot make by its code', async () => {
    const errors: Error[] = [];
    const socket = open({ host: '127.0.0.120' }, [], errors);
    try {
      socket.send(Buffer.from('x'), 5060, 'not-an-address');
      assert.equal(errors.length, 1);
      assert.throws(() => open({ host: '127.0.0.120', port: socket.address().port }), { code: 'EADDRINUSE' });
    } finally {
      socket.close();
    }
  });

  it('close stops reading and frees the port at once; a send after it is ignored', async () => {
    const seen: Seen[] = [];
    const socket = open({ host: '127.0.0.126' }, seen);
    const { port } = socket.address();
    const sender = await udp('udp4', '127.0.0.127');
    try {
      sender.send('before', port, '127.0.0.126');
      await until('one datagram', () => seen.length === 1);
      socket.close();
      socket.send(Buffer.from('after close'), sender.address().port, '127.0.0.127');
      const again = createSocket('udp4');
      await new Promise<void>((done, fail) => {
        again.once('error', fail);
        again.bind(port, '127.0.0.126', () => done());
      });
      const heard = once(again, 'message');
      sender.send('to the new socket', port, '127.0.0.126');
      assert.equal(String((await heard)[0]), 'to the new socket');
      again.close();
      assert.equal(seen.length, 1);
      assert.throws(() => socket.address(), /closed/);
    } finally {
      socket.close();
      sender.close();
    }
  });
});

describe('edgeSockets', () => {
  function capture() {
    const lines: { msg: string }[] = [];
    const stream = new Writable({ write: (chunk, _e, done) => (lines.push(JSON.parse(String(chunk))), done()) });
    return { lines, logger: pino({ level: 'warn' }, stream) };
  }

  it('falls back to Node dgram when the addon cannot be loaded, and says so once', async () => {
    const { lines, logger } = capture();
    const missing = () => new Error('Cannot find module batch_socket.node');
    const sockets = edgeSockets(logger, 'batch', missing);
    assert.equal(sockets.kind, 'dgram');
    assert.equal(sockets.readsPerTurn, 32);
    assert.equal(edgeSockets(logger, 'batch', missing).kind, 'dgram');
    assert.deepEqual(lines.map((l) => l.msg), ['batched UDP socket unavailable (npm ci builds it): the SIP edge uses Node dgram']);
    const seen: Seen[] = [];
    const socket = await sockets.open({
      host: '127.0.0.128', port: 0, recvBufferSize: 1 << 20, share: 'own',
      onMessage: (bytes, host, port) => seen.push({ text: bytes.toString(), host, port }), onError: (error) => assert.fail(error),
    });
    socket.start();
    const peer = await udp('udp4', '127.0.0.129');
    try {
      const heard = once(peer, 'message');
      peer.send('ping', socket.address().port, '127.0.0.128');
      await until('the datagram', () => seen.length === 1);
      assert.deepEqual(seen[0], { text: 'ping', host: '127.0.0.129', port: peer.address().port });
      socket.send(Buffer.from('pong'), peer.address().port, '127.0.0.129');
      assert.equal(String((await heard)[0]), 'pong');
    } finally {
      await socket.close();
      peer.close();
    }
  });

  it('uses the batched socket where the addon loads', () => {
    const sockets = edgeSockets(capture().logger);
    assert.equal(sockets.kind, 'batch');
    assert.equal(sockets.readsPerTurn, 64);
    assert.equal(edgeSockets(capture().logger, 'dgram').kind, 'dgram');
  });
});
