// A body over the limit (api.md §1: 413) answered so that the client can read the 413 (issue 20).
//
// A client such as Node's own fetch sends its whole body before it reads the answer. Fastify
// answers a body over the limit at once and asks for the connection to be closed; Node then
// closes the socket while the body is still arriving, the kernel answers the unread data with a
// reset, and the client sees EPIPE instead of the 413 (measured from 2 MB on). So after a 413 the
// connection stays open and the rest of the body is read and thrown away — at most DISCARD_LIMIT
// bytes, for at most DISCARD_DEADLINE_MS, after which the connection is dropped — and then the
// connection is in step again and may carry the client's next request. A client that sent
// `Expect: 100-continue` for a body declared over the limit gets the 413 instead of
// `100 Continue`, never sends the body, and its connection is closed.

import type { FastifyReply, FastifyRequest } from 'fastify';
import type { IncomingMessage } from 'node:http';

/** The most bytes of a refused body read and thrown away before the connection is dropped. */
export const DISCARD_LIMIT = 64 * 1024 * 1024;
/** How long a refused body may keep arriving before the connection is dropped. */
export const DISCARD_DEADLINE_MS = 10_000;

/** Sockets whose request was answered 413 and whose body is still being discarded. */
const discarding = new WeakSet<object>();

/** Has this connection's request been answered already, its body still arriving? */
export const isDiscarding = (socket: object) => discarding.has(socket);

/** Does the request wait for `100 Continue` before sending a body declared over `limit`? */
export function withholdsContinue(req: IncomingMessage, limit: number): boolean {
  return Number(req.headers['content-length']) > limit && /^100-continue$/i.test(req.headers.expect ?? '');
}

/**
 * Called as the 413 is sent: unless nothing more of the body can come, the connection is kept
 * open (Fastify's `Connection: close` removed) and the rest of the body discarded within bounds.
 */
export function discardRestOfBody(request: FastifyRequest, reply: FastifyReply, limit: number): void {
  const req = request.raw;
  if (req.complete || withholdsContinue(req, limit)) return;
  reply.removeHeader('connection');
  const socket = req.socket;
  discarding.add(socket);
  const drop = () => socket.destroy();
  const deadline = setTimeout(drop, DISCARD_DEADLINE_MS);
  const done = () => {
    clearTimeout(deadline);
    discarding.delete(socket);
  };
  let discarded = 0;
  req.on('data', (chunk: Buffer) => {
    discarded += chunk.length;
    if (discarded > DISCARD_LIMIT) drop();
  });
  req.once('end', done);
  req.once('close', done);
}
