// Every setting given as a flag reaches the configuration under the name commander gives it.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { Command, Option } from 'commander';
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
    // A list setting (--sip) holds it as its one item.
    assert.equal(String((config as unknown as Record<string, unknown>)[s.key]), value, `${s.flag} is not read as ${attribute}`);
  }
});

it('--sip is repeatable and takes comma-separated listeners; IPWARDEN_SIP a comma-separated list', () => {
  const command = new Command().addOption(new Option(SETTINGS.find((s) => s.key === 'sip')!.flag));
  command.parse(['--sip', 'udp:0.0.0.0:5060', '--sip', 'tcp:0.0.0.0:5060,tls:0.0.0.0:5061'], { from: 'user' });
  assert.deepEqual(loadConfig(command.opts(), {}).sip, ['udp:0.0.0.0:5060', 'tcp:0.0.0.0:5060', 'tls:0.0.0.0:5061']);
  assert.deepEqual(loadConfig({}, { IPWARDEN_SIP: 'udp:[::]:5060, tcp:[::]:5060' }).sip, ['udp:[::]:5060', 'tcp:[::]:5060']);
});
