// A carrier for the egress tests (api.md §7.1): a UDP UAS that records the source of every
// packet it receives and answers INVITE, BYE and CANCEL with 200 to the top Via, as a carrier
// does, so the responses go back to whichever edge address the request came from.
import { createSocket } from 'node:dgram';
import type { Endpoint } from '../../src/edge/endpoint.ts';
import { header, parseMessage, serializeMessage, type SipHeader, type SipRequest } from '../../src/edge/message.ts';
import { parseVia, responseTarget } from '../../src/edge/via.ts';

export interface CarrierPacket {
  source: Endpoint;
  request: SipRequest;
}

export interface Carrier {
  address: Endpoint;
  packets: CarrierPacket[];
  close(): Promise<void>;
}

export async function startCarrier(host: string): Promise<Carrier> {
  const socket = createSocket('udp4');
  await new Promise<void>((done) => socket.bind(0, host, () => done()));
  const address = { host, port: socket.address().port };
  const packets: CarrierPacket[] = [];
  socket.on('message', (bytes, rinfo) => {
    const message = parseMessage(bytes);
    if (message === null || message.type !== 'request') return;
    packets.push({ source: { host: rinfo.address, port: rinfo.port }, request: message });
    if (message.method === 'ACK') return;
    const copied: SipHeader[] = message.headers.filter((h) => ['via', 'from', 'call-id', 'cseq'].includes(h.key));
    const to = header(message.headers, 'to')!;
    copied.push({ name: 'To', key: 'to', value: to.includes(';tag=') ? to : `${to};tag=carrier` });
    copied.push({ name: 'Contact', key: 'contact', value: `<sip:carrier@${address.host}:${address.port}>` });
    copied.push({ name: 'Content-Length', key: 'content-length', value: '0' });
    const target = responseTarget(parseVia(header(message.headers, 'via')!));
    socket.send(serializeMessage({ type: 'response', status: 200, reason: 'OK', headers: copied, body: Buffer.alloc(0) }), target.port, target.host);
  });
  return { address, packets, close: () => new Promise((done) => socket.close(() => done())) };
}
