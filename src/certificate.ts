// A TLS certificate and key, the API's or the SIP edge's (issue 27): read from files at start-up,
// and read again when the files change or on SIGHUP, so a renewed certificate is served without a
// restart. A renewal that cannot be loaded (half-written, a key of another certificate) keeps the
// one in use.
import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import { createSecureContext, type SecureContextOptions } from 'node:tls';

export interface TlsFiles {
  cert: string;
  key: string;
}

/** The certificate chain and key, checked to belong together (createSecureContext throws if not). */
export function readCertificate(files: TlsFiles): { cert: Buffer; key: Buffer } {
  const read = (what: string, path: string) => {
    try {
      return readFileSync(path);
    } catch (error) {
      throw new Error(`cannot read the TLS ${what} ${path}: ${(error as Error).message}`);
    }
  };
  const pair = { cert: read('certificate', files.cert), key: read('key', files.key) };
  try {
    createSecureContext(pair);
  } catch (error) {
    throw new Error(`the TLS certificate ${files.cert} and key ${files.key} cannot be used together: ${(error as Error).message}`);
  }
  return pair;
}

export interface CertificateTarget {
  setSecureContext(options: SecureContextOptions): void;
}

export interface FollowOptions {
  /** How often the files are looked at (a stat each); certificate tools replace them by rename. */
  intervalMs?: number;
  onReloaded?: () => void;
  onFailed?: (error: Error) => void;
}

/**
 * Reloads `target`'s certificate whenever either file changes. Returns `reload`, for SIGHUP, and
 * `stop`. New connections get the new certificate; open ones keep theirs.
 */
export function followCertificate(target: CertificateTarget, files: TlsFiles, options: FollowOptions = {}): { reload(): void; stop(): void } {
  const reload = () => {
    try {
      target.setSecureContext(readCertificate(files));
      options.onReloaded?.();
    } catch (error) {
      options.onFailed?.(error as Error);
    }
  };
  // watchFile stats the path, so it follows a file replaced by rename or a re-pointed symlink.
  const interval = options.intervalMs ?? 5000;
  const changed = (now: { mtimeMs: number; ino: number }, before: { mtimeMs: number; ino: number }) => {
    if (now.mtimeMs !== before.mtimeMs || now.ino !== before.ino) reload();
  };
  for (const path of [files.cert, files.key]) watchFile(path, { interval, persistent: false }, changed);
  return {
    reload,
    stop() {
      for (const path of [files.cert, files.key]) unwatchFile(path, changed);
    },
  };
}
