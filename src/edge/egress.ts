// Which address a request from the platform leaves from (api.md §7.1): a pure decision over the
// pool's current assignments and the sockets the edge holds. pipeline.ts applies it; server.ts
// owns the sockets and resolves names, so nothing here waits.
import { isIP } from 'node:net';
import type { EgressReader } from '../services/egress-pool.ts';
import type { Endpoint } from './endpoint.ts';
import { header, type SipRequest } from './message.ts';
import { sipUriTarget } from './uri.ts';

export interface EgressContext {
  pool: EgressReader;
  /** `--sip-egress-port`: the edge's port on every dedicated IP. */
  port: number;
  /** Whether the edge has a bound socket on this dedicated IP. */
  holds(ip: string): boolean;
}

export type EgressRoute =
  /** Not outbound: judged as any caller's request (§7), on whichever socket it came in. */
  | { kind: 'inbound' }
  /** Outbound on a dedicated IP that is not the named account's. */
  | { kind: 'refused' }
  /** Outbound to a Request-URI the edge cannot send to (not sip:). */
  | { kind: 'unroutable' }
  /** `from`: the dedicated IP to send from, or undefined for the main socket. */
  | { kind: 'outbound'; from: string | undefined; to: Endpoint };

/** The header the platform names the account in. */
const ACCOUNT_HEADER = 'x-account-id';

/**
 * `dedicatedIp`: the socket the request came in on, when not the main one. `main`: the main
 * socket's address, as its Via names it.
 */
export function routeRequest(
  egress: EgressContext,
  request: SipRequest,
  source: Endpoint,
  upstream: Endpoint,
  main: Endpoint,
  dedicatedIp: string | undefined,
): EgressRoute {
  if (source.host !== upstream.host) return { kind: 'inbound' };
  const to = sipUriTarget(request.uri);
  if (to === null) return { kind: 'unroutable' };
  if (namesEdge(egress, main, to)) return { kind: 'inbound' };
  const account = header(request.headers, ACCOUNT_HEADER) ?? '';
  if (dedicatedIp !== undefined) {
    return egress.pool.assigneeOf(dedicatedIp) === account && account !== '' ? { kind: 'outbound', from: dedicatedIp, to } : { kind: 'refused' };
  }
  // The account's first IP held here, in /ips/assigned order; none: the main socket.
  const from = egress.pool.heldFor(account).find((ip) => egress.holds(ip));
  return { kind: 'outbound', from, to };
}

function namesEdge(egress: EgressContext, main: Endpoint, to: Endpoint): boolean {
  if (to.host === main.host && to.port === main.port) return true;
  return to.port === egress.port && isIP(to.host) !== 0 && egress.holds(to.host);
}
