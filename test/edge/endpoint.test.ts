import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EndpointError, formatHostPort, parseSipListen, parseSipListeners, parseSipUpstream } from '../../src/edge/endpoint.ts';
import { parseSipReject } from '../../src/edge/reply.ts';

describe('--sip and --sip-upstream', () => {
  it('read udp:, tcp: or tls:HOST:PORT and HOST:PORT, IPv6 in brackets, port 0 for listening only', () => {
    assert.deepEqual(parseSipListen('udp:0.0.0.0:5060'), { transport: 'udp', host: '0.0.0.0', port: 5060 });
    assert.deepEqual(parseSipListen('UDP:[::1]:0'), { transport: 'udp', host: '::1', port: 0 });
    assert.deepEqual(parseSipListen('tcp:10.0.0.5:5060'), { transport: 'tcp', host: '10.0.0.5', port: 5060 });
    assert.deepEqual(parseSipListen('TLS:[2001:db8::5]:5061'), { transport: 'tls', host: '2001:db8::5', port: 5061 });
    assert.deepEqual(parseSipUpstream('kazoo.internal:5080'), { host: 'kazoo.internal', port: 5080 });
    assert.deepEqual(parseSipUpstream('[2001:db8::5]:5060'), { host: '2001:db8::5', port: 5060 });
  });

  it('take one listener per transport, in any combination', () => {
    assert.deepEqual(parseSipListeners(['tls:0.0.0.0:5061', 'udp:0.0.0.0:5060', 'tcp:0.0.0.0:5060']).map((l) => l.transport), ['tls', 'udp', 'tcp']);
    assert.throws(() => parseSipListeners(['tcp:10.0.0.5:5060', 'TCP:10.0.0.6:5060']), /one listener per transport, got tcp twice/);
  });

  for (const bad of ['0.0.0.0:5060', 'sctp:0.0.0.0:5060', 'ws:0.0.0.0:80', 'udp:host', 'udp::5060', 'udp:h:65536', 'udp:::1:5060', 'tcp:h']) {
    it(`--sip refuses "${bad}" saying what it wants`, () =>
      assert.throws(() => parseSipListen(bad), (e: Error) => e instanceof EndpointError && /--sip /.test(e.message)));
  }

  for (const bad of ['host', 'host:0', 'host:x', ':5060', '[::1:5060']) {
    it(`--sip-upstream refuses "${bad}"`, () =>
      assert.throws(() => parseSipUpstream(bad), (e: Error) => /--sip-upstream needs HOST:PORT/.test(e.message)));
  }

  it('formats IPv6 in brackets', () => {
    assert.equal(formatHostPort({ host: '::1', port: 5060 }), '[::1]:5060');
    assert.equal(formatHostPort({ host: '127.0.0.1', port: 5060 }), '127.0.0.1:5060');
  });
});

describe('--sip-reject', () => {
  it('defaults to 603 Rejected by ACL, takes a code and reason, or drop', () => {
    assert.deepEqual(parseSipReject(), { mode: 'respond', code: 603, reason: 'Rejected by ACL' });
    assert.deepEqual(parseSipReject('respond', '403', 'Nope'), { mode: 'respond', code: 403, reason: 'Nope' });
    assert.deepEqual(parseSipReject(undefined, 403), { mode: 'respond', code: 403, reason: 'Forbidden' });
    assert.deepEqual(parseSipReject('drop'), { mode: 'drop' });
  });

  it('refuses other modes, non-failure codes and multi-line reasons', () => {
    assert.throws(() => parseSipReject('ignore'), /--sip-reject must be respond or drop/);
    assert.throws(() => parseSipReject(undefined, '200'), /--sip-reject-code/);
    assert.throws(() => parseSipReject(undefined, undefined, 'a\r\nb'), /--sip-reject-reason/);
  });
});
