// A self-signed certificate made at test time with openssl (never committed), for the TLS tests.
import { spawnSync } from 'node:child_process';
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
