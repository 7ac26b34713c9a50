// The responses the edge answers itself, statelessly (RFC 3261 §8.2.6, §16.3): a rejection
// (603 Rejected by ACL by default, api.md §7) and 483 Too Many Hops.
import { header, type SipHeader, type SipRequest, type SipResponse } from './message.ts';
import { addressParam } from './uri.ts';
import { fingerprint } from './fingerprint.ts';

export type RejectPolicy = { mode: 'respond'; code: number; reason: string } | { mode: 'drop' };

export const DEFAULT_REJECT = { mode: 'respond', code: 603, reason: 'Rejected by ACL' } as const satisfies RejectPolicy;

/**
 * `--sip-reject respond|drop`, `--sip-reject-code`, `--sip-reject-reason` (api.md §7), each
 * optional; throws a message naming the flag at fault.
 */
export function parseSipReject(mode?: string, code?: string | number, reason?: string): RejectPolicy {
  if (mode === 'drop') return { mode: 'drop' };
  if (mode !== undefined && mode !== 'respond') {
    throw new Error(`--sip-reject must be respond or drop, got "${mode}"`);
  }
  const status = code === undefined ? DEFAULT_REJECT.code : Number(code);
  if (!Number.isInteger(status) || status < 400 || status > 699) {
    throw new Error(`--sip-reject-code must be a SIP final failure code 400-699, got "${code}"`);
  }
  const text = reason ?? (status === DEFAULT_REJECT.code ? DEFAULT_REJECT.reason : 'Forbidden');
  if (text === '' || /[\r\n]/.test(text)) {
    throw new Error('--sip-reject-reason must be one non-empty line');
  }
  return { mode: 'respond', code: status, reason: text };
}

/** The To tag the edge puts on its own responses, so the ACK that follows can be told apart. */
export const EDGE_TAG_PREFIX = 'iwr-';

const NO_BODY = Buffer.alloc(0);

/** A response to `request` from the edge itself; the request's Vias already carry `received`. */
export function replyTo(request: SipRequest, status: number, reason: string): SipResponse {
  const copied: SipHeader[] = [];
  for (const h of request.headers) {
    if (h.key === 'via' || h.key === 'from' || h.key === 'call-id' || h.key === 'cseq') copied.push(h);
    else if (h.key === 'to') copied.push({ ...h, value: withTag(h.value, request) });
  }
  copied.push({ name: 'Content-Length', key: 'content-length', value: '0' });
  return { type: 'response', status, reason, headers: copied, body: NO_BODY };
}

function withTag(to: string, request: SipRequest): string {
  if (addressParam(to, 'tag') !== undefined) return to;
  // Deterministic, so a retransmitted request gets the very same response (RFC 3261 §8.2.6.2:
  // a stateless UAS makes its tag from the request), as Kamailio's sl makes its own from a CRC.
  return `${to};tag=${EDGE_TAG_PREFIX}${fingerprint(`${header(request.headers, 'via')}|${header(request.headers, 'call-id')}`)}`;
}
