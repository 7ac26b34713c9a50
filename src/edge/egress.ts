// Which address a request from the platform leaves from (api.md §7.1): a pure decision over the
// pool's current assignments and the sockets the edge holds. pipeline.ts applies it; server.ts
// owns the sockets and resolves names, so nothing here waits.
import { isIP } from 'node:net';
import type { EgressReader } from '../services/egress-pool.ts';
import type { Endpoint, Transport } from './endpoint.ts';
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
  /** Outbound to a Request-URI the edge cannot send to (not sip: or sips:, or a transport it does not speak). */
  | { kind: 'unroutable' }
  /** `from`: the dedicated IP to send from, or undefined for the main socket; `transport`: as the Request-URI asks. */
  | { kind: 'outbound'; from: string | undefined; to: Endpoint; transport: Transport };

/** The header the platform names the account in. */
const ACCOUNT_HEADER = 'x-account-id';

/**
 * `dedicatedIp`: the socket the request came in on, when not the main one. `main`: the main
 * sockets' addresses (one per transport), as the edge's Vias name them.
 */
export function routeRequest(
  egress: EgressContext,
  request: SipRequest,
  source: Endpoint,
  upstream: Endpoint,
  main: readonly Endpoint[],
  dedicatedIp: string | undefined,
): EgressRoute {
  if (source.host !== upstream.host) return { kind: 'inbound' };
  const target = sipUriTarget(request.uri);
  if (target === null) return { kind: 'unroutable' };
  const { transport, ...to } = target;
  if (namesEdge(egress, main, to)) return { kind: 'inbound' };
  const account = header(request.headers, ACCOUNT_HEADER) ?? '';
  if (dedicatedIp !== undefined) {
    return egress.pool.assigneeOf(dedicatedIp) === account && account !== '' ? { kind: 'outbound', from: dedicatedIp, to, transport } : { kind: 'refused' };
  }
  // The account's first IP held here, in /ips/assigned order; none: the main socket.
  const from = egress.pool.heldFor(account).find((ip) => egress.holds(ip));
  return { kind: 'outbound', from, to, transport };
}

function namesEdge(egress: EgressContext, main: readonly Endpoint[], to: Endpoint): boolean {
  if (main.some((m) => to.host === m.host && to.port === m.port)) return true;
  return to.port === egress.port && isIP(to.host) !== 0 && egress.holds(to.host);
}
