// Kamailio 5.6 as the bench's baseline (api.md §8): its permissions module with an address file
// holding the same addresses, 603 to everyone else, stateless forward to the same UAS, over UDP
// or TCP. The config is written into a temporary directory at bench time.
import { spawn, spawnSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { connect } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Endpoint } from '../../src/edge/endpoint.ts';
import { RECV_BUFFER_BYTES } from '../../src/edge/server.ts';

const MODULES = '/usr/lib/x86_64-linux-gnu/kamailio/modules/';

/** Why Kamailio cannot run here, or null. */
export function kamailioMissing(): string | null {
  const probe = spawnSync('kamailio', ['-v'], { encoding: 'utf8' });
  if (probe.error) return `kamailio is not installed (apt-get install kamailio): ${probe.error.message}`;
  if (!/kamailio 5\.6/.test(probe.stdout)) return `Kamailio 5.6 is wanted, found: ${probe.stdout.split('\n')[0]}`;
  return null;
}

export interface RunningKamailio {
  address: Endpoint;
  /** Kamailio's main process (its workers are its children). */
  pid: number;
  stop(): Promise<void>;
}

export async function startKamailio(opts: {
  dir: string;
  listen: Endpoint;
  upstream: Endpoint;
  addresses: readonly string[];
  children: number;
  /** Over TCP its TCP workers (`children` of them) read the connections and forward on one of their own. */
  transport: 'udp' | 'tcp';
}): Promise<RunningKamailio> {
  const addressFile = join(opts.dir, 'address.list');
  writeFileSync(addressFile, opts.addresses.map((ip) => `1 ${ip} 32\n`).join(''));
  const config = join(opts.dir, 'kamailio.cfg');
  // maxbuffer: the receive buffer the edge takes. Kamailio's own default (256 kB, 512 kB once the
  // kernel doubles it) dropped datagrams at 10,000 answered calls/s, and sipp gave up on the calls
  // they belonged to: a rung lost to the buffer, not to Kamailio's CPU (docs/performance.md).
  writeFileSync(
    config,
    `#!KAMAILIO
debug=-1
log_stderror=yes
maxbuffer=${RECV_BUFFER_BYTES}
children=${opts.children}
${opts.transport === 'tcp' ? `tcp_children=${opts.children}
` : ''}listen=${opts.transport}:${opts.listen.host}:${opts.listen.port}
mpath="${MODULES}"
loadmodule "sl.so"
loadmodule "maxfwd.so"
loadmodule "permissions.so"
modparam("permissions", "address_file", "${addressFile}")

request_route {
  if (!mf_process_maxfwd_header("10")) { sl_send_reply("483", "Too Many Hops"); exit; }
  if (!allow_source_address("1")) {
    # sl absorbs the ACK to its own 603; never answer any other ACK.
    if (method == "ACK") exit;
    sl_send_reply("603", "Rejected by ACL");
    exit;
  }
  ${opts.transport === 'tcp' ? 'forward_tcp' : 'forward'}("${opts.upstream.host}", ${opts.upstream.port});
}
`,
  );
  // No-fork mode serves UDP only.
  return runKamailio({ dir: opts.dir, config, listen: opts.listen, mode: opts.transport === 'tcp' ? ['-DD'] : ['-D'], transport: opts.transport });
}

/**
 * Runs Kamailio on a config file until it answers OPTIONS on `listen`. `mode` is its start-up
 * mode: `-D` forks no SIP workers (Kamailio logs "no fork mode": the main process serves the
 * first UDP socket alone, no TCP, `children` ignored); `-DD` forks them and stays in the foreground.
 */
export async function runKamailio(opts: { dir: string; config: string; listen: Endpoint; mode: ['-D'] | ['-DD']; transport?: 'udp' | 'tcp' }): Promise<RunningKamailio> {
  const child = spawn('kamailio', ['-f', opts.config, ...opts.mode, '-E', '-Y', opts.dir], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr.on('data', (chunk: Buffer) => (log = (log + chunk.toString()).slice(-4000)));
  const exited = once(child, 'exit');
  try {
    await untilAnswering(opts.listen, opts.transport ?? 'udp', 10_000);
  } catch (error) {
    child.kill('SIGKILL');
    throw new Error(`Kamailio did not start: ${(error as Error).message}\n${log}`);
  }
  return {
    address: opts.listen,
    pid: child.pid!,
    async stop() {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Sends OPTIONS from an address outside the list until the 603 comes back. */
async function untilAnswering(to: Endpoint, transport: 'udp' | 'tcp', ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await (transport === 'tcp' ? probeTcp(to) : probeUdp(to))) return;
    if (Date.now() > deadline) throw new Error(`no 603 to OPTIONS over ${transport} from ${to.host}:${to.port} within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function options(to: Endpoint, transport: string, port: number): string {
  return [
    `OPTIONS sip:probe@${to.host}:${to.port} SIP/2.0`,
    `Via: SIP/2.0/${transport.toUpperCase()} 127.0.0.1:${port};branch=z9hG4bKprobe`,
    'Max-Forwards: 70',
    `From: <sip:probe@${to.host}>;tag=p`,
    `To: <sip:probe@${to.host}>`,
    'Call-ID: probe',
    'CSeq: 1 OPTIONS',
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
}

const is603 = (bytes: Buffer) => bytes.toString().startsWith('SIP/2.0 603');

async function probeUdp(to: Endpoint): Promise<boolean> {
  const socket = createSocket('udp4');
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  try {
    socket.send(options(to, 'udp', socket.address().port), to.port, to.host);
    return await once(socket, 'message', { signal: AbortSignal.timeout(200) }).then(([bytes]) => is603(bytes as Buffer), () => false);
  } finally {
    socket.close();
  }
}

async function probeTcp(to: Endpoint): Promise<boolean> {
  const socket = connect({ host: to.host, port: to.port, localAddress: '127.0.0.1' });
  socket.on('error', () => {});
  try {
    await once(socket, 'connect', { signal: AbortSignal.timeout(200) });
    socket.write(options(to, 'tcp', socket.localPort!));
    return await once(socket, 'data', { signal: AbortSignal.timeout(200) }).then(([bytes]) => is603(bytes as Buffer), () => false);
  } catch {
    return false;
  } finally {
    socket.destroy();
  }
}
