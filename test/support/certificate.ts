// Self-signed certificates made at test time (openssl), for the HTTPS and SIP-over-TLS tests.
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCertificate {
  cert: string;
  key: string;
  /** SHA-256 fingerprint, as a peer certificate reports it (`fingerprint256`). */
  fingerprint: string;
}

/** A P-256 certificate for 127.0.0.1 and localhost, valid for two days. */
export function makeCertificate(commonName = 'ipwarden-test'): TestCertificate {
  const dir = mkdtempSync(join(tmpdir(), 'ipwarden-cert-'));
  const certPath = join(dir, 'cert.pem');
  const keyPath = join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', keyPath, '-out', certPath, '-days', '2', '-subj', `/CN=${commonName}`, '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'], { stdio: 'ignore' });
  const cert = readFileSync(certPath, 'utf8');
  return { cert, key: readFileSync(keyPath, 'utf8'), fingerprint: new X509Certificate(cert).fingerprint256 };
}

/** Writes `pair` to `files` the way renewal tools do: a new file renamed over the old one. */
export function installCertificate(pair: { cert: string; key: string }, files: { cert: string; key: string }): void {
  for (const [content, path] of [[pair.key, files.key], [pair.cert, files.cert]] as const) {
    writeFileSync(`${path}.new`, content);
    renameSync(`${path}.new`, path);
  }
}
