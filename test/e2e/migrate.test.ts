import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, tempDir } from '../helpers.js';
import { sifpack } from './cli.js';

const FIXTURES = path.join(ROOT, 'test/fixtures/job-scripts');
let dir: string;
beforeAll(async () => {
  dir = await tempDir();
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

// Each case starts node once or twice; the shared machine can be slow (load 30 on 2 cores seen).
describe('sifpack migrate (built CLI)', { timeout: 120_000 }, () => {
  it('done-when: conda-activate-hook.slurm --image torch.sif prints the new script; the srun line runs the image; every #SBATCH line kept', async () => {
    const r = await sifpack(['migrate', 'test/fixtures/job-scripts/conda-activate-hook.slurm', '--image', 'torch.sif'], { cwd: ROOT });
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines.filter((l) => l.startsWith('srun '))).toEqual(['srun apptainer exec --nv torch.sif python train.py --config configs/base.yaml --epochs 20']);
    const original = await fs.readFile(path.join(FIXTURES, 'conda-activate-hook.slurm'), 'utf8');
    expect(lines.filter((l) => l.startsWith('#SBATCH'))).toEqual(original.split('\n').filter((l) => l.startsWith('#SBATCH')));
    expect(lines[0]).toBe('#!/bin/bash');
    // stderr: what was found, the build commands, and the diff.
    expect(r.stderr).toContain('sifpack: found the conda environment named torch-2.3 (line 11: conda activate torch-2.3)');
    expect(r.stderr).toContain('  sifpack export -n torch-2.3 -o environment.yml --lock environment.lock\n  sifpack build environment.yml --lock environment.lock -o torch.sif\n');
    expect(r.stderr).toContain('- conda activate torch-2.3\n');
    expect(r.stderr).toContain('+ srun apptainer exec --nv torch.sif python train.py --config configs/base.yaml --epochs 20\n');
  });

  it('-o writes an executable file and prints the diff; an existing file needs --force; the original is never overwritten by accident', async () => {
    await fs.copyFile(path.join(FIXTURES, 'abs-prefix.slurm'), path.join(dir, 'job.slurm'));
    const r = await sifpack(['migrate', 'job.slurm', '--image', 'climate.sif', '-o', 'new.slurm'], { cwd: dir });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^--- job.slurm\n\+\+\+ new.slurm\n/);
    expect(r.stdout).toContain('- source /home/alice/miniforge3/bin/activate "$ENV_DIR"\n');
    expect(await fs.readFile(path.join(dir, 'new.slurm'), 'utf8')).toContain('\napptainer exec climate.sif python fit.py --input data/obs.nc --out results/\n');
    expect((await fs.stat(path.join(dir, 'new.slurm'))).mode & 0o111).not.toBe(0);
    const again = await sifpack(['migrate', 'job.slurm', '--image', 'climate.sif', '-o', 'new.slurm'], { cwd: dir });
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/new.slurm.*exists/);
    const self = await sifpack(['migrate', 'job.slurm', '-o', 'job.slurm'], { cwd: dir });
    expect(self.code).toBe(2);
    expect(self.stderr).toContain('-o job.slurm: that is the script being migrated');
  });

  it('--json: one object with the env, kept directives, removed and rewritten lines, and the new script', async () => {
    const r = await sifpack(['migrate', path.join(FIXTURES, 'explicit-python.slurm'), '--json'], { cwd: dir });
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.env).toEqual({ kind: 'prefix', prefix: '/scratch/bob/envs/viz' });
    expect(j.image).toBe('viz.sif');
    expect(j.directives.map((d: { line: number }) => d.line)).toEqual([2, 3, 4, 5]);
    expect(j.removed).toEqual([
      { line: 9, text: 'source /opt/miniconda3/bin/activate "$prefix"', why: 'activated the environment on the host' },
      { line: 12, text: 'conda deactivate', why: 'deactivates the environment' },
    ]);
    expect(j.rewritten.map((x: { line: number }) => x.line)).toEqual([10, 11]);
    expect(j.text).toContain('\napptainer exec viz.sif python -m viz.export figures/\n');
    expect(j.buildCommands[0]).toBe('sifpack export -p /scratch/bob/envs/viz -o environment.yml --lock environment.lock');
    expect(r.stderr).toBe('');
  });

  it.each([
    ['venv.slurm', /venv.slurm:7: this activates a plain virtual environment \(venv\), not a conda environment .*: source \$HOME\/venvs\/scrape\/bin\/activate/],
    ['two-envs.slurm', /two-envs.slurm: uses 2 different environments[\s\S]*line 2: conda activate a[\s\S]*line 4: source \/opt\/conda\/bin\/activate \/envs\/b/],
    ['quotes.slurm', /quotes.slurm:3: this line opens a " quote that is never closed: python "train.py --lr 0.1/],
    ['no-python.slurm', /no-python.slurm:2: the environment is activated here, but no python command .* runs in it: conda activate a/],
    ['missing.slurm', /missing.slurm: cannot read the job script \(no such file\)/],
  ])('%s exits 2 quoting the line, nothing written', async (file, message) => {
    const texts: Record<string, string> = {
      'two-envs.slurm': '#!/bin/bash\nconda activate a\npython x.py\nsource /opt/conda/bin/activate /envs/b\npython y.py\n',
      'quotes.slurm': '#!/bin/bash\nconda activate a\npython "train.py --lr 0.1\n',
      'no-python.slurm': '#!/bin/bash\nconda activate a\necho done\n',
    };
    if (file === 'venv.slurm') await fs.copyFile(path.join(FIXTURES, file), path.join(dir, file));
    else if (texts[file]) await fs.writeFile(path.join(dir, file), texts[file]!);
    const r = await sifpack(['migrate', file, '--image', 'x.sif', '-o', 'out.slurm'], { cwd: dir, env: { HOME: '/home/u' } });
    expect(r.stderr).toMatch(message);
    expect(r.stderr).not.toContain('internal error');
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    await expect(fs.access(path.join(dir, 'out.slurm'))).rejects.toThrow();
  });
});
