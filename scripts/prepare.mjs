#!/usr/bin/env node
// Builds dist/ from a checkout. `npm install -g .` runs `prepare` in the
// checkout BEFORE it installs anything there, so typescript (a devDependency)
// is missing and a bare `tsc` fails ("tsc: not found", leaving a dangling
// global link). So: when typescript is absent, install the locked
// dependencies (dev included, scripts off) into the checkout first, then
// compile. In a checkout after `npm ci` this is just `tsc`.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');

if (!existsSync(tsc)) {
  const npmCli = process.env.npm_execpath;
  if (!npmCli) {
    console.error('sifpack: typescript is not installed here; run `npm ci` in this directory first');
    process.exit(1);
  }
  // The outer command's settings (--global, --prefix, --omit=dev, ...) reach us
  // as npm_config_* variables; they must not apply to this local install.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.toLowerCase().startsWith('npm_config_')));
  console.error('sifpack: installing the build tools into this checkout (npm ci --include=dev)');
  execFileSync(process.execPath, [npmCli, 'ci', '--include=dev', '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: root, stdio: ['ignore', 'inherit', 'inherit'], env });
}
execFileSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.json')], { cwd: root, stdio: 'inherit' });
