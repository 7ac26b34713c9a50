// Keeps a Kamailio permissions address file current (api.md §9): after a change to the active
// trunk entries, the file is rewritten atomically (a temporary file renamed over it, so Kamailio
// never reads half a file), then `permissions.addressReload` is called. Changes are debounced and
// syncs run one at a time; a failed reload is retried with backoff until one succeeds, and every
// write, reload and failure is logged and counted.

import { open, rename, unlink } from 'node:fs/promises';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { KamailioRpc } from './kamailio-rpc.ts';

export const RELOAD_METHOD = 'permissions.addressReload';

interface Logger {
  info(object: object, message: string): void;
  warn(object: object, message: string): void;
}

export interface KamailioFeedOptions {
  file: string;
  /** The file's text as of now (read from the store). */
  render: () => Promise<string>;
  /** Asks Kamailio to reload; none: the file alone is kept (Kamailio reloads on its own terms). */
  reload?: KamailioRpc;
  registry?: Registry;
  logger: Logger;
  /** Quiet time after a change before syncing: a burst of writes costs one rewrite. */
  debounceMs?: number;
  /** First and longest wait before retrying a failed reload (doubling in between). */
  retryMs?: { first: number; max: number };
}

/** Writes `text` to `file` so a reader sees the old file or the new one, never a mix. */
async function writeAtomically(file: string, text: string): Promise<void> {
  const temporary = `${file}.${process.pid}.tmp`;
  const handle = await open(temporary, 'w', 0o644);
  try {
    await handle.writeFile(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await rename(temporary, file);
  } catch (error) {
    await unlink(temporary).catch(() => undefined);
    throw error;
  }
}

export class KamailioFeed {
  private readonly debounceMs: number;
  private readonly retry: { first: number; max: number };
  private readonly writes: Counter;
  private readonly reloads: Counter<'result'>;
  private readonly pending: Gauge;
  private debounce: NodeJS.Timeout | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private retryDelay: number;
  private running: Promise<void> = Promise.resolve();
  private written: string | null = null;
  private reloadOwed = false;
  private stopped = false;

  constructor(private readonly options: KamailioFeedOptions) {
    this.debounceMs = options.debounceMs ?? 50;
    this.retry = options.retryMs ?? { first: 250, max: 10_000 };
    this.retryDelay = this.retry.first;
    const registers = options.registry ? [options.registry] : [];
    this.writes = new Counter({ name: 'ipwarden_kamailio_address_writes_total', help: 'Rewrites of the Kamailio address file', registers });
    this.reloads = new Counter({ name: 'ipwarden_kamailio_reloads_total', help: 'permissions.addressReload calls by result', labelNames: ['result'], registers });
    this.pending = new Gauge({ name: 'ipwarden_kamailio_reload_pending', help: '1 while Kamailio has not yet reloaded the latest address file', registers });
  }

  /** Writes the file as it stands and asks for a reload (retried in the background if Kamailio is not there yet). */
  start(): Promise<void> {
    return this.sync();
  }

  /** The active trunk entries changed. */
  changed(): void {
    if (this.stopped) return;
    if (this.debounce) clearTimeout(this.debounce);
    this.debounce = setTimeout(() => {
      this.debounce = null;
      void this.sync();
    }, this.debounceMs);
  }

  stop(): void {
    this.stopped = true;
    if (this.debounce) clearTimeout(this.debounce);
    if (this.retryTimer) clearTimeout(this.retryTimer);
  }

  /** One sync at a time, in order; a failure is logged and retried, never thrown. */
  private sync(): Promise<void> {
    this.running = this.running.then(() => this.syncOnce());
    return this.running;
  }

  private async syncOnce(): Promise<void> {
    if (this.stopped) return;
    try {
      const text = await this.options.render();
      if (text !== this.written) {
        await writeAtomically(this.options.file, text);
        this.written = text;
        this.writes.inc();
        this.reloadOwed = this.options.reload !== undefined;
        this.options.logger.info({ file: this.options.file, lines: text === '' ? 0 : text.split('\n').length - 1 }, 'kamailio address file written');
      }
    } catch (error) {
      this.options.logger.warn({ file: this.options.file, err: error }, 'kamailio address file not written; retrying');
      this.retryLater();
      return;
    }
    if (this.reloadOwed) await this.reloadNow();
  }

  private async reloadNow(): Promise<void> {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    try {
      await this.options.reload!(RELOAD_METHOD);
      this.reloadOwed = false;
      this.retryDelay = this.retry.first;
      this.reloads.inc({ result: 'ok' });
      this.pending.set(0);
    } catch (error) {
      this.reloads.inc({ result: 'error' });
      this.pending.set(1);
      this.options.logger.warn({ err: error, retryInMs: this.retryDelay }, 'kamailio permissions.addressReload failed; retrying');
      this.retryLater();
    }
  }

  private retryLater(): void {
    if (this.stopped || this.retryTimer) return;
    const delay = this.retryDelay;
    this.retryDelay = Math.min(this.retryDelay * 2, this.retry.max);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      void this.sync();
    }, delay);
    this.retryTimer.unref();
  }
}
