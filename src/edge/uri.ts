// The parts of From / To the edge needs (RFC 3261 §20.20, §20.39, §19.1.1): the URI's user and
// host, and the header's tag parameter.
import type { Endpoint, Transport } from './endpoint.ts';
import { isLowercaseOf, SipParseError } from './message.ts';

/** The URI of a name-addr (`"Bob" <sip:bob@b.example>;tag=1`) or addr-spec (`sip:bob@b.example;tag=1`). */
export function addressUri(value: string): string {
  const open = value.indexOf('<');
  if (open >= 0) {
    const close = value.indexOf('>', open);
    if (close < 0) throw new SipParseError('unclosed < in an address header');
    return value.slice(open + 1, close).trim();
  }
  // §20.10: without angle brackets, parameters after the URI belong to the header.
  const semicolon = value.indexOf(';');
  return (semicolon < 0 ? value : value.slice(0, semicolon)).trim();
}

/** The header parameter `name` (e.g. tag), looking only after the URI. */
export function addressParam(value: string, name: string): string | undefined {
  const close = value.lastIndexOf('>');
  for (let at = value.indexOf(';', close + 1); at >= 0; ) {
    const next = value.indexOf(';', at + 1);
    const end = next < 0 ? value.length : next;
    const eq = value.indexOf('=', at + 1);
    const keyEnd = eq >= 0 && eq < end ? eq : end;
    if (isLowercaseOf(value.slice(at + 1, keyEnd).trim(), name)) return keyEnd === end ? '' : value.slice(keyEnd + 1, end).trim();
    at = next;
  }
  return undefined;
}

/** User and host of a sip: or sips: URI (empty for other schemes); the host lower-cased, bare. */
export function sipUriParts(uri: string): { user: string; host: string } {
  const parts = splitSipUri(uri);
  // A tel: or other URI names no realm; the decision then treats it as an unknown one.
  if (parts === null) return { user: '', host: '' };
  return { user: parts.user, host: parts.host };
}

/**
 * Where a request for a sip: or sips: URI goes (api.md §7.1): its host and port, and the transport
 * it asks for (RFC 3261 §19.1.4: `;transport=`, and sips: always TLS); the port is 5060, or 5061
 * for TLS, when absent. Null for other schemes and transports the edge does not speak.
 */
export function sipUriTarget(uri: string): (Endpoint & { transport: Transport }) | null {
  const scheme = uri.slice(0, 5).toLowerCase();
  if (!scheme.startsWith('sip:') && scheme !== 'sips:') return null;
  const parts = splitSipUri(uri)!;
  const asked = uriParam(uri, 'transport')?.toLowerCase() ?? 'udp';
  const transport = scheme === 'sips:' ? 'tls' : asked;
  if (transport !== 'udp' && transport !== 'tcp' && transport !== 'tls') return null;
  if (parts.portText === '') return { host: parts.host, port: transport === 'tls' ? 5061 : 5060, transport };
  const port = /^\d{1,5}$/.test(parts.portText) ? Number(parts.portText) : 0;
  if (port < 1 || port > 65535) throw new SipParseError('bad URI port');
  return { host: parts.host, port, transport };
}

function splitSipUri(uri: string): { user: string; host: string; portText: string } | null {
  const colon = uri.indexOf(':');
  if (colon <= 0) throw new SipParseError('not a URI');
  const scheme = uri.slice(0, colon).toLowerCase();
  if (scheme !== 'sip' && scheme !== 'sips') return null;
  const rest = uri.slice(colon + 1);
  // The user part may hold ';' (`+1555;npdi`) but never a bare '@'; '?' starts URI headers.
  const question = rest.indexOf('?');
  const at = (question < 0 ? rest : rest.slice(0, question)).indexOf('@');
  const userinfo = at < 0 ? '' : rest.slice(0, at);
  const hostport = at < 0 ? rest : rest.slice(at + 1);
  const passwordAt = userinfo.indexOf(':');
  const user = passwordAt < 0 ? userinfo : userinfo.slice(0, passwordAt);
  let host: string;
  let afterHost: number;
  if (hostport.startsWith('[')) {
    const close = hostport.indexOf(']');
    if (close < 0) throw new SipParseError('unclosed [ in a URI host');
    host = hostport.slice(1, close);
    afterHost = close + 1;
  } else {
    afterHost = endOfHost(hostport);
    host = hostport.slice(0, afterHost);
  }
  if (host === '') throw new SipParseError('URI without a host');
  const portText = hostport[afterHost] === ':' ? hostport.slice(afterHost + 1, afterHost + 1 + endOfHost(hostport.slice(afterHost + 1))) : '';
  return { user, host: host.toLowerCase(), portText };
}

/** A URI parameter (`;transport=tcp`): after the host, before any `?headers`. */
function uriParam(uri: string, name: string): string | undefined {
  const question = uri.indexOf('?');
  const end = question < 0 ? uri.length : question;
  // The user part may hold ';' too (`+1555;npdi`): the parameters follow the last '@'.
  const params = uri.slice(uri.lastIndexOf('@', end - 1) + 1, end).split(';');
  for (let i = 1; i < params.length; i++) {
    const eq = params[i]!.indexOf('=');
    if (eq > 0 && isLowercaseOf(params[i]!.slice(0, eq).trim(), name)) return params[i]!.slice(eq + 1).trim();
  }
  return undefined;
}

/** Where a host ends: at the first ':', ';' or '?', else the end of `text`. */
function endOfHost(text: string): number {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 58 || c === 59 || c === 63) return i;
  }
  return text.length;
}
