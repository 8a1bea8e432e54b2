import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers.js';
import { sifpack } from './cli.js';

let dir: string;
beforeAll(async () => {
  dir = await tempDir();
  await fs.writeFile(path.join(dir, 'train.py'), 'print(1)\n');
  await fs.writeFile(path.join(dir, 'train.sif'), 'x');
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

describe('sifpack sbatch (built CLI)', () => {
  it('writes an executable job script; script options after -- reach the srun line', async () => {
    const r = await sifpack(['sbatch', 'train.py', 'data dir', '--image', 'train.sif', '--time', '01:00:00', '-o', 'train.sbatch', '--', '--lr', '0.1'], { cwd: dir });
    expect(r.stderr).toContain('wrote train.sbatch');
    expect(r.code).toBe(0);
    const text = await fs.readFile(path.join(dir, 'train.sbatch'), 'utf8');
    expect(text).toContain(`srun apptainer exec --cleanenv ${path.join(dir, 'train.sif')} python train.py 'data dir' --lr 0.1\n`);
    expect((await fs.stat(path.join(dir, 'train.sbatch'))).mode & 0o111).not.toBe(0);
  });

  it.each([
    [['--time', '1h'], /--time: "1h" is not a time limit[\s\S]*valid forms: MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS/],
    [['--mem', '4GB'], /--mem: "4GB" is not a memory size[\s\S]*500M, 4G/],
    [['--array', '5-1'], /--array: "5-1" is not an array spec: 5-1 runs backwards[\s\S]*0-99%10/],
    [['--gpus', 'x'], /--gpus: "x" is not valid; expected a whole number >= 0/],
    [['--bind', 'rel/path'], /--bind: "rel\/path" is not a bind: SRC must be an absolute path/],
    [['--env', '1BAD=x'], /--env: "1BAD=x" is not NAME=VALUE/],
    [['--lr', '0.1'], /unknown option '--lr'/],
  ])('bad %j exits 2 naming the flag and the valid forms', async (extra, message) => {
    const r = await sifpack(['sbatch', 'train.py', '--image', 'train.sif', ...extra], { cwd: dir });
    expect(r.stderr).toMatch(message);
    expect(r.code).toBe(2);
  });
});
