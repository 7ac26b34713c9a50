// Where the edge listens and where it relays: the `--sip TRANSPORT:HOST:PORT` and
// `--sip-upstream HOST:PORT` settings (api.md §7), and how an address is written in a Via.
import { isIP } from 'node:net';

export interface Endpoint {
  host: string;
  port: number;
}

/** How SIP travels on a hop: datagrams, or a stream of messages (RFC 3261 §18). */
export type Transport = 'udp' | 'tcp' | 'tls';
export type StreamTransport = Exclude<Transport, 'udp'>;

/** One `--sip` socket. */
export interface Listener extends Endpoint {
  transport: Transport;
}

export class EndpointError extends Error {}

const TRANSPORTS: readonly string[] = ['udp', 'tcp', 'tls'] satisfies Transport[];

/** `udp:HOST:PORT`, `tcp:…` or `tls:…` (IPv6 as `udp:[::1]:5060`); port 0 binds an ephemeral port. */
export function parseSipListen(spec: string): Listener {
  const [transport, rest] = splitOnce(spec, ':');
  const lower = transport.toLowerCase();
  if (rest === undefined || !TRANSPORTS.includes(lower)) {
    throw new EndpointError(`--sip must be udp:HOST:PORT, tcp:HOST:PORT or tls:HOST:PORT, got "${spec}"`);
  }
  return { transport: lower as Transport, ...parseHostPort(rest, '--sip', true) };
}

/** Every `--sip` socket, at most one per transport (the edge writes one address per transport in its Vias). */
export function parseSipListeners(specs: readonly string[]): Listener[] {
  const listeners = specs.map(parseSipListen);
  const twice = listeners.find((l, i) => listeners.findIndex((m) => m.transport === l.transport) !== i);
  if (twice) throw new EndpointError(`--sip takes one listener per transport, got ${twice.transport} twice`);
  return listeners;
}

/** `HOST:PORT` of the SIP server the edge relays to (IPv6 as `[::1]:5060`). */
export function parseSipUpstream(spec: string): Endpoint {
  return parseHostPort(spec, '--sip-upstream', false);
}

function parseHostPort(spec: string, flag: string, portZeroAllowed: boolean): Endpoint {
  const colon = spec.lastIndexOf(':');
  let host = colon > 0 ? spec.slice(0, colon) : '';
  const portText = colon > 0 ? spec.slice(colon + 1) : '';
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  else if (host.includes(':')) host = ''; // a bare IPv6 address is ambiguous with its port
  const port = /^\d{1,5}$/.test(portText) ? Number(portText) : NaN;
  const portOk = port <= 65535 && (port > 0 || (portZeroAllowed && port === 0));
  if (host === '' || !portOk || (host.includes(':') && isIP(host) !== 6)) {
    throw new EndpointError(
      `${flag} needs HOST:PORT with a port ${portZeroAllowed ? '0' : '1'}-65535 (IPv6 in brackets), got "${spec}"`,
    );
  }
  return { host, port };
}

function splitOnce(text: string, separator: string): [string, string | undefined] {
  const at = text.indexOf(separator);
  return at < 0 ? [text, undefined] : [text.slice(0, at), text.slice(at + 1)];
}

/** The host:port form used in a Via sent-by or a log line: IPv6 goes in brackets. */
export function formatHostPort({ host, port }: Endpoint): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** An IPv6 socket reports IPv4 peers as ::ffff:a.b.c.d; the rules know them as a.b.c.d. */
export function unmapped(host: string): string {
  return host.startsWith('::ffff:') && isIP(host.slice(7)) === 4 ? host.slice(7) : host;
}
