// Tasks the stores' aside workers run in the tests (aside.test.ts): the worker
// imports this module by its URL, as it imports a service's.

import type { IpRow, Repository } from '../../../src/store/port.ts';

export const ip = (n: number): IpRow => ({ ip: `192.0.2.${n}`, zone: 'z', host: 'h', assignedTo: null, revision: '1-a', created: 'x', modified: 'x' });

/** Inserts the pool IPs numbered `from`…`to`, holding its thread for `busyMs` first; answers how many it then saw. */
export async function insertIps(tx: Repository, input: { from: number; to: number; busyMs: number }): Promise<number> {
  const end = performance.now() + input.busyMs;
  while (performance.now() < end);
  for (let n = input.from; n <= input.to; n++) await tx.insertIp(ip(n));
  return (await tx.listIps({})).length;
}

export class Refusal extends Error {
  constructor(readonly kind: string, readonly details: { cause: string }) {
    super('refused');
    this.name = 'Refusal';
  }
}

/** Inserts one IP, then refuses. */
export async function insertThenRefuse(tx: Repository, input: { n: number }): Promise<never> {
  await tx.insertIp(ip(input.n));
  throw new Refusal('conflict', { cause: `number ${input.n}` });
}
