// Identifiers, revisions and timestamps as the API shows them.

import { randomBytes, randomUUID } from 'node:crypto';

/** KAZOO account, user and device ids: 32 lowercase hex characters. */
export function newId(): string {
  return randomBytes(16).toString('hex');
}

export function newUuid(): string {
  return randomUUID();
}

/** 32 random hex characters (randomUUID draws from a buffered pool: a fifth of randomBytes' cost). */
function randomHex(): string {
  const u = randomUUID();
  return u.slice(0, 8) + u.slice(9, 13) + u.slice(14, 18) + u.slice(19, 23) + u.slice(24);
}

/** KAZOO-style document revision `N-hash`; N counts the writes. */
export function nextRevision(previous?: string): string {
  const n = previous === undefined ? 0 : Number.parseInt(previous, 10) || 0;
  return `${n + 1}-${randomHex()}`;
}

/**
 * A UUID whose first 48 bits are the time in milliseconds (the layout of UUID version 7): rows
 * keyed by it are appended at the end of their index, not scattered through it (a bulk load of
 * a thousand audit entries dirtied some 700 index pages with random UUIDs, its COMMIT then
 * writing them all out).
 */
export function newTimeOrderedUuid(): string {
  const time = Date.now().toString(16).padStart(12, '0');
  const u = randomUUID();
  return `${time.slice(0, 8)}-${time.slice(8)}-7${u.slice(15)}`;
}

export function now(): string {
  return new Date().toISOString();
}

/** The seed's timestamp form `YYYY-MM-DDTHH:mm:ssZ` (seed 003). */
export function secondsTimestamp(date = new Date()): string {
  return `${date.toISOString().slice(0, 19)}Z`;
}
