#!/usr/bin/env node
// Builds the SIP edge's batched UDP socket (native/batch_socket.c) into build/Release, with the
// node-gyp that npm bundles and the headers of the running Node. Run by `npm ci` / `npm install`
// (the `install` script). A machine that cannot build it still installs: the edge then uses
// Node's dgram and says so once at start (src/edge/batch-socket.ts).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
// npm names its node-gyp to the scripts it runs; run by hand, look beside the npm of this Node.
const nodeGyp = [process.env.npm_config_node_gyp, join(dirname(process.execPath), '../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js')].find(
  (path) => path && existsSync(path),
);
// A distribution's Node (headers in /usr/include/node) or an official build (include/node beside
// bin/): build against them instead of downloading headers.
const prefix = resolve(dirname(process.execPath), '..');
const nodedir = process.env.npm_config_nodedir || (existsSync(join(prefix, 'include/node/node_api.h')) ? prefix : undefined);

if (process.platform !== 'linux') {
  console.log('build-native: not Linux, the SIP edge will use Node\'s dgram');
} else if (nodeGyp === undefined) {
  console.warn('build-native: node-gyp not found, the SIP edge will use Node\'s dgram');
} else {
  const args = [nodeGyp, 'rebuild', '--release', ...(nodedir ? [`--nodedir=${nodedir}`] : [])];
  const run = spawnSync(process.execPath, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
  if (run.status !== 0) {
    process.stderr.write(run.stdout + run.stderr);
    console.warn('build-native: the batched UDP socket did not build, the SIP edge will use Node\'s dgram');
  }
}
