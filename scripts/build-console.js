#!/usr/bin/env node
// Builds the web console (src/console) into dist/console, which the server serves at `/`.
// Run by `npm ci` / `npm install` (the `prepare` script) and by the browser tests, so what is
// served is always the source beside it. Preact is bundled in: nothing is fetched at run time.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const source = fileURLToPath(new URL('../src/console/', import.meta.url));
const out = fileURLToPath(new URL('../dist/console', import.meta.url));
// Built aside, then swapped in: a server starting meanwhile never sees half a console.
const aside = `${out}.${process.pid}/`;

mkdirSync(aside, { recursive: true });
await build({
  entryPoints: [`${source}main.tsx`],
  outfile: `${aside}console.js`,
  bundle: true,
  format: 'esm',
  target: 'es2022',
  jsx: 'automatic',
  jsxImportSource: 'preact',
  minify: true,
  logLevel: 'warning',
});
for (const file of ['index.html', 'console.css']) copyFileSync(`${source}${file}`, `${aside}${file}`);
rmSync(out, { recursive: true, force: true });
renameSync(aside, out);
