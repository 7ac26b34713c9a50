// api.md §9 from the command line, as real processes: `import kamailio-address FILE [--dry-run]`
// then `export kamailio-address` gives the file back; `export freeswitch-acl` and
// `import freeswitch-acl` on the same database.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../../src/config.ts';
import { startServices } from '../../src/main.ts';
import { createChildAccount } from '../../src/services/accounts.ts';
import { bootstrapAccount } from '../../src/services/bootstrap.ts';
import { SYSTEM_ACTOR } from '../../src/services/actor.ts';
import { createTrunk } from '../../src/services/trunks.ts';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'ipwarden.js');
const dir = mkdtempSync(join(tmpdir(), 'ipwarden-sbc-cli-'));
const db = join(dir, 'sbc.db');
let account = '';
const trunks: string[] = [];

function cli(...args: string[]) {
  const env: NodeJS.ProcessEnv = { ...process.env, IPWARDEN_DB: db, IPWARDEN_LOG_LEVEL: 'silent' };
  delete env.DATABASE_URL;
  return spawnSync(process.execPath, [BIN, ...args], { env, encoding: 'utf8' });
}

before(async () => {
  const services = await startServices(loadConfig({ db, logLevel: 'silent' }, {}));
  try {
    const master = await bootstrapAccount(services.ctx, SYSTEM_ACTOR, { name: 'Master', realm: 'master.test', username: 'admin', password: 'secret' });
    account = (await createChildAccount(services.ctx, SYSTEM_ACTOR, master.id, { name: 'Acme', realm: 'acme.test' })).id;
    for (const name of ['PBX', 'Carrier']) trunks.push((await createTrunk(services.ctx, SYSTEM_ACTOR, account, { name })).id);
  } finally {
    await services.close();
  }
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('npx ipwarden import|export', () => {
  test('import kamailio-address: the dry run reports, the run creates, and export prints the same file', () => {
    const original = [
      '# exported by hand from kamailio-1',
      '1 203.0.113.64 26 0 pbx',
      '2 198.51.100.0 24',
      '1 203.0.113.9',
      '',
    ].join('\n');
    const file = join(dir, 'address.list');
    writeFileSync(file, original);
    const maps = ['--tag', `pbx=${account}:${trunks[0]}`, '--map', `1=${account}:${trunks[0]}`, '--map', `2=${account}:${trunks[1]}`];

    const dry = cli('import', 'kamailio-address', file, '--dry-run', ...maps);
    assert.equal(dry.status, 0, dry.stderr);
    assert.match(dry.stdout, /^would create 3:/);
    assert.match(dry.stdout, new RegExp(`line 2: 203\\.0\\.113\\.64/26 → ${account}:${trunks[0]}`));
    assert.match(dry.stdout, /nothing written \(dry run\)/);
    assert.equal(cli('export', 'kamailio-address').stdout, '');

    const refused = cli('import', 'kamailio-address', file, '--map', `1=${account}:${trunks[0]}`);
    assert.equal(refused.status, 1);
    assert.match(refused.stdout, /refused 1:\n {2}line 3: 198\.51\.100\.0\/24: no trunk for group 2/);
    assert.match(refused.stdout, /nothing written: 1 refused/);

    const run = cli('import', 'kamailio-address', file, ...maps);
    assert.equal(run.status, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /^created 3:/);
    const exported = cli('export', 'kamailio-address');
    assert.equal(exported.status, 0, exported.stderr);
    assert.equal(
      exported.stdout,
      [`1 203.0.113.9 32 0 ${account}:${trunks[0]}`, `1 203.0.113.64 26 0 ${account}:${trunks[0]}`, `1 198.51.100.0 24 0 ${account}:${trunks[1]}`, ''].join('\n'),
    );

    // A file ipwarden wrote needs no flags (its tags name the trunks), and importing what is
    // already there again creates nothing.
    const again = join(dir, 'exported.list');
    writeFileSync(again, exported.stdout);
    const twice = cli('import', 'kamailio-address', again);
    assert.equal(twice.status, 0, twice.stdout);
    assert.match(twice.stdout, new RegExp(`^created 0\nskipped 3:\n {2}line 1: 203\.0\.113\.9 → ${account}:${trunks[0]}: already an entry of this trunk`));
    assert.equal(cli('export', 'kamailio-address').stdout, exported.stdout);
  });

  test('export freeswitch-acl prints acl.conf; import freeswitch-acl --list NAME=ACCOUNT sets the access list', () => {
    const file = join(dir, 'acl.conf.xml');
    writeFileSync(file, '<configuration name="acl.conf"><network-lists><list name="office" default="deny"><node type="allow" cidr="192.0.2.0/24"/></list></network-lists></configuration>');
    const run = cli('import', 'freeswitch-acl', file, '--list', `office=${account}`);
    assert.equal(run.status, 0, run.stdout + run.stderr);
    assert.match(run.stdout, new RegExp(`^created 1:\\n {2}list office: allow,deny, 1 cidrs → ${account}`));
    const exported = cli('export', 'freeswitch-acl');
    assert.equal(exported.status, 0, exported.stderr);
    assert.match(exported.stdout, new RegExp(`<list name="ipwarden-${account}" default="deny">[\\s\\S]*<node type="allow" cidr="192.0.2.0/24"/>`));
    assert.match(exported.stdout, /<list name="ipwarden-trunks" default="deny">[\s\S]*<node type="allow" cidr="203.0.113.64\/26"\/>/);
  });
});
