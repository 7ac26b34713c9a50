// Self-signed certificates made at test time with openssl (never committed), for the HTTPS and
// SIP-over-TLS tests.
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Why openssl cannot run here, or null. */
export function opensslMissing(): string | null {
  const probe = spawnSync('openssl', ['version'], { encoding: 'utf8' });
  return probe.error ? `openssl is not installed: ${probe.error.message}` : null;
}

/**
 * A certificate for `names` (IP addresses and DNS names, its subjectAltName) and its key, as PEM
 * files in `dir` (named after `label`). Self-signed, so it is its own CA: trust the certificate.
 */
export function selfSignedCertificate(dir: string, label: string, names: string[]): { cert: string; key: string } {
  const cert = join(dir, `${label}.crt`);
  const key = join(dir, `${label}.key`);
  const san = names.map((name) => (/^[\d.]+$|:/.test(name) ? `IP:${name}` : `DNS:${name}`)).join(',');
  const made = spawnSync(
    'openssl',
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', `/CN=${names[0]}`,
      '-addext', `subjectAltName=${san}`, '-keyout', key, '-out', cert],
    { encoding: 'utf8' },
  );
  if (made.status !== 0) throw new Error(`openssl could not make a certificate: ${made.stderr}`);
  return { cert, key };
}

export interface TestCertificate {
  /** PEM text, not paths. */
  cert: string;
  key: string;
  /** SHA-256 fingerprint, as a peer certificate reports it (`fingerprint256`). */
  fingerprint: string;
}

/** A certificate for 127.0.0.1 and localhost, as PEM text; `label` tells renewals apart. */
export function makeCertificate(label = 'ipwarden-test'): TestCertificate {
  const files = selfSignedCertificate(mkdtempSync(join(tmpdir(), 'ipwarden-cert-')), label, ['127.0.0.1', 'localhost']);
  const cert = readFileSync(files.cert, 'utf8');
  return { cert, key: readFileSync(files.key, 'utf8'), fingerprint: new X509Certificate(cert).fingerprint256 };
}

/** Writes `pair` to `files` the way renewal tools do: a new file renamed over the old one. */
export function installCertificate(pair: { cert: string; key: string }, files: { cert: string; key: string }): void {
  for (const [content, path] of [[pair.key, files.key], [pair.cert, files.cert]] as const) {
    writeFileSync(`${path}.new`, content);
    renameSync(`${path}.new`, path);
  }
}
