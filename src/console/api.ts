// The console's only way to the server: the public /v2 API with the user's token in the
// X-Auth-Token header (never in a URL), kept in sessionStorage so a reload keeps the session and
// closing the tab ends it.

import { md5 } from '@noble/hashes/legacy.js';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils.js';

/** KAZOO's error envelope, as thrown by `api`. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly data: Record<string, unknown>,
  ) {
    super(message);
  }
}

export interface Session {
  token: string;
  accountId: string;
}

const KEY = 'ipwarden.session';
let session: Session | null = readSession();
let onExpired: () => void = () => {};

function readSession(): Session | null {
  try {
    return JSON.parse(sessionStorage.getItem(KEY) ?? 'null') as Session | null;
  } catch {
    return null;
  }
}

export const currentSession = () => session;

/** Called when the server refuses the token (expired or revoked): the app shows the login again. */
export function whenExpired(callback: () => void): void {
  onExpired = callback;
}

function forget(): void {
  session = null;
  sessionStorage.removeItem(KEY);
}

export interface Envelope<T> {
  data: T;
  next_start_key?: string | number;
}

/** One API call; a non-2xx answer is thrown as ApiError with KAZOO's `data`. */
export async function api<T = unknown>(method: string, path: string, data?: unknown): Promise<Envelope<T>> {
  const headers: Record<string, string> = { 'Content-Type': 'application/json' };
  if (session) headers['X-Auth-Token'] = session.token;
  const response = await fetch(`/v2${path}`, { method, headers, ...(data === undefined ? {} : { body: JSON.stringify({ data }) }) });
  const body = (await response.json().catch(() => ({}))) as Record<string, unknown>;
  if (response.ok) return body as unknown as Envelope<T>;
  if (response.status === 401 && session) {
    forget();
    onExpired();
  }
  throw new ApiError(response.status, String(body.message ?? response.statusText), (body.data as Record<string, unknown>) ?? {});
}

/** KAZOO clients send md5("username:password") with the username lowercased (api.md §2). */
export function credentials(username: string, password: string): string {
  return bytesToHex(md5(utf8ToBytes(`${username.toLowerCase()}:${password}`)));
}

export async function logIn(accountName: string, username: string, password: string): Promise<Session> {
  const answer = (await api<{ account_id: string }>('PUT', '/user_auth', { account_name: accountName, credentials: credentials(username, password) })) as Envelope<{ account_id: string }> & { auth_token: string };
  session = { token: answer.auth_token, accountId: answer.data.account_id };
  sessionStorage.setItem(KEY, JSON.stringify(session));
  return session;
}

export async function logOut(): Promise<void> {
  try {
    await api('DELETE', '/token_auth');
  } finally {
    forget();
  }
}
