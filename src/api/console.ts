// The web console (issue 25): the files `npm ci` built into dist/console (scripts/build-console.js),
// served at `/` by the API's own process. The console talks to the public /v2 API only.

import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { sendError } from './errors.ts';

export const CONSOLE_DIR = fileURLToPath(new URL('../../dist/console/', import.meta.url));

// Everything from this origin, nothing from elsewhere: no CDN, no font, no inline script.
const POLICY = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/** `dir`: where the built console is (tests name another). */
export async function registerConsole(app: FastifyInstance, dir = CONSOLE_DIR): Promise<void> {
  if (!existsSync(dir)) {
    // A checkout where `npm ci` did not run its prepare script: say how to build, in our shape.
    app.get('/', { schema: { hide: true } }, (request, reply) =>
      sendError(request, reply, { status: 503, message: 'console not built', data: { message: 'the web console is not built: run npm run build:console' } }),
    );
    return;
  }
  // One route per file found at start (wildcard: false), so every other path stays the API's 404.
  await app.register(fastifyStatic, {
    root: dir,
    prefix: '/',
    wildcard: false,
    index: 'index.html',
    schemaHide: true,
    decorateReply: false,
    setHeaders: (res) => {
      res.setHeader('Content-Security-Policy', POLICY);
      res.setHeader('X-Content-Type-Options', 'nosniff');
      res.setHeader('Cache-Control', 'no-cache');
    },
  });
}
