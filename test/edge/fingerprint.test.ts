import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fingerprint } from '../../src/edge/fingerprint.ts';

describe('fingerprint', () => {
  it('is 11 base64url characters, the same for the same text', () => {
    assert.match(fingerprint('198.51.100.7:5060|z9hG4bK776asdhds'), /^[A-Za-z0-9_-]{11}$/);
    assert.equal(fingerprint('a|b'), fingerprint('a|b'));
    assert.notEqual(fingerprint('a|b'), fingerprint('a|c'));
  });

  it("tells apart texts that differ in one character, as a client's branches do, and uses every character", () => {
    const seen = new Set<string>();
    const used = Array.from({ length: 11 }, () => new Set<string>());
    for (let i = 0; i < 100_000; i++) {
      const id = fingerprint(`192.0.2.1:5060|z9hG4bK-${i}`);
      seen.add(id);
      [...id].forEach((c, k) => used[k]!.add(c));
    }
    assert.equal(seen.size, 100_000);
    // 64 bits in 11 characters: the last holds 4 bits, the others 6.
    assert.deepEqual(used.map((s) => s.size), [64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 16]);
  });
});
