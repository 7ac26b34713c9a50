// The edge's own work per packet, without sockets: handlePacket on the three messages a call
// brings most (an INVITE relayed upstream, a response relayed back, an INVITE answered 603), over
// the bench's rule set. What the ladder adds on top is the kernel's UDP send and receive.
import { randomBytes } from 'node:crypto';
import { handlePacket, type EdgeContext } from '../../src/edge/pipeline.ts';
import { DEFAULT_REJECT } from '../../src/edge/reply.ts';
import type { DecisionReader } from '../../src/services/decision-types.ts';
import type { Endpoint } from '../../src/edge/endpoint.ts';

const ROUNDS = 5;
const PACKETS = 50_000;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function invite(from: Endpoint, edge: Endpoint, realm: string): Buffer {
  const head = [
    `INVITE sip:service@${edge.host}:${edge.port} SIP/2.0`,
    `Via: SIP/2.0/UDP ${from.host}:${from.port};branch=z9hG4bK-1234-1-0`,
    `From: sipp <sip:sipp@${realm}:${from.port}>;tag=1234SIPpTag001`,
    `To: service <sip:service@${realm}:${edge.port}>`,
    `Call-ID: 1-1234@${from.host}`,
    'CSeq: 1 INVITE',
    `Contact: sip:sipp@${from.host}:${from.port}`,
    'Max-Forwards: 70',
    'Subject: Performance Test',
    'User-Agent: sipp',
    'Content-Length: 0',
  ];
  return Buffer.from(`${head.join('\r\n')}\r\n\r\n`, 'latin1');
}

/**
 * The UAS's answer to `relayed` (the INVITE as the edge sent it on): its Vias copied into one
 * folded line, as sipp's `[last_Via:]` writes them, so this is the response the ladder relays.
 */
function ok(relayed: Buffer, from: Endpoint, edge: Endpoint, uas: Endpoint, realm: string): Buffer {
  const vias = relayed.toString('latin1').split('\r\n').filter((line) => line.startsWith('Via: ')).map((line) => line.slice('Via: '.length));
  const head = [
    'SIP/2.0 200 OK',
    `Via: ${vias.join(', ')}`,
    `From: sipp <sip:sipp@${realm}:${from.port}>;tag=1234SIPpTag001`,
    `To: service <sip:service@${realm}:${edge.port}>;tag=5678SIPpTag011`,
    `Call-ID: 1-1234@${from.host}`,
    'CSeq: 1 INVITE',
    `Contact: <sip:${uas.host}:${uas.port};transport=UDP>`,
    'Content-Length: 0',
  ];
  return Buffer.from(`${head.join('\r\n')}\r\n\r\n`, 'latin1');
}

/** Prints µs per packet (medians of ROUNDS) for each kind; throws if a packet is not handled as meant. */
export function measurePipeline(rules: DecisionReader, setup: { allowed: Endpoint; denied: Endpoint; uas: Endpoint; realm: string }): void {
  const edge = { host: '127.77.0.20', port: 5070 };
  // As in production, the edge also asks whether each request is the platform's outbound (api.md §7.1).
  const egress = { pool: { assigneeOf: () => null, heldFor: () => [] }, port: 5062, holds: () => false };
  const ctx: EdgeContext = { rules, self: edge, upstream: setup.uas, reject: DEFAULT_REJECT, branchKey: randomBytes(32).toString('base64url'), egress };
  const relayed = handlePacket(ctx, invite(setup.allowed, edge, setup.realm), setup.allowed);
  if (relayed.action !== 'forward') throw new Error(`INVITE relayed: ${JSON.stringify(relayed)}`);
  const cases: { name: string; bytes: Buffer; source: Endpoint; action: string }[] = [
    { name: 'INVITE relayed', bytes: invite(setup.allowed, edge, setup.realm), source: setup.allowed, action: 'forward' },
    { name: '200 relayed', bytes: ok(relayed.bytes, setup.allowed, edge, setup.uas, setup.realm), source: setup.uas, action: 'forward' },
    { name: 'INVITE → 603', bytes: invite(setup.denied, edge, setup.realm), source: setup.denied, action: 'reject' },
  ];
  const times = cases.map(() => [] as number[]);
  for (const c of cases) {
    const outcome = handlePacket(ctx, c.bytes, c.source);
    if (outcome.action !== c.action) throw new Error(`${c.name}: ${JSON.stringify(outcome)}`);
  }
  for (let round = 0; round < ROUNDS; round++) {
    cases.forEach((c, k) => {
      const started = performance.now();
      for (let i = 0; i < PACKETS; i++) handlePacket(ctx, c.bytes, c.source);
      times[k]!.push(((performance.now() - started) * 1000) / PACKETS);
    });
  }
  console.log(`  the edge's own work (handlePacket, no sockets), µs a packet: ${cases.map((c, k) => `${c.name} ${median(times[k]!).toFixed(1)}`).join(', ')}`);
}
