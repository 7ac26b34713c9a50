/** The characters of a fingerprint: 64 bits at 6 a character. */
export const FINGERPRINT_LENGTH = 11;

const ALPHABET = Array.from('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_', (c) => c.charCodeAt(0));

/**
 * 64 bits of `text` in 11 base64url characters: two FNV-1a-style hashes (their own seeds and
 * multipliers). For names that keep no secret (the edge's To tags, its branches' ids, which the
 * MAC after them guards): a cryptographic hash would buy nothing, and md5 with its encoding cost
 * three times as much (base 36 with Number's toString, four times).
 */
export function fingerprint(text: string): string {
  let a = 0x811c9dc5;
  let b = 0x050c5d1f;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
  }
  return String.fromCharCode(
    sixBits(a), sixBits(a >>> 6), sixBits(a >>> 12), sixBits(a >>> 18), sixBits(a >>> 24), sixBits((a >>> 30) | (b << 2)),
    sixBits(b >>> 4), sixBits(b >>> 10), sixBits(b >>> 16), sixBits(b >>> 22), sixBits(b >>> 28),
  );
}

const sixBits = (bits: number) => ALPHABET[bits & 63]!;
