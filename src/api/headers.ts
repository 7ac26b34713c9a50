// The headers every answer of the API carries besides its content type and request id: CORS
// (api.md §1) and `X-Content-Type-Options: nosniff` (issue 20: no browser may guess another type
// from a JSON answer). Shared by the Fastify app and the decision fast path, so both answer alike.

const EXPOSED = ['Content-Type', 'X-Auth-Token', 'X-Request-ID', 'Location', 'ETag'].join(', ');

export const NOSNIFF = Object.freeze({ 'x-content-type-options': 'nosniff' });

/**
 * The shared headers for a request from `origin`, given the configured origins ('*' or a
 * comma-separated list). With '*' the same object answers every request (nothing is allocated).
 */
export function sharedHeaders(corsOrigin: string): (origin: string | undefined) => Readonly<Record<string, string>> {
  if (corsOrigin === '*') {
    const any = Object.freeze({ ...NOSNIFF, 'access-control-allow-origin': '*', 'access-control-expose-headers': EXPOSED });
    return () => any;
  }
  const origins = corsOrigin.split(',').map((o) => o.trim());
  const other = Object.freeze({ ...NOSNIFF, vary: 'Origin', 'access-control-expose-headers': EXPOSED });
  return (origin) => (origin !== undefined && origins.includes(origin) ? { ...NOSNIFF, vary: 'Origin', 'access-control-allow-origin': origin, 'access-control-expose-headers': EXPOSED } : other);
}
