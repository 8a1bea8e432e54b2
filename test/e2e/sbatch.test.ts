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
    const r = await sifpack(['sbatch', 'train.py', 'data dir', '--image', 'train.sif', '--time', '01:00:00', '--script-out', 'train.sbatch', '--', '--lr', '0.1'], { cwd: dir });
    expect(r.stderr).toContain('wrote train.sbatch');
    expect(r.code).toBe(0);
    const text = await fs.readFile(path.join(dir, 'train.sbatch'), 'utf8');
    expect(text).toContain(`srun apptainer exec --cleanenv ${path.join(dir, 'train.sif')} python train.py 'data dir' --lr 0.1\n`);
    expect((await fs.stat(path.join(dir, 'train.sbatch'))).mode & 0o111).not.toBe(0);
  });

  it.each([
    [['--time', '1h'], /--time: "1h" is not a time limit[\s\S]*valid forms: MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS/],
    [['--mem', '4.5G'], /--mem: "4.5G" is not a memory size[\s\S]*500M, 4G/],
    [['--array', '5-1'], /--array: "5-1" is not an array spec: 5-1 runs backwards[\s\S]*0-99%10/],
    [['--gpus', 'x'], /--gpus: "x" is not valid; expected a whole number >= 0/],
    [['--bind', 'rel/path'], /--bind: "rel\/path" is not a bind: SRC must be an absolute path/],
    [['--env', '1BAD=x'], /--env: "1BAD=x" is not NAME=VALUE/],
    [['--lr', '0.1'], /unknown option '--lr'\nIf '--lr' is for the script, put the script's arguments after `--`:\n  sifpack sbatch train.py --image train.sif -- --lr 0.1\n/],
    [['--mail-type', 'END,SOMETIMES'], /--mail-type: "END,SOMETIMES" is not a mail type list \("SOMETIMES" unknown\)[\s\S]*valid types: NONE, BEGIN, END/],
    [['-N', 'two'], /--nodes: "two" is not a node count/],
  ])('bad %j exits 2 naming the flag and the valid forms', async (extra, message) => {
    const r = await sifpack(['sbatch', 'train.py', '--image', 'train.sif', ...extra], { cwd: dir });
    expect(r.stderr).toMatch(message);
    expect(r.code).toBe(2);
  });

  it('short flags mean what they mean in Slurm\'s sbatch: -o output, -e error, -q qos, -N, -n, -C ...; --script-out is the job script', async () => {
    const r = await sifpack(
      ['sbatch', 'train.py', '--image', 'train.sif', '-J', 'tr', '-t', 'UNLIMITED', '-o', 'logs/%x_%j.out', '-e', 'err/%j.err', '-q', 'normal', '-N', '1-2', '-n', '4', '-C', 'avx512', '--reservation', 'maint', '--exclusive', '--mem', '4GB', '-c', '2', '-p', 'short', '-A', 'proj', '-D', dir, '-a', '0-3', '--mail-type', 'END,fail', '--mail-user', 'me@example.org', '--script-out', 'habits.sbatch'],
      { cwd: dir },
    );
    expect(r.code).toBe(0);
    const text = await fs.readFile(path.join(dir, 'habits.sbatch'), 'utf8');
    expect(text.split('\n').filter((l) => l.startsWith('#SBATCH'))).toEqual([
      '#SBATCH --job-name=tr',
      '#SBATCH --output=logs/%x_%j.out',
      '#SBATCH --error=err/%j.err',
      `#SBATCH --chdir=${dir}`,
      '#SBATCH --partition=short',
      '#SBATCH --account=proj',
      '#SBATCH --qos=normal',
      '#SBATCH --reservation=maint',
      '#SBATCH --constraint=avx512',
      '#SBATCH --time=UNLIMITED',
      '#SBATCH --nodes=1-2',
      '#SBATCH --ntasks=4',
      '#SBATCH --exclusive',
      '#SBATCH --mem=4G',
      '#SBATCH --cpus-per-task=2',
      '#SBATCH --array=0-3',
      '#SBATCH --mail-type=END,fail',
      '#SBATCH --mail-user=me@example.org',
    ]);
    // Slurm fails a job whose output directory is missing, with no output: say so.
    expect(r.stderr).toContain('warning: --output logs/%x_%j.out: logs/ does not exist; `sifpack submit` creates it');
    expect(r.stderr).toContain('warning: --error err/%j.err: err/ does not exist');
  });

  it('--quiet after the command still quiets it (sbatch\'s -q is --qos, as in Slurm)', async () => {
    const r = await sifpack(['sbatch', 'train.py', '--image', 'train.sif', '--quiet', '--script-out', 'quiet.sbatch'], { cwd: dir });
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    const loud = await sifpack(['sbatch', 'train.py', '--image', 'train.sif', '--script-out', 'loud.sbatch'], { cwd: dir });
    expect(loud.stderr).toContain('wrote loud.sbatch');
  });

  it('global options work before and after the command name: --profile, --config', async () => {
    await fs.writeFile(path.join(dir, 'site.yml'), 'profiles:\n  lumi:\n    partition: small-g\n');
    for (const args of [['--config', 'site.yml', '--profile', 'lumi', 'sbatch', 'train.py'], ['sbatch', 'train.py', '--config', 'site.yml', '--profile', 'lumi']]) {
      const r = await sifpack([...args, '--image', 'train.sif'], { cwd: dir });
      expect(r.code).toBe(0);
      expect(r.stdout).toContain('#SBATCH --partition=small-g\n');
    }
  });
});
