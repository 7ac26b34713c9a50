// The request line (src/api/request-log.ts) is the line pino writes for the same fields: same
// keys, values, order and line end, through the same destination, at the same level.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { requestLog, type RequestLine } from '../../src/api/request-log.ts';
import { createLogger } from '../../src/main.ts';

function capture(level = 'info') {
  const lines: string[] = [];
  const logger = createLogger(level, { write: (line: string) => lines.push(line) });
  return { lines, logger, log: requestLog(logger) };
}

/** The line without its time, which differs between two calls a millisecond apart. */
const untimed = (line: string) => line.replace(/,"time":\d+/, ',"time":0');

const LINES: RequestLine[] = [
  { reqId: '4f1c2a9e8d7b6c5a0000000000000001', method: 'GET', url: '/v2/accounts/abc/access_lists/check?ip=10.0.0.1&user_agent=Zo%C3%AB', remote: '127.0.0.1', status: 200, ms: 0.21 },
  // A client's own request id and a path with characters JSON must escape.
  { reqId: 'id "quoted" \\ \n ☎', method: 'PUT', url: '/v2/accounts/"x"/\u0001é', remote: '::1', status: 400, ms: 12 },
  { reqId: 'r', method: 'DELETE', url: '/', remote: undefined, status: 404, ms: 0 },
];

test('each line equals, character for character, what pino writes for the same object', () => {
  for (const line of LINES) {
    const { lines, logger, log } = capture();
    log(line);
    logger.info({ reqId: line.reqId, method: line.method, url: line.url, remote: line.remote, status: line.status, ms: line.ms }, 'request');
    assert.equal(lines.length, 2);
    assert.equal(untimed(lines[0]!), untimed(lines[1]!));
    assert.ok(lines[0]!.endsWith('}\n'));
    const parsed = JSON.parse(lines[0]!) as Record<string, unknown>;
    assert.equal(parsed.level, 30);
    assert.equal(parsed.msg, 'request');
    assert.equal(parsed.reqId, line.reqId);
    assert.equal(parsed.url, line.url);
    assert.equal('remote' in parsed, line.remote !== undefined);
    assert.ok(Math.abs((parsed.time as number) - Date.now()) < 5_000);
  }
});

test('a logger above info writes no request line', () => {
  const { lines, log } = capture('warn');
  log(LINES[0]!);
  assert.deepEqual(lines, []);
});

test("the logger's level is read per line: lowered later, lines follow", () => {
  const { lines, logger, log } = capture('warn');
  logger.level = 'info';
  log(LINES[0]!);
  assert.equal(lines.length, 1);
});

test('a query-string token is redacted under every key that decodes to auth_token, and only there', () => {
  const cases: Array<[string, string]> = [
    ['/v2/x?auth_token=SECRET', '/v2/x?auth_token=[redacted]'],
    ['/v2/x?ip=1&auth%5Ftoken=SECRET&y=2', '/v2/x?ip=1&auth%5Ftoken=[redacted]&y=2'],
    ['/v2/x?%61%75%74%68%5F%74%6F%6B%65%6E=SECRET', '/v2/x?%61%75%74%68%5F%74%6F%6B%65%6E=[redacted]'],
    ['/v2/x?auth_token=SECRET&auth%5ftoken=SECRET', '/v2/x?auth_token=[redacted]&auth%5ftoken=[redacted]'],
    // Not the token: other keys, a key merely containing it, a value that spells it.
    ['/v2/x?my_auth_token=a&auth_tokens=b&q=auth_token%3Dc&user_agent=Zo%C3%AB', '/v2/x?my_auth_token=a&auth_tokens=b&q=auth_token%3Dc&user_agent=Zo%C3%AB'],
    ['/v2/x', '/v2/x'],
  ];
  for (const [url, logged] of cases) {
    const { lines, log } = capture();
    log({ ...LINES[0]!, url });
    assert.equal(JSON.parse(lines[0]!).url, logged);
  }
});
