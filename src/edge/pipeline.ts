// What the edge does with one message (a datagram, or one cut from a stream by framer.ts), as a
// function of the bytes, their source, the transport they came on and the current rules: relay
// it, answer it, or drop it. No sockets and no clock here; server.ts and streams.ts do the I/O.
// Rules are asked on every packet and nothing is cached, so a rule change applies to the next one.
import { hash } from 'node:crypto';
import { isIP } from 'node:net';
import type { DecisionReader, RealmDecision } from '../services/decision-types.ts';
import { formatHostPort, type Endpoint, type StreamTransport, type Transport } from './endpoint.ts';
import {
  firstControl,
  header,
  MAX_MESSAGE_BYTES,
  parseMessage,
  serializeMessage,
  SipParseError,
  type SipHeader,
  type SipRequest,
  type SipResponse,
} from './message.ts';
import { routeRequest, type EgressContext } from './egress.ts';
import { EDGE_TAG_PREFIX, replyTo, type RejectPolicy } from './reply.ts';
import { fingerprint, FINGERPRINT_LENGTH } from './fingerprint.ts';
import { addressParam, addressUri, sipUriParts } from './uri.ts';
import { parseVia, formatVia, responseTarget, stampReceived, viaParam, viaTransport, type Via } from './via.ts';

export interface EdgeContext {
  rules: DecisionReader;
  /** The edge's own address as written in its Vias on UDP; responses come back to it. */
  self: Endpoint;
  /** Its stream listeners' addresses, written in the Vias of requests it sends over TCP or TLS. */
  streams?: Partial<Record<StreamTransport, Endpoint>>;
  /** Where requests go; its address and port are the only source responses are taken from. */
  upstream: Endpoint;
  reject: RejectPolicy;
  /**
   * Keys the MAC in the edge's branch: a response is relayed only to the hop the branch was
   * made for, so a forged response cannot steer traffic at a third party. Random per process
   * unless shared (every process that may receive the responses must hold the same key).
   */
  branchKey: string;
  /** The dedicated IPs outbound calls leave from (api.md §7.1); absent: no outbound routing. */
  egress?: EgressContext;
}

/** A list reason (`not_matched`, `user_agent_mismatch` ...), `unknown_realm`, `too_many_hops`, `loop_detected` or `overload`. */
export type RejectReason = string;
export type DropReason =
  | 'keepalive'
  /** server.ts: a new call's INVITE that waited in the receive queue past its sender's first retransmission. */
  | 'stale'
  | 'loop_detected'
  | 'ack_absorbed'
  | 'too_many_hops'
  | 'not_from_upstream'
  | 'not_our_via'
  | 'bad_branch_mac'
  | 'no_next_via'
  | 'unroutable'
  /** server.ts: an outbound Request-URI's host did not resolve. */
  | 'unresolvable'
  /** server.ts: a response's connection (a stream hop's) is closed. */
  | 'no_connection'
  /** server.ts: a connection to send a request on could not be opened (the connection limit). */
  | 'connection_limit'
  /** server.ts: the dedicated IP chosen left this host before the send. */
  | 'no_socket'
  /** A bug in the edge, caught by server.ts. */
  | 'internal_error';

export type Outcome =
  /**
   * `to` is an address, except an outbound request's, which may name a host for server.ts to
   * resolve. `from`: the dedicated IP whose socket sends it; absent: the main socket. `transport`:
   * the hop's; a response's on a stream goes on the connection its request came in on.
   */
  | { action: 'forward'; direction: 'request' | 'response' | 'outbound'; to: Endpoint; from?: string; transport: Transport; bytes: Buffer }
  /** `reply` is absent when the reject policy is to drop silently; it goes back the way the request came. */
  | { action: 'reject'; reason: RejectReason; reply?: { to: Endpoint; bytes: Buffer } }
  | { action: 'drop'; reason: DropReason }
  | { action: 'malformed'; detail: string };

/** Headers only the edge may set: whatever a sender put in is removed from every request. */
const EDGE_HEADERS = new Set(['x-account-id', 'x-trunk-id', 'x-device-id', 'x-dedicated-ip']);
const BRANCH_PREFIX = 'z9hG4bK-iw-';
const RFC3261_COOKIE = 'z9hG4bK';
/** The branch after its prefix: the request's identity (a fingerprint), then the MAC binding it to the next hop. */
const BRANCH_ID_LENGTH = FINGERPRINT_LENGTH;
const BRANCH_MAC_LENGTH = 16;
/** A request arriving with more hops left is forwarded with this many (a forged 255 cannot make loops last). */
const MAX_FORWARDS_CAP = 70;

/** Seconds a caller is asked to wait in a 503 sent because the edge is overloaded (RFC 3261 §21.5.4). */
export const OVERLOAD_RETRY_AFTER = 2;

/**
 * `shedNewCalls`: the edge is behind (its receive queue has stayed non-empty too long), so a new
 * call (an INVITE outside a dialog) that would be forwarded is answered 503 instead; everything
 * else, in-dialog requests, ACKs, CANCELs and responses, flows on so calls already set up end well.
 * `dedicatedIp`: the dedicated IP whose socket received the packet (or whose connection, for a
 * stream the edge opened from it); absent: the main socket. `transport`: what the packet came on;
 * a request from a stream goes upstream over TCP, one from UDP over UDP.
 */
export function handlePacket(ctx: EdgeContext, bytes: Buffer, source: Endpoint, shedNewCalls = false, dedicatedIp?: string, transport: Transport = 'udp'): Outcome {
  // A stream's messages are read whole: there the parse also checks the framer's cut.
  if (transport === 'udp' && isOwnAck(bytes)) return { action: 'drop', reason: 'ack_absorbed' };
  try {
    const message = parseMessage(bytes, transport !== 'udp');
    if (message === null) return { action: 'drop', reason: 'keepalive' };
    return message.type === 'request'
      ? handleRequest(ctx, message, source, shedNewCalls, dedicatedIp, transport)
      : relayResponse(ctx, message, source, dedicatedIp, transport);
  } catch (error) {
    if (error instanceof SipParseError) return { action: 'malformed', detail: error.message };
    throw error;
  }
}

/** The first To line of a head, and whether the next line continues it. */
const TO_LINE = /\r\n(?:to|t)[ \t]*:([^\r\n]*)\r\n([ \t])?/i;
const ACK_START = Buffer.from('ACK ', 'latin1');
const INVITE_START = Buffer.from('INVITE ', 'latin1');

/**
 * The ACK to a response the edge gave itself (its To carries the edge's tag) is only ever
 * absorbed, whatever else it holds: it is told by its start and its To line alone, as cheaply as
 * a rejected call's ACK can be, instead of costing half as much again as its INVITE. Anything
 * else (a To line continued on the next, no such tag) goes through the whole parse, which
 * absorbs the same ACKs (handleRequest).
 */
function isOwnAck(bytes: Buffer): boolean {
  const to = startsWith(bytes, ACK_START) ? quickTo(bytes) : undefined;
  return to !== undefined && addressParam(to, 'tag')?.startsWith(EDGE_TAG_PREFIX) === true;
}

/** An INVITE that starts a call (no To tag), told as cheaply as isOwnAck tells its ACK; false when that cannot be told so. */
export function isNewCall(bytes: Buffer): boolean {
  const to = startsWith(bytes, INVITE_START) ? quickTo(bytes) : undefined;
  return to !== undefined && addressParam(to, 'tag') === undefined;
}

/** SIP methods are case-sensitive. */
function startsWith(bytes: Buffer, prefix: Buffer): boolean {
  if (bytes.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (bytes[i] !== prefix[i]) return false;
  return true;
}

/** The value of the first To line, unless there is none, the next line continues it, or the head holds what the parse refuses. */
function quickTo(bytes: Buffer): string | undefined {
  // Larger datagrams, and heads with a control byte in them, are malformed whatever they are
  // (issue 20): the parse says so.
  if (bytes.length > MAX_MESSAGE_BYTES) return undefined;
  const headEnd = bytes.indexOf('\r\n\r\n', 0, 'latin1');
  if (headEnd < 0 || firstControl(bytes, 0, headEnd) >= 0) return undefined;
  const to = TO_LINE.exec(bytes.toString('latin1', 0, headEnd + 2));
  return to === null || to[2] !== undefined ? undefined : to[1];
}

function handleRequest(ctx: EdgeContext, request: SipRequest, source: Endpoint, shedNewCalls: boolean, dedicatedIp: string | undefined, arrival: Transport): Outcome {
  requireHeaders(request, ['from', 'to', 'call-id', 'cseq']);
  const senderVia = stampSenderVia(request, source, arrival);
  const isAck = request.method === 'ACK';
  // The ACK to our own 603 ends a transaction that lives nowhere else (api.md §7): absorb it.
  if (isAck && addressParam(header(request.headers, 'to')!, 'tag')?.startsWith(EDGE_TAG_PREFIX)) {
    return { action: 'drop', reason: 'ack_absorbed' };
  }
  if (ctx.egress !== undefined) {
    const route = routeRequest(ctx.egress, request, source, ctx.upstream, edgeAddresses(ctx), dedicatedIp);
    if (route.kind === 'refused') {
      return isAck ? { action: 'reject', reason: 'dedicated_ip_not_assigned' } : answer(request, senderVia, 'dedicated_ip_not_assigned', 403, 'Dedicated IP Not Assigned');
    }
    if (route.kind === 'unroutable') return { action: 'drop', reason: 'unroutable' };
    if (route.kind === 'outbound') {
      return relayRequest({ ctx, request, senderVia, arrival, shedNewCalls, direction: 'outbound', to: route.to, socket: route.from, transport: route.transport, extra: [] });
    }
  }
  const admission = admit(ctx.rules, request, source.host);
  if (!admission.allow) {
    // An ACK is never answered, whatever the verdict.
    return isAck ? { action: 'drop', reason: 'ack_absorbed' } : reject(ctx, request, senderVia, admission.reason);
  }
  // api.md §7.1: a carrier calling a dedicated IP reaches the platform through it, saying which.
  const extra = dedicatedIp === undefined ? admission.headers : [...admission.headers, ['X-Dedicated-IP', dedicatedIp] as [string, string]];
  // The Request-URI is left alone even when it names the edge: everything goes upstream (api.md §7).
  const transport = arrival === 'udp' ? 'udp' : 'tcp';
  return relayRequest({ ctx, request, senderVia, arrival, shedNewCalls, direction: 'request', to: ctx.upstream, socket: dedicatedIp, transport, extra });
}

/** The address the edge's Via names for a hop on `transport` from the main sockets or a dedicated IP. */
export function localAddress(ctx: EdgeContext, dedicatedIp: string | undefined, transport: Transport): Endpoint {
  if (dedicatedIp !== undefined) return { host: dedicatedIp, port: ctx.egress!.port };
  if (transport === 'udp' || ctx.streams === undefined) return ctx.self;
  return ctx.streams[transport] ?? ctx.streams.tcp ?? ctx.streams.tls ?? ctx.self;
}

/** The main sockets' addresses. */
function edgeAddresses(ctx: EdgeContext): Endpoint[] {
  return ctx.streams === undefined ? [ctx.self] : [ctx.self, ...Object.values(ctx.streams)];
}

function fromSocket(dedicatedIp: string | undefined): { from?: string } {
  return dedicatedIp === undefined ? {} : { from: dedicatedIp };
}

interface Relay {
  ctx: EdgeContext;
  request: SipRequest;
  senderVia: Via;
  /** The transport the request came on: the hop its responses go back over. */
  arrival: Transport;
  shedNewCalls: boolean;
  direction: 'request' | 'outbound';
  to: Endpoint;
  /** The dedicated IP whose socket sends it; undefined: the main socket. */
  socket: string | undefined;
  /** The transport it is sent on. */
  transport: Transport;
  /** Headers the edge adds. */
  extra: ReadonlyArray<[string, string]>;
}

/**
 * The request sent on: the edge's Via (naming the socket it leaves from) on top, Max-Forwards
 * counted down, the edge's own headers replaced by `extra`; or the answer when it has run out of
 * hops, looped, or would start a call while the edge is behind.
 */
function relayRequest({ ctx, request, senderVia, arrival, shedNewCalls, direction, to, socket, transport, extra }: Relay): Outcome {
  const isAck = request.method === 'ACK';
  const hops = maxForwards(request);
  if (hops === 0) {
    // §16.3 step 3.
    return isAck ? { action: 'drop', reason: 'too_many_hops' } : answer(request, senderVia, 'too_many_hops', 483, 'Too Many Hops');
  }
  // §16.3 step 4: the request has been through this edge already.
  if (carriesOwnVia(ctx, request)) {
    return isAck ? { action: 'drop', reason: 'loop_detected' } : answer(request, senderVia, 'loop_detected', 482, 'Loop Detected');
  }
  if (shedNewCalls && request.method === 'INVITE' && addressParam(header(request.headers, 'to')!, 'tag') === undefined) {
    return answer(request, senderVia, 'overload', 503, 'Service Unavailable', [['Retry-After', String(OVERLOAD_RETRY_AFTER)]]);
  }
  const branch = proxyBranch(ctx.branchKey, senderVia, arrival, request);
  const via = `SIP/2.0/${VIA_TRANSPORT[transport]} ${formatHostPort(localAddress(ctx, socket, transport))};branch=${branch}`;
  const forwarded: SipHeader[] = [{ name: 'Via', key: 'via', value: via }];
  // §16.6 step 3: decrement Max-Forwards (capped), or add one when the sender sent none.
  const decremented = hops === undefined ? undefined : String(Math.min(hops - 1, MAX_FORWARDS_CAP));
  for (const h of request.headers) {
    if (EDGE_HEADERS.has(h.key)) continue;
    forwarded.push(h.key === 'max-forwards' && decremented ? { ...h, value: decremented } : h);
  }
  if (decremented === undefined) forwarded.push({ name: 'Max-Forwards', key: 'max-forwards', value: String(MAX_FORWARDS_CAP) });
  for (const [name, value] of extra) forwarded.push({ name, key: name.toLowerCase(), value });
  return { action: 'forward', direction, to, ...fromSocket(socket), transport, bytes: serializeMessage({ ...request, headers: forwarded }) };
}

function requireHeaders(request: SipRequest, keys: string[]): void {
  for (const key of keys) {
    if (header(request.headers, key) === undefined) throw new SipParseError(`no ${key} header`);
  }
}

/**
 * Records `received` / `rport` on the sender's Via (in the request itself) and returns it parsed;
 * from a stream always both, which name its connection.
 */
function stampSenderVia(request: SipRequest, source: Endpoint, arrival: Transport): Via {
  const top = request.headers.find((h) => h.key === 'via');
  if (top === undefined) throw new SipParseError('no Via header');
  const via = parseVia(top.value);
  if (stampReceived(via, source, arrival !== 'udp')) top.value = formatVia(via);
  return via;
}

/**
 * isIP, asked only of hosts that can be addresses: an IPv4 ends in a digit, an IPv6 has a colon,
 * and a domain name's last label is alphabetic (isIP's regexes cost more than the rest of admit).
 */
function isAddress(host: string): boolean {
  const last = host.charCodeAt(host.length - 1);
  return (host.includes(':') || (last >= 48 && last <= 57)) && isIP(host) !== 0;
}

type Admission = { allow: true; headers: Array<[string, string]> } | { allow: false; reason: RejectReason };

/** Issue 9: a trunk's source address first, else the From realm's account and device lists. */
function admit(rules: DecisionReader, request: SipRequest, ip: string): Admission {
  const trunk = rules.trunkEntryFor(ip);
  if (trunk !== null) {
    return { allow: true, headers: [['X-Account-ID', trunk.accountId], ['X-Trunk-ID', trunk.trunkId]] };
  }
  const from = sipUriParts(addressUri(header(request.headers, 'from')!));
  // api.md §7: the realm of a From whose host is an IP is the To host.
  const realm = isAddress(from.host) ? sipUriParts(addressUri(header(request.headers, 'to')!)).host : from.host;
  const userAgent = header(request.headers, 'user-agent') ?? '';
  const decision = rules.decideByRealm(ip, realm, from.user, userAgent);
  if (decision.decision === 'deny') return { allow: false, reason: denialReason(decision) };
  const headers: Array<[string, string]> = [];
  if (decision.accountId !== undefined) headers.push(['X-Account-ID', decision.accountId]);
  if (decision.deviceId !== undefined) headers.push(['X-Device-ID', decision.deviceId]);
  return { allow: true, headers };
}

/** The reason of the list that said no (the device's before the account's). */
function denialReason(decision: RealmDecision): RejectReason {
  if (decision.reason === 'unknown_realm') return 'unknown_realm';
  if (decision.device?.decision === 'deny') return decision.device.reason;
  return decision.account?.reason ?? 'denied';
}

function reject(ctx: EdgeContext, request: SipRequest, senderVia: Via, reason: RejectReason): Outcome {
  if (ctx.reject.mode === 'drop') return { action: 'reject', reason };
  return answer(request, senderVia, reason, ctx.reject.code, ctx.reject.reason);
}

/** A stateless response, sent where the sender's Via (`senderVia`, stamped) says. */
function answer(request: SipRequest, senderVia: Via, reason: RejectReason, status: number, text: string, extra: Array<[string, string]> = []): Outcome {
  const response = replyTo(request, status, text);
  for (const [name, value] of extra) response.headers.splice(-1, 0, { name, key: name.toLowerCase(), value });
  const to = responseTarget(senderVia);
  return { action: 'reject', reason, reply: { to, bytes: serializeMessage(response) } };
}

/** The Max-Forwards value, or undefined when absent. */
function maxForwards(request: SipRequest): number | undefined {
  const value = header(request.headers, 'max-forwards');
  if (value === undefined) return undefined;
  if (!/^\d{1,3}$/.test(value)) throw new SipParseError('bad Max-Forwards');
  return Number(value);
}

/** Whether a Via below the top is one this edge wrote: its host, and a branch whose MAC holds for the Via under it. */
function carriesOwnVia(ctx: EdgeContext, request: SipRequest): boolean {
  const vias = request.headers.filter((h) => h.key === 'via');
  for (let i = 1; i < vias.length - 1; i++) {
    if (!vias[i]!.value.includes(BRANCH_PREFIX)) continue;
    const via = parseVia(vias[i]!.value);
    if (isEdgeHost(ctx, via.host) && branchMatches(ctx.branchKey, viaParam(via, 'branch')!, hopOf(parseVia(vias[i + 1]!.value)))) return true;
  }
  return false;
}

/** How the edge's Via names each transport (RFC 3261 §20.42). */
const VIA_TRANSPORT: Record<Transport, string> = { udp: 'UDP', tcp: 'TCP', tls: 'TLS' };

/**
 * The hop a response for `via` goes back to, as the branch MAC binds it: over UDP its address;
 * over a stream the transport too, so a response cannot be steered from one onto another.
 */
function hopOf(via: Via, transport = viaTransport(via)): string {
  const to = formatHostPort(responseTarget(via));
  return transport === 'udp' ? to : `${transport}:${to}`;
}

/**
 * §16.11: a stateless proxy's branch is a function of the request, so a retransmission gets the
 * same branch and the CANCEL / non-2xx ACK of an INVITE get the INVITE's (they share its top Via).
 * From an RFC 3261 branch alone; for older clients from what their CANCEL and ACK keep the same.
 * Its fingerprint is the id, and a MAC over the id and the hop the response must go back to
 * follows it. Two requests whose ids collide get branches of their own unless they came from one
 * hop, so a sender can only ever confuse its own transactions.
 */
function proxyBranch(key: string, senderVia: Via, arrival: Transport, request: SipRequest): string {
  const branch = viaParam(senderVia, 'branch') ?? '';
  const sentBy = `${senderVia.host}:${senderVia.port ?? 5060}`;
  const identity = branch.startsWith(RFC3261_COOKIE)
    ? `${sentBy}|${branch}`
    : [
        sentBy,
        request.uri,
        header(request.headers, 'call-id'),
        addressParam(header(request.headers, 'from')!, 'tag'),
        header(request.headers, 'cseq')!.split(' ')[0],
      ].join('|');
  const id = fingerprint(identity);
  // The transport the request came on, not the one its Via claims: a response goes back over it.
  return BRANCH_PREFIX + id + branchMac(key, id, hopOf(senderVia, arrival));
}

/**
 * SHA-256 over the key and the data, cut to 96 bits: with the key first and most of the digest
 * withheld, no length extension applies, and a one-shot hash costs far less than createHmac
 * (docs/performance.md, "Figures behind the code").
 */
function branchMac(key: string, id: string, nextHop: string): string {
  return hash('sha256', `${key}|${id}|${nextHop}`, 'base64url').slice(0, BRANCH_MAC_LENGTH);
}

/**
 * A response to a request the edge relayed: pop the edge's own Via (naming the socket it came in
 * on) and send it to the next one, from that socket, over the transport that Via names.
 */
function relayResponse(ctx: EdgeContext, response: SipResponse, source: Endpoint, dedicatedIp: string | undefined, arrival: Transport): Outcome {
  const first = response.headers.findIndex((h) => h.key === 'via');
  if (first < 0) throw new SipParseError('no Via header');
  const headers = response.headers.filter((_, i) => i !== first);
  const next = header(headers, 'via');
  const nextVia = next === undefined ? undefined : parseVia(next);
  const to = nextVia === undefined ? undefined : responseTarget(nextVia);
  // Responses come from upstream or, to an outbound request (api.md §7.1), from the carrier on
  // their way back to the platform; anyone else could use the edge as a reflector. The branch MAC
  // below holds either to the hop its request came from. On a stream the source is a connection's
  // far end, which cannot be forged: only the connection the edge opened to the upstream has it.
  const fromUpstream = source.host === ctx.upstream.host && source.port === ctx.upstream.port;
  const toPlatform = ctx.egress !== undefined && to?.host === ctx.upstream.host;
  if (!fromUpstream && !toPlatform) return { action: 'drop', reason: 'not_from_upstream' };
  const ours = parseVia(response.headers[first]!.value);
  if (!looksLikeOwnVia(localAddress(ctx, dedicatedIp, arrival).host, ours)) return { action: 'drop', reason: 'not_our_via' };
  if (to === undefined || nextVia === undefined) return { action: 'drop', reason: 'no_next_via' };
  const transport = viaTransport(nextVia);
  if (!branchMatches(ctx.branchKey, viaParam(ours, 'branch')!, hopOf(nextVia, transport))) return { action: 'drop', reason: 'bad_branch_mac' };
  // Never resolve names on this path; the sender's Via was stamped with its address on the way in.
  if (isIP(to.host) === 0 || !isTransport(transport)) return { action: 'drop', reason: 'unroutable' };
  return { action: 'forward', direction: 'response', to, ...fromSocket(dedicatedIp), transport, bytes: serializeMessage({ ...response, headers }) };
}

function isTransport(name: string): name is Transport {
  return name === 'udp' || name === 'tcp' || name === 'tls';
}

/** The branch was made by an edge holding `key` for a request whose response goes to `nextHop` (hopOf). */
function branchMatches(key: string, branch: string, nextHop: string): boolean {
  if (branch.length !== BRANCH_PREFIX.length + BRANCH_ID_LENGTH + BRANCH_MAC_LENGTH) return false;
  const idEnd = BRANCH_PREFIX.length + BRANCH_ID_LENGTH;
  const expected = branchMac(key, branch.slice(BRANCH_PREFIX.length, idEnd), nextHop);
  // Compared in constant time: how long a refusal takes says nothing about the MAC.
  let difference = 0;
  for (let i = 0; i < BRANCH_MAC_LENGTH; i++) difference |= branch.charCodeAt(idEnd + i) ^ expected.charCodeAt(i);
  return difference === 0;
}

/**
 * `host` (an address of the edge's) and the edge's branch prefix, whatever the port: each SIP
 * worker writes its own port, and a UAS may answer the port the call began on (sipp does); the
 * branch MAC says the rest.
 */
function looksLikeOwnVia(host: string, via: Via): boolean {
  return via.host === host && (viaParam(via, 'branch') ?? '').startsWith(BRANCH_PREFIX);
}

/** A main socket's address or a dedicated IP the edge holds (api.md §7.1). */
function isEdgeHost(ctx: EdgeContext, host: string): boolean {
  return host === ctx.self.host || ctx.streams?.tcp?.host === host || ctx.streams?.tls?.host === host || ctx.egress?.holds(host) === true;
}
