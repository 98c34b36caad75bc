#!/usr/bin/env node
// The `keel` command. In a clone (TypeScript sources present) it runs the sources through tsx, so a
// stale `dist/` can never answer; an installed package runs the compiled `dist/`. The library does
// not import the demos: this file hands them to the CLI (`keel demo`, and `keel replay`'s default
// topologies).
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const source = join(root, 'src', 'cli', 'main.ts');
let entry = join(root, 'dist', 'src', 'cli', 'main.js');
let demos = join(root, 'dist', 'demos', 'index.js');
if (existsSync(source)) {
  const { register } = await import('tsx/esm/api');
  register();
  entry = source;
  demos = join(root, 'demos', 'index.ts');
}
const { runCli } = await import(pathToFileURL(entry).href);
const { demoRegistry } = await import(pathToFileURL(demos).href);
process.exitCode = await runCli(process.argv.slice(2), undefined, { demos: demoRegistry });
