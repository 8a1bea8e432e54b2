/**
 * `sifpack build` with the argument habits of apptainer users: the image
 * first (`build out.sif env.yml`), or a Dockerfile that `def --format docker`
 * wrote. Each is accepted or answered with what to type; nothing is built here
 * (the inputs are missing or refused before any builder runs).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildArguments } from '../../src/commands/build.js';
import { ROOT, tempDir } from '../helpers.js';
import { sifpack } from './cli.js';

let dir: string;
beforeAll(async () => {
  dir = await tempDir();
  await fs.copyFile(path.join(ROOT, 'examples', 'pandas-analysis', 'environment.yml'), path.join(dir, 'environment.yml'));
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

describe('build arguments in apptainer\'s order', () => {
  it('IMAGE.sif SOURCE is read as -o IMAGE.sif SOURCE', () => {
    expect(buildArguments(['out.sif', 'env.yml'], undefined)).toEqual({ input: 'env.yml', output: 'out.sif' });
    expect(buildArguments(['env.yml'], 'x.sif')).toEqual({ input: 'env.yml', output: 'x.sif' });
    expect(buildArguments([], undefined)).toEqual({ input: 'environment.yml' });
  });

  it('the built CLI takes the image first: the source is what it then reads', async () => {
    const r = await sifpack(['build', 'out.sif', 'missing.yml'], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('ENV_FILE|DEF_FILE missing.yml: no such file');
    await expect(fs.stat(path.join(dir, 'out.sif'))).rejects.toThrow(/ENOENT/);
  });

  it.each([
    [['out.sif'], 'out.sif is an image: build reads an environment.yml or a definition file and writes the image', 'hint: sifpack build environment.yml -o out.sif'],
    [['environment.yml', 'out.sif'], 'too many arguments: environment.yml out.sif; build takes one ENV_FILE or DEF_FILE', 'hint: sifpack build environment.yml -o out.sif'],
    [['out.sif', 'environment.yml', '-o', 'other.sif'], 'two images to write: out.sif (apptainer\'s order) and -o other.sif', 'hint: give one: sifpack build environment.yml -o out.sif'],
  ])('%j: exit 2 saying exactly what to type', async (args, message, hint) => {
    const r = await sifpack(['build', ...args], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(message);
    expect(r.stderr).toContain(hint);
  });
});

describe('build Dockerfile', () => {
  it('the Dockerfile `def --format docker` wrote: exit 2 naming both ways to build it, not a YAML error', async () => {
    const def = await sifpack(['def', 'environment.yml', '--format', 'docker', '-o', 'Dockerfile'], { cwd: dir });
    expect(def.code).toBe(0);
    for (const name of ['Dockerfile', 'renamed.txt']) {
      if (name !== 'Dockerfile') await fs.copyFile(path.join(dir, 'Dockerfile'), path.join(dir, name));
      const r = await sifpack(['build', name], { cwd: dir });
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`sifpack: error: ${name} is a Dockerfile: build reads an environment.yml or an apptainer definition file`);
      expect(r.stderr).toContain('sifpack build environment.yml --builder docker');
      expect(r.stderr).toContain(`docker build -t NAME:TAG -f ${name} . && sifpack convert NAME:TAG -o NAME.sif`);
      expect(r.stderr).not.toMatch(/YAML/);
    }
  });
});
