// Identifiers, revisions and timestamps as the API shows them.

import { randomBytes, randomUUID } from 'node:crypto';

/** KAZOO account, user and device ids: 32 lowercase hex characters. */
export function newId(): string {
  return randomBytes(16).toString('hex');
}

export function newUuid(): string {
  return randomUUID();
}

/** KAZOO-style document revision `N-hash`; N counts the writes. */
export function nextRevision(previous?: string): string {
  const n = previous === undefined ? 0 : Number.parseInt(previous, 10) || 0;
  return `${n + 1}-${randomBytes(16).toString('hex')}`;
}

export function now(): string {
  return new Date().toISOString();
}

/** The seed's timestamp form `YYYY-MM-DDTHH:mm:ssZ` (seed 003). */
export function secondsTimestamp(date = new Date()): string {
  return `${date.toISOString().slice(0, 19)}Z`;
}
