/**
 * The documented install, done as a new user does it: a fresh copy of the
 * repository (no node_modules, no dist), `npm install -g .` into a private
 * prefix, then `sifpack --version` from another directory. Before
 * scripts/prepare.mjs this failed with "tsc: not found" and left a dangling
 * global link. Needs the npm registry (or npm's cache), as any install does.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT, tempDir } from '../helpers.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await fs.rm(d, { recursive: true, force: true });
});

describe('install from a fresh clone', () => {
  it('README documents `npm install -g .` as the install line', async () => {
    expect(await fs.readFile(path.join(ROOT, 'README.md'), 'utf8')).toContain('npm install -g .');
  });

  it('`npm install -g .` in a fresh clone works in one line and `sifpack --version` runs from any directory', async () => {
    const work = await tempDir('sifpack-install-');
    dirs.push(work);
    const clone = path.join(work, 'clone');
    const prefix = path.join(work, 'global');
    // The files a clone of the working tree would hold (committed or not), nothing ignored.
    const files = execFileSync('git', ['ls-files', '-co', '--exclude-standard', '-z'], { cwd: ROOT }).toString().split('\0').filter(Boolean);
    for (const f of files) {
      const src = path.join(ROOT, f);
      const st = await fs.lstat(src).catch(() => undefined);
      if (!st || st.isDirectory()) continue;
      await fs.mkdir(path.dirname(path.join(clone, f)), { recursive: true });
      await fs.cp(src, path.join(clone, f), { verbatimSymlinks: true });
    }
    expect(await fs.stat(path.join(clone, 'node_modules')).catch(() => null)).toBeNull();
    expect(await fs.stat(path.join(clone, 'dist')).catch(() => null)).toBeNull();

    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.toLowerCase().startsWith('npm_')));
    const install = spawnSync('npm', ['install', '-g', '--prefix', prefix, '.'], { cwd: clone, env, encoding: 'utf8' });
    expect(install.stderr + install.stdout).not.toMatch(/tsc: not found/);
    expect(install.status).toBe(0);

    const bin = path.join(prefix, 'bin', 'sifpack');
    const version = spawnSync(bin, ['--version'], { cwd: os.tmpdir(), env: { PATH: `${path.dirname(process.execPath)}:/usr/bin:/bin` }, encoding: 'utf8' });
    const pkg = JSON.parse(await fs.readFile(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
    expect(version.stderr).toBe('');
    expect(version.stdout.trim()).toBe(pkg.version);
    expect(version.status).toBe(0);
  }, 300_000);
});
