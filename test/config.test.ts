// The egress settings (api.md §7.1) and the SIP workers (issue 22) as flags and environment, flags
// winning, as every setting.
import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { describe, it } from 'node:test';
import { loadConfig } from '../src/config.ts';

describe('--sip-host and --sip-egress-port', () => {
  it('come from the environment, default to no host and port 5060, and a flag wins', () => {
    assert.deepEqual([loadConfig({}, {}).sipHost, loadConfig({}, {}).sipEgressPort], [undefined, 5060]);
    const env = { IPWARDEN_SIP_HOST: 'edge-1.example', IPWARDEN_SIP_EGRESS_PORT: '5080' };
    const fromEnv = loadConfig({}, env);
    assert.deepEqual([fromEnv.sipHost, fromEnv.sipEgressPort], ['edge-1.example', 5080]);
    const fromFlags = loadConfig({ sipHost: 'edge-2.example', sipEgressPort: '5090' }, env);
    assert.deepEqual([fromFlags.sipHost, fromFlags.sipEgressPort], ['edge-2.example', 5090]);
  });

  it('refuse a port that is not one, naming the setting', () => {
    for (const port of ['0', '65536', 'sip']) {
      assert.throws(() => loadConfig({ sipEgressPort: port }, {}), /sip-egress-port must be a whole number from 1 to 65535/);
    }
  });
});

describe('--sip-workers', () => {
  it("defaults to the machine's cores, comes from IPWARDEN_SIP_WORKERS, and a flag wins", () => {
    assert.equal(loadConfig({}, {}).sipWorkers, availableParallelism());
    const env = { IPWARDEN_SIP_WORKERS: '3' };
    assert.equal(loadConfig({}, env).sipWorkers, 3);
    assert.equal(loadConfig({ sipWorkers: '0' }, env).sipWorkers, 0);
  });

  it('refuses a count that is not one, naming the setting', () => {
    for (const workers of ['-1', '257', 'all', '1.5']) {
      assert.throws(() => loadConfig({ sipWorkers: workers }, {}), /sip-workers/);
    }
  });
});
