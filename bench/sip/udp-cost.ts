// What a datagram costs the edge's process before any SIP work: CPU µs per datagram received and
// sent back, Node's dgram against the batched socket (src/edge/batch-socket.ts). An echo socket
// in this process; a peer process keeps a window of datagrams in flight to it, so this process's
// CPU time (process.cpuUsage) is the echo's alone. Medians of interleaved runs.
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { BatchSocket, loadBatchNative } from '../../src/edge/batch-socket.ts';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** The peer: sends `count` datagrams of `size` bytes to PORT, `window` in flight, then exits. */
const PEER = `
const dgram = require('node:dgram');
const [host, port, count, window, size] = process.argv.slice(1);
const socket = dgram.createSocket({ type: 'udp4', recvBufferSize: 1 << 22 });
const payload = Buffer.alloc(Number(size), 'x');
let sent = 0, back = 0;
const next = () => { if (sent < Number(count)) { sent++; socket.send(payload, Number(port), host); } };
socket.on('message', () => { back++; if (back === Number(count)) { socket.close(); process.exit(0); } next(); });
socket.bind(0, host, () => { for (let i = 0; i < Number(window); i++) next(); });
`;

interface Echo {
  port: number;
  close(): void;
}

async function dgramEcho(host: string): Promise<Echo> {
  const socket = createSocket({ type: 'udp4', recvBufferSize: 1 << 22 });
  socket.on('message', (bytes, rinfo) => socket.send(bytes, rinfo.port, rinfo.address));
  socket.bind(0, host);
  await once(socket, 'listening');
  return { port: socket.address().port, close: () => socket.close() };
}

function batchEcho(host: string): Echo {
  const native = loadBatchNative();
  if (native instanceof Error) throw native;
  const socket: BatchSocket = new BatchSocket(native, {
    host,
    port: 0,
    recvBufferSize: 1 << 22,
    onMessage: (bytes, from, port) => socket.send(bytes, port, from),
    onError: (error) => {
      throw error;
    },
  });
  return { port: socket.address().port, close: () => socket.close() };
}

/** µs of this process's CPU per datagram echoed. */
async function run(echo: Echo, host: string, count: number, window: number, size: number): Promise<number> {
  const started = process.cpuUsage();
  const peer = spawn(process.execPath, ['-e', PEER, host, String(echo.port), String(count), String(window), String(size)], { stdio: 'inherit' });
  const [code] = (await once(peer, 'exit')) as [number];
  const used = process.cpuUsage(started);
  echo.close();
  if (code !== 0) throw new Error(`the UDP peer exited with ${code}`);
  return (used.user + used.system) / count;
}

/**
 * Prints the µs per datagram received and sent of each, medians of `runs`, and their ratio; a
 * missing addon is said, not thrown.
 */
export async function measureUdpCost(opts: { host: string; count: number; runs: number; window?: number; size?: number }): Promise<void> {
  const { host, count, runs, window = 32, size = 600 } = opts;
  if (loadBatchNative() instanceof Error) {
    console.log('  UDP cost: the batched socket is not built (npm ci builds it)');
    return;
  }
  const times = { dgram: [] as number[], batch: [] as number[] };
  for (let r = 0; r < runs; r++) {
    times.dgram.push(await run(await dgramEcho(host), host, count, window, size));
    times.batch.push(await run(batchEcho(host), host, count, window, size));
  }
  const [d, b] = [median(times.dgram), median(times.batch)];
  console.log(
    `  UDP cost, CPU µs a datagram received and sent (${count.toLocaleString('en')} echoed of ${size} B, ${window} in flight, median of ${runs}): ` +
      `dgram ${d.toFixed(1)}, batched ${b.toFixed(1)} (dgram ÷ batched ${(d / b).toFixed(2)}×)`,
  );
}
