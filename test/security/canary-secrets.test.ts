/**
 * Canary secrets: a credential that enters sifpack never leaves it in plain
 * text. A unique canary is planted in every place a secret can enter the
 * export/def/sbatch path — channel tokens (/t/TOKEN/) and user:password@ in the
 * prefix's records, its .condarc and its history, a pip index URL with
 * credentials — and every output file, stdout and stderr are searched for it.
 * A hand-written environment.yml holding a plaintext secret is refused (it
 * would be copied into the image), and the refusal does not echo the secret.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sifpack } from '../e2e/cli.js';
import { ROOT, tempDir } from '../helpers.js';

const CANARY = `canary${randomBytes(8).toString('hex')}`;
const TOKEN = `tok${CANARY}`;
const PASSWORD = `pw${CANARY}`;
let dir: string;
let prefix: string;

async function allText(d: string): Promise<string> {
  let out = '';
  for (const e of await fs.readdir(d, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) out += await fs.readFile(path.join(e.parentPath, e.name), 'latin1');
  }
  return out;
}

beforeAll(async () => {
  dir = await tempDir('sifpack-canary-');
  prefix = path.join(dir, 'envs', 'analysis');
  await fs.cp(path.join(ROOT, 'examples', 'pandas-analysis', 'envs', 'analysis'), prefix, { recursive: true });
  // Every record came from a private channel reached with a token and a password.
  const meta = path.join(prefix, 'conda-meta');
  for (const f of (await fs.readdir(meta)).filter((n) => n.endsWith('.json'))) {
    const r = JSON.parse(await fs.readFile(path.join(meta, f), 'utf8')) as { channel?: string; url?: string };
    if (r.channel) r.channel = r.channel.replace('https://conda.anaconda.org/', `https://lab:${PASSWORD}@conda.example.org/t/${TOKEN}/`);
    if (r.url) r.url = r.url.replace('https://conda.anaconda.org/', `https://lab:${PASSWORD}@conda.example.org/t/${TOKEN}/`);
    await fs.writeFile(path.join(meta, f), JSON.stringify(r));
  }
  await fs.writeFile(path.join(prefix, '.condarc'), `channels:\n  - https://lab:${PASSWORD}@conda.example.org/t/${TOKEN}/conda-forge\n`);
  await fs.appendFile(path.join(meta, 'history'), `==> 2024-03-05 10:00:00 <==\n# cmd: conda install -c https://conda.example.org/t/${TOKEN}/conda-forge scipy\n# update specs: ["scipy"]\n`);
  await fs.mkdir(path.join(dir, 'out'));
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

describe('canary secrets', () => {
  it('export and def (both formats, and --from-prefix) write no credential anywhere, and say none', async () => {
    const out = path.join(dir, 'out');
    const runs = [
      await sifpack(['export', '-p', prefix, '-o', path.join(out, 'environment.yml'), '--lock', path.join(out, 'environment.lock')]),
      await sifpack(['export', '-p', prefix, '--from-history', '-o', path.join(out, 'history.yml'), '--json']),
      await sifpack(['def', path.join(out, 'environment.yml'), '--lock', path.join(out, 'environment.lock'), '-o', path.join(out, 'analysis.def'), '--json']),
      await sifpack(['def', path.join(out, 'environment.yml'), '--format', 'docker', '-o', path.join(out, 'Dockerfile')]),
      await sifpack(['def', '--from-prefix', prefix, '-o', path.join(out, 'prefix.def')]),
    ];
    for (const r of runs) {
      expect(r.stderr).not.toMatch(/internal error/);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout + r.stderr).not.toContain(CANARY);
    }
    const written = await allText(out);
    expect(written.length).toBeGreaterThan(1000); // the files are there and were searched
    expect(written).toContain('conda.example.org'); // the channel is kept, only the secret goes
    expect(written).not.toContain(CANARY);
    expect(runs[0]!.stderr).toMatch(/credential/i); // and the user is told
  }, 120_000);

  it('a hand-written environment.yml with a plaintext token or password is refused without echoing it', async () => {
    const cases = [
      `name: a\nchannels:\n  - https://conda.example.org/t/${TOKEN}/conda-forge\ndependencies:\n  - python=3.11\n`,
      `name: a\nchannels:\n  - conda-forge\ndependencies:\n  - python=3.11\n  - pip:\n      - --extra-index-url https://lab:${PASSWORD}@pypi.example.org/simple\n      - requests==2.31.0\n`,
      `name: a\nchannels:\n  - conda-forge\ndependencies:\n  - python=3.11\n  - pip:\n      - --index-url=https://lab:${PASSWORD}@pypi.example.org/simple\n`,
    ];
    for (const [i, text] of cases.entries()) {
      const f = path.join(dir, `hand-${i}.yml`);
      await fs.writeFile(f, text);
      for (const args of [['def', f, '-o', path.join(dir, `hand-${i}.def`)], ['def', f, '--format', 'docker']]) {
        const r = await sifpack(args);
        expect(r.code, r.stderr).toBe(2);
        expect(r.stderr).toMatch(/password or token is written in plain text/);
        expect(r.stdout + r.stderr).not.toContain(CANARY);
      }
      await expect(fs.access(path.join(dir, `hand-${i}.def`))).rejects.toThrow();
    }
    // The ${VAR} form is no secret: accepted.
    const ok = path.join(dir, 'vars.yml');
    await fs.writeFile(ok, 'name: a\nchannels:\n  - https://${CONDA_USER}:${CONDA_PASSWORD}@conda.example.org/t/${CONDA_TOKEN}/conda-forge\ndependencies:\n  - python=3.11\n');
    const r = await sifpack(['def', ok]);
    expect(r.code, r.stderr).toBe(0);
  }, 120_000);
});
