// Calling a Kamailio RPC command (api.md §9), the two ways Kamailio takes them:
// `http://HOST:PORT/PATH` — JSON-RPC 2.0 to the jsonrpcs module over xhttp;
// `unix:PATH` — the ctl module's binrpc over its stream socket, as kamcmd speaks it
// (framing per Kamailio's binrpc.h: a 0xA1 header byte, type and length-of-length nibbles,
// the body length and a cookie, then typed records).

import { createConnection } from 'node:net';

export type KamailioRpc = (method: string) => Promise<void>;

/** The RPC endpoint a `--kamailio-rpc` value names; throws with the accepted forms otherwise. */
export function kamailioRpc(url: string, timeoutMs = 2000): KamailioRpc {
  if (/^https?:\/\//.test(url)) return (method) => jsonRpc(url, method, timeoutMs);
  if (url.startsWith('unix:') && url.length > 5) return (method) => binRpc(url.slice(5), method, timeoutMs);
  throw new Error(`kamailio-rpc must be http://HOST:PORT/PATH (jsonrpcs) or unix:PATH (ctl binrpc), not '${url}'`);
}

let nextId = 0;

async function jsonRpc(url: string, method: string, timeoutMs: number): Promise<void> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', method, id: ++nextId }),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method}: HTTP ${response.status} ${text.slice(0, 200)}`);
  let answer: { error?: { code?: number; message?: string } };
  try {
    answer = JSON.parse(text);
  } catch {
    throw new Error(`${method}: the answer is not JSON: ${text.slice(0, 200)}`);
  }
  if (answer.error) throw new Error(`${method}: ${answer.error.code ?? ''} ${answer.error.message ?? ''}`.trim());
}

// ---- binrpc ----

const MAGIC_VERSION = 0xa1;
const REQUEST = 0;
const FAULT = 3;
const T_INT = 0;
const T_STR = 1;

/** Big-endian on the fewest bytes (at least one). */
function minimalInt(value: number): number[] {
  const bytes: number[] = [];
  for (let v = value; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return bytes.length === 0 ? [0] : bytes;
}

function strRecord(text: string): Buffer {
  const value = Buffer.concat([Buffer.from(text, 'utf8'), Buffer.from([0])]);
  if (value.length < 8) return Buffer.concat([Buffer.from([(value.length << 4) | T_STR]), value]);
  const length = minimalInt(value.length);
  return Buffer.concat([Buffer.from([((length.length | 8) << 4) | T_STR, ...length]), value]);
}

export function binRpcRequest(method: string, cookie: number): Buffer {
  const body = strRecord(method);
  const length = minimalInt(body.length);
  const cookieBytes = minimalInt(cookie);
  const header = [MAGIC_VERSION, (REQUEST << 4) | ((length.length - 1) << 2) | (cookieBytes.length - 1), ...length, ...cookieBytes];
  return Buffer.concat([Buffer.from(header), body]);
}

const readInt = (bytes: Buffer, from: number, count: number) => bytes.subarray(from, from + count).reduce((acc, b) => acc * 256 + b, 0);

/** A whole reply in `data`: its type and body, or null while bytes are missing. */
export function binRpcReply(data: Buffer): { type: number; cookie: number; body: Buffer } | null {
  if (data.length < 2) return null;
  if (data[0] !== MAGIC_VERSION) throw new Error(`not a binrpc reply (first byte 0x${data[0]!.toString(16)})`);
  const lengthBytes = ((data[1]! >> 2) & 3) + 1;
  const cookieBytes = (data[1]! & 3) + 1;
  const start = 2 + lengthBytes + cookieBytes;
  if (data.length < start) return null;
  const length = readInt(data, 2, lengthBytes);
  if (data.length < start + length) return null;
  return { type: data[1]! >> 4, cookie: readInt(data, 2 + lengthBytes, cookieBytes), body: data.subarray(start, start + length) };
}

/** The records of a fault body: its code and message. */
function faultOf(body: Buffer): string {
  const parts: string[] = [];
  let at = 0;
  while (at < body.length) {
    const head = body[at]!;
    const type = head & 0x0f;
    let size = (head >> 4) & 7;
    at++;
    if (head & 0x80) {
      const extra = size;
      size = readInt(body, at, extra);
      at += extra;
    }
    const value = body.subarray(at, at + size);
    at += size;
    if (type === T_INT) parts.push(String(readInt(value, 0, value.length)));
    else if (type === T_STR) parts.push(value.subarray(0, Math.max(0, value.length - 1)).toString('utf8'));
  }
  return parts.join(' ');
}

function binRpc(path: string, method: string, timeoutMs: number): Promise<void> {
  const cookie = 1 + Math.floor(Math.random() * 0x7ffffffe);
  return new Promise((resolve, reject) => {
    const socket = createConnection(path);
    let received = Buffer.alloc(0);
    const finish = (error?: Error) => {
      socket.destroy();
      if (error) reject(error);
      else resolve();
    };
    socket.setTimeout(timeoutMs, () => finish(new Error(`${method}: no answer on ${path} within ${timeoutMs} ms`)));
    socket.on('error', (error) => finish(new Error(`${method}: ${error.message}`)));
    socket.on('connect', () => socket.write(binRpcRequest(method, cookie)));
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      let reply;
      try {
        reply = binRpcReply(received);
      } catch (error) {
        finish(error as Error);
        return;
      }
      if (reply === null) return;
      if (reply.cookie !== cookie) finish(new Error(`${method}: a reply to another request (cookie ${reply.cookie})`));
      else if (reply.type === FAULT) finish(new Error(`${method}: ${faultOf(reply.body)}`));
      else finish();
    });
    socket.on('end', () => finish(new Error(`${method}: ${path} closed before answering`)));
  });
}
