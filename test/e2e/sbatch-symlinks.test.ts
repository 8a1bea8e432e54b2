/** Issue 11: bind sources through symlinks, and a symlinked working directory, with the built CLI. */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers.js';
import { sifpack } from './cli.js';

let dir: string;
beforeAll(async () => {
  dir = await fs.realpath(await tempDir());
  await fs.mkdir(path.join(dir, 'lustre/project'), { recursive: true });
  await fs.symlink(path.join(dir, 'lustre/project'), path.join(dir, 'scratch'));
  await fs.writeFile(path.join(dir, 'lustre/project/a.py'), 'print(1)\n');
  await fs.writeFile(path.join(dir, 'lustre/project/x.sif'), 'x');
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

describe('sbatch: symlinks', () => {
  it('a bind source that is a symlink is bound by its target, and the user is told', async () => {
    const r = await sifpack(['sbatch', 'a.py', '--image', 'x.sif', '--bind', path.join(dir, 'scratch'), '--bind', `${path.join(dir, 'scratch')}:/data:ro`], { cwd: path.join(dir, 'lustre/project'), env: { HOME: dir, PWD: path.join(dir, 'lustre/project') } });
    expect(r.code).toBe(0);
    const real = path.join(dir, 'lustre/project');
    expect(r.stdout).toContain(`-B ${real}:${path.join(dir, 'scratch')} -B ${real}:/data:ro `);
    expect(r.stderr).toContain(`--bind ${path.join(dir, 'scratch')}: a symlink to ${real}`);
    expect(r.stderr).not.toMatch(/working directory/);
  });

  it('warns when the working directory (the shell\'s $PWD) is a symlink', async () => {
    const r = await sifpack(['sbatch', 'a.py', '--image', 'x.sif'], { cwd: path.join(dir, 'lustre/project'), env: { HOME: dir, PWD: path.join(dir, 'scratch') } });
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`the working directory ${path.join(dir, 'scratch')} is a symlink to ${path.join(dir, 'lustre/project')}`);
  });
});
