/**
 * The README's "Share an image" block, run as written: every `sifpack` line
 * of its first code block, in order, against the real test registry
 * (SIFPACK_TEST_REGISTRY standing in for ghcr.io/mylab), with the key file
 * names it uses holding Sylabs' test keys (test/fixtures/signing/keys) and
 * analysis.sif an unsigned SIF. The `apptainer pull` line is covered by
 * oras-apptainer.test.ts; `sha256:…` is the digest `push` printed.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { sifpack } from '../e2e/cli.js';
import { ROOT, service, tempDir } from '../helpers.js';

const KEYS = path.join(ROOT, 'test', 'fixtures', 'signing', 'keys');
let dir: string;

beforeAll(async () => {
  dir = await tempDir('sifpack-readme-share-');
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

it('the sign → push → pull --verify commands of "Share an image" work as written', { timeout: 240_000 }, async () => {
  const readme = await fs.readFile(path.join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Share an image'));
  const block = /```sh\n([\s\S]*?)```/.exec(section)![1]!;
  const lines = block.split('\n').map((l) => l.replace(/\s+#.*$/, '').trim()).filter((l) => l.startsWith('sifpack '));
  expect(lines.map((l) => l.split(' ')[1])).toEqual(['sign', 'push', 'pull', 'pull']);
  expect(lines[2]).toContain('--verify --key');

  const reg = `${service('SIFPACK_TEST_REGISTRY')}/issue13-${randomBytes(4).toString('hex')}`;
  const home = path.join(dir, 'home');
  await fs.mkdir(home);
  const envOf = (where: string) => ({ HOME: home, XDG_CACHE_HOME: path.join(where, 'cache') });
  // Where it was built, and "another cluster" (its own directory and cache, only the public key).
  const here = path.join(dir, 'here');
  const there = path.join(dir, 'there');
  await fs.mkdir(here);
  await fs.mkdir(there);
  await fs.copyFile(path.join(ROOT, 'test', 'fixtures', 'signing', 'one-group.sif'), path.join(here, 'analysis.sif'));
  await fs.copyFile(path.join(KEYS, 'ed25519-private.pem'), path.join(here, 'sign-ed25519.pem'));
  await fs.copyFile(path.join(KEYS, 'ed25519-public.pem'), path.join(there, 'sign-ed25519.pub.pem'));

  let pinned = '';
  for (const line of lines) {
    const text = line.replaceAll('ghcr.io/mylab', reg).replace('@sha256:…', pinned ? `@${pinned.split('@')[1]}` : '@sha256:…');
    const where = text.includes(' pull ') ? there : here;
    const r = await sifpack(text.split(/\s+/).slice(1), { cwd: where, env: envOf(where) });
    expect(r.code, `${text}\n${r.stderr}`).toBe(0);
    if (text.includes(' push ')) {
      pinned = r.stdout.trim();
      expect(pinned).toMatch(new RegExp(`^${reg}/analysis@sha256:[0-9a-f]{64}$`));
    }
  }
  // pull --verify wrote the signed image under apptainer's name; the pull by digest the same bytes
  execFileSync('cmp', [path.join(here, 'analysis.sif'), path.join(there, 'analysis_1.0.sif')]);
  execFileSync('cmp', [path.join(here, 'analysis.sif'), path.join(there, 'analysis.sif')]);
  expect((await sifpack(['verify', 'analysis.sif', '--key', 'sign-ed25519.pub.pem'], { cwd: there, env: envOf(there) })).code).toBe(0);
});
