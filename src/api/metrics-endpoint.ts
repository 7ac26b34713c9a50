// Where Prometheus scrapes /metrics (issue 20: not public by default). The figures (routes,
// decisions, index size, SIP traffic) tell an outsider about the platform, so they are served on
// a listener of their own, on loopback unless configured otherwise, and on the API's port only to
// a bearer of the metrics token; without a token the API's /metrics is an unknown route (404).

import type { FastifyInstance } from 'fastify';
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { Failure } from '../services/errors.ts';
import { NOSNIFF } from './headers.ts';

const PATH = '/metrics';

/** The metrics text, as Prometheus reads it (the API's and, with SIP workers, theirs added up). */
export type Scrape = () => Promise<string>;

/** `GET /metrics` and nothing else, on its own port; resolves once it listens. */
export async function listenForMetrics(scrape: Scrape, contentType: string, host: string, port: number): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || req.url?.split('?')[0] !== PATH) {
      res.writeHead(404, { 'content-type': 'text/plain', ...NOSNIFF }).end('not found\n');
      return;
    }
    scrape().then(
      (text) => res.writeHead(200, { 'content-type': contentType, ...NOSNIFF }).end(text),
      () => res.writeHead(500, { 'content-type': 'text/plain', ...NOSNIFF }).end('metrics failed\n'),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server;
}

const digest = (text: string) => createHash('sha256').update(text).digest();

/** `GET /metrics` on the API's port, for `Authorization: Bearer <token>` only (else 401). */
export function metricsRoute(app: FastifyInstance, scrape: Scrape, contentType: string, token: string): void {
  // Compared as digests of equal length, in constant time: the comparison tells nothing of the token.
  const expected = digest(`Bearer ${token}`);
  app.get(PATH, { schema: { hide: true } }, async (request, reply) => {
    const given = request.headers.authorization;
    if (typeof given !== 'string' || !timingSafeEqual(digest(given), expected)) throw new Failure('unauthorized', 'invalid_credentials');
    reply.header('content-type', contentType);
    return scrape();
  });
}
