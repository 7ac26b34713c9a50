// Every setting given as a flag reaches the configuration under the name commander gives it.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { Option } from 'commander';
import { loadConfig, SETTINGS } from '../src/config.ts';

it('flags whose commander name is not the setting key still count (--token-ttl, --login-window, --request-timeout)', () => {
  const config = loadConfig({ tokenTtl: '60', loginWindow: '30', requestTimeout: '500' }, {});
  assert.equal(config.tokenTtlSeconds, 60);
  assert.equal(config.loginWindowSeconds, 30);
  assert.equal(config.requestTimeoutMs, 500);
});

it("every setting is read from commander's name for its flag", () => {
  const value = 'x-not-a-number';
  for (const s of SETTINGS) {
    const attribute = new Option(s.flag).attributeName();
    // A text setting takes the value; every other parser refuses it. Either way it was read.
    let config;
    try {
      config = loadConfig({ [attribute]: value }, {});
    } catch {
      continue;
    }
    assert.equal((config as unknown as Record<string, unknown>)[s.key], value, `${s.flag} is not read as ${attribute}`);
  }
});
