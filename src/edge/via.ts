// One Via value (RFC 3261 §20.42, §18.2.1, RFC 3581): `SIP/2.0/UDP host:port;branch=..;rport`.
import { isIP } from 'node:net';
import { isLowercaseOf, isWhitespace, SipParseError, trimmed } from './message.ts';
import { formatHostPort, type Endpoint } from './endpoint.ts';

export interface Via {
  /** `SIP/2.0/UDP` as written. */
  protocol: string;
  host: string;
  port?: number;
  /** In order, names as written; a flag parameter (`rport`) has value undefined. */
  params: Array<[name: string, value: string | undefined]>;
}

export function parseVia(value: string): Via {
  const end = value.length;
  let space = 0;
  while (space < end && !isWhitespace(value.charCodeAt(space))) space++;
  const protocol = value.slice(0, space);
  if (space === end || protocol.length < 8 || (!protocol.startsWith('SIP/2.0/') && protocol.slice(0, 8).toUpperCase() !== 'SIP/2.0/')) throw new SipParseError('bad Via');
  // Read in place: each part is sliced from `value` once, trimmed.
  const semicolon = value.indexOf(';', space);
  const { host, port } = parseSentBy(trimmed(value, space, semicolon < 0 ? end : semicolon));
  const params: Via['params'] = [];
  for (let from = semicolon + 1; semicolon >= 0; ) {
    const next = value.indexOf(';', from);
    const to = next < 0 ? end : next;
    const eq = value.indexOf('=', from);
    const name = trimmed(value, from, eq >= 0 && eq < to ? eq : to);
    if (name === '') throw new SipParseError('bad Via parameter');
    params.push([name, eq >= 0 && eq < to ? trimmed(value, eq + 1, to) : undefined]);
    if (next < 0) break;
    from = next + 1;
  }
  return { protocol, host, port, params };
}

function parseSentBy(sentBy: string): { host: string; port?: number } {
  let host = sentBy;
  let portText: string | undefined;
  if (sentBy.startsWith('[')) {
    const close = sentBy.indexOf(']');
    host = sentBy.slice(1, close);
    if (close < 0 || isIP(host) !== 6) throw new SipParseError('bad Via sent-by');
    if (close + 1 < sentBy.length) {
      if (sentBy[close + 1] !== ':') throw new SipParseError('bad Via sent-by');
      portText = sentBy.slice(close + 2);
    }
  } else {
    const colon = sentBy.indexOf(':');
    if (colon >= 0) {
      host = sentBy.slice(0, colon);
      portText = sentBy.slice(colon + 1);
    }
  }
  if (host === '' || /[\s,;"<>]/.test(host)) throw new SipParseError('bad Via sent-by');
  if (portText === undefined) return { host };
  const port = portNumber(portText);
  if (port < 1 || port > 65535) throw new SipParseError('bad Via port');
  return { host, port };
}

/** One to five digits as a number, else 0. */
function portNumber(text: string): number {
  if (text.length === 0 || text.length > 5) return 0;
  let port = 0;
  for (let i = 0; i < text.length; i++) {
    const digit = text.charCodeAt(i) - 48;
    if (digit < 0 || digit > 9) return 0;
    port = port * 10 + digit;
  }
  return port;
}

export function formatVia(via: Via): string {
  const sentBy = via.port === undefined ? bracketed(via.host) : formatHostPort({ host: via.host, port: via.port });
  let text = `${via.protocol} ${sentBy}`;
  for (const [name, value] of via.params) text += value === undefined ? `;${name}` : `;${name}=${value}`;
  return text;
}

function bracketed(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

/** The parameter `name` (lower-case), whatever case it is written in; '' for a flag. */
export function viaParam(via: Via, name: string): string | undefined {
  for (const [n, v] of via.params) if (isLowercaseOf(n, name)) return v ?? '';
  return undefined;
}

function setViaParam(via: Via, name: string, value: string): void {
  const found = via.params.find(([n]) => isLowercaseOf(n, name));
  if (found) found[1] = value;
  else via.params.push([name, value]);
}

/**
 * What a server transport records on the sender's Via (RFC 3261 §18.2.1, RFC 3581 §4):
 * `received` when the sent-by host is not the packet's source, and `rport` filled in when the
 * sender asked for it, or `always` (a stream: its responses go back on the connection, which the
 * source address and port name). Returns whether anything changed.
 */
export function stampReceived(via: Via, source: Endpoint, always = false): boolean {
  const wantsRport = always || viaParam(via, 'rport') !== undefined;
  if (wantsRport) setViaParam(via, 'rport', String(source.port));
  if (wantsRport || via.host !== source.host) {
    setViaParam(via, 'received', source.host);
    return true;
  }
  return false;
}

/** The transport a Via names, lower-cased (`SIP/2.0/TCP` → `tcp`). */
export function viaTransport(via: Via): string {
  return via.protocol.slice(8).toLowerCase();
}

/** Where a response for this Via goes (RFC 3261 §18.2.2 for UDP, RFC 3581 §4 for rport). */
export function responseTarget(via: Via): Endpoint {
  const rport = Number(viaParam(via, 'rport'));
  const port = rport > 0 && rport <= 65535 ? rport : (via.port ?? 5060);
  const received = viaParam(via, 'received');
  return { host: received !== undefined && isIP(received) ? received : via.host, port };
}
