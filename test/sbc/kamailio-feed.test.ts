// api.md §9: the Kamailio feed's own promises, with a fake RPC: atomic rewrites only when the
// text changes, a burst of changes written once, failed reloads retried with backoff and counted.
// The whole thing against a real Kamailio is test/e2e/kamailio.test.ts.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { Registry } from 'prom-client';
import { KamailioFeed, RELOAD_METHOD } from '../../src/sbc/kamailio-feed.ts';
import { binRpcReply, binRpcRequest } from '../../src/sbc/kamailio-rpc.ts';

const dir = mkdtempSync(join(tmpdir(), 'ipwarden-feed-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const quiet = { info: () => undefined, warn: () => undefined };

/**
 * Lets I/O and promises run until `done()`. The feed's timers stand still (node:test's mock
 * timers): only the test moves them, so every wait is for a condition, none for a time.
 */
async function until(done: () => boolean, what: string): Promise<void> {
  const deadline = performance.now() + 5000;
  while (!done() && performance.now() < deadline) await new Promise((resolve) => setImmediate(resolve));
  assert.ok(done(), what);
}

/** One turn of the event loop: whatever a timer set going without I/O has run by then. */
const settled = () => new Promise((resolve) => setImmediate(resolve));

async function metric(registry: Registry, name: string, labels = ''): Promise<number> {
  const line = (await registry.metrics()).split('\n').find((l) => l.startsWith(`${name}${labels} `));
  return line === undefined ? 0 : Number(line.split(' ')[1]);
}

describe('KamailioFeed', () => {
  test('writes at start, rewrites (and reloads) once per burst of changes, and not at all when the text is the same', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const file = join(dir, 'burst.list');
    let text = '1 203.0.113.1 32 0 a:b\n';
    let renders = 0;
    const reloads: string[] = [];
    const registry = new Registry();
    const feed = new KamailioFeed({ file, render: async () => (renders++, text), reload: async (m) => void reloads.push(m), registry, logger: quiet, debounceMs: 30 });
    await feed.start();
    assert.equal(readFileSync(file, 'utf8'), text);
    assert.deepEqual(reloads, [RELOAD_METHOD]);
    text = '1 203.0.113.2 32 0 a:b\n';
    for (let i = 0; i < 10; i++) feed.changed();
    t.mock.timers.tick(29);
    await settled();
    assert.equal(renders, 1, 'nothing before the quiet time is over');
    t.mock.timers.tick(1);
    await until(() => reloads.length === 2, 'the burst is written and reloaded');
    assert.equal(renders, 2, 'ten changes in a burst: one render');
    assert.equal(readFileSync(file, 'utf8'), text);
    feed.changed();
    t.mock.timers.tick(30);
    await until(() => renders === 3, 'a later change renders again');
    await settled();
    assert.equal(reloads.length, 2, 'same text: no rewrite, no reload');
    assert.equal(await metric(registry, 'ipwarden_kamailio_address_writes_total'), 2);
    assert.deepEqual(readdirSync(dir).filter((f) => f.includes('.tmp')), [], 'no temporary file left behind');
    feed.stop();
  });

  test('a failing reload is retried with backoff until it succeeds, and counted', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const file = join(dir, 'retry.list');
    let attempts = 0;
    const registry = new Registry();
    const feed = new KamailioFeed({
      file,
      render: async () => '1 198.51.100.1 32 0 a:b\n',
      reload: async () => {
        attempts++;
        if (attempts <= 3) throw new Error('ongoing reload');
      },
      registry,
      logger: quiet,
      retryMs: { first: 40, max: 100 },
    });
    await feed.start();
    assert.equal(attempts, 1);
    assert.equal(await metric(registry, 'ipwarden_kamailio_reload_pending'), 1);
    // 40, 80, then 100 (the cap): no attempt a millisecond early, one on time.
    for (const wait of [40, 80, 100]) {
      const before: number = attempts;
      t.mock.timers.tick(wait - 1);
      await settled();
      assert.equal(attempts, before, `no retry before ${wait} ms`);
      t.mock.timers.tick(1);
      await until(() => attempts === before + 1, `a retry after ${wait} ms`);
    }
    await settled();
    assert.equal(await metric(registry, 'ipwarden_kamailio_reloads_total', '{result="error"}'), 3);
    assert.equal(await metric(registry, 'ipwarden_kamailio_reloads_total', '{result="ok"}'), 1);
    assert.equal(await metric(registry, 'ipwarden_kamailio_reload_pending'), 0);
    t.mock.timers.tick(10_000);
    await settled();
    assert.equal(attempts, 4, 'no more calls once one succeeded');
    feed.stop();
  });
});

describe('binrpc framing (Kamailio binrpc.h)', () => {
  test('a request: header 0xA1, type and length sizes, length, cookie, then the method as a string record', () => {
    // binrpc.h: "abcdef" -> 0x71 "abcdef" 0x00
    assert.deepEqual([...binRpcRequest('abcdef', 0x123)], [0xa1, 0x01, 0x08, 0x01, 0x23, 0x71, ...Buffer.from('abcdef'), 0x00]);
    // "abcdefhij" -> 0x91 0x0A "abcdefhij" 0x00
    assert.deepEqual([...binRpcRequest('abcdefhij', 7)], [0xa1, 0x00, 0x0c, 0x07, 0x91, 0x0a, ...Buffer.from('abcdefhij'), 0x00]);
  });

  test('a reply is read whole, or not yet', () => {
    const reply = Buffer.from([0xa1, 0x11, 0x03, 0x01, 0x23, 0x10, 0x05, 0x00]);
    assert.equal(binRpcReply(reply.subarray(0, 6)), null);
    const whole = binRpcReply(reply)!;
    assert.equal(whole.type, 1);
    assert.equal(whole.cookie, 0x123);
    assert.deepEqual([...whole.body], [0x10, 0x05, 0x00]);
    assert.throws(() => binRpcReply(Buffer.from([0x42, 0])), /not a binrpc reply/);
  });
});
