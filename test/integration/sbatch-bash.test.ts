/**
 * Runs rendered job scripts with real bash, with recording doubles of srun,
 * module and apptainer on PATH (test/doubles/bin): the apptainer double runs
 * the command on the host's python3, so these prove what the Python process
 * receives — argv and environment — through every layer of quoting.
 */
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveSettings } from '../../src/config/load.js';
import { buildJob } from '../../src/model/slurm-job.js';
import { renderSbatch } from '../../src/render/sbatch.js';
import { HOSTILE } from '../fixtures/hostile.js';
import { ROOT, tempDir } from '../helpers.js';

const run = promisify(execFile);


const DUMP = `import json, os, sys
out = {"argv": sys.argv[1:], "env": {k: os.environ.get(k) for k in ("SLURM_ARRAY_TASK_ID", "SLURM_JOB_ID", "SEED", "MSG", "HOST_SECRET")}}
with open("dump.json", "w", encoding="utf-8") as f:
    json.dump(out, f)
`;

let dir: string;
beforeAll(async () => {
  dir = await tempDir();
  await fs.writeFile(path.join(dir, 'dump.py'), DUMP);
  await fs.writeFile(path.join(dir, 'image.sif'), 'not really a SIF: the double only checks it exists');
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

async function renderAndRun(flags: Record<string, unknown>, args: string[], env: Record<string, string>, array?: string) {
  const { settings, sources } = resolveSettings({ flags: { image: 'image.sif', ...flags }, cwd: dir });
  const job = buildJob({ settings, sources, script: 'dump.py', args, cwd: dir, ...(array ? { array } : {}) });
  const script = path.join(dir, 'job.sbatch');
  await fs.writeFile(script, renderSbatch(job, { version: 'test' }).text, { mode: 0o755 });
  await fs.rm(path.join(dir, 'module.argv'), { force: true });
  await run('bash', [script], {
    cwd: dir,
    env: { PATH: `${path.join(ROOT, 'test/doubles/bin')}:${process.env.PATH}`, HOME: dir, SIFPACK_RECORD: dir, HOST_SECRET: 'must-not-leak', ...env },
  });
  const dump = JSON.parse(await fs.readFile(path.join(dir, 'dump.json'), 'utf8')) as { argv: string[]; env: Record<string, string | null> };
  const argv = async (f: string) => (await fs.readFile(path.join(dir, f), 'utf8')).split('\0').slice(0, -1);
  return { dump, apptainerArgv: await argv('apptainer.argv'), srunArgv: await argv('srun.argv'), job };
}

describe('a rendered job script run by real bash (recording doubles of srun, module and apptainer)', () => {
  it('the Python process receives every hostile argument unchanged', async () => {
    const { dump, apptainerArgv, srunArgv } = await renderAndRun({}, HOSTILE, { SLURM_JOB_ID: '77' });
    expect(dump.argv).toEqual(HOSTILE);
    expect(apptainerArgv.slice(0, 2)).toEqual(['exec', '--cleanenv']);
    expect(apptainerArgv.slice(2, 5)).toEqual([path.join(dir, 'image.sif'), 'python', 'dump.py']);
    expect(srunArgv[0]).toBe('apptainer');
  });

  it('--cleanenv keeps the host out, but SLURM_ARRAY_TASK_ID, SLURM_JOB_ID and --env values get in', async () => {
    const { dump } = await renderAndRun({ env: ['SEED=42', "MSG=it's $HOME; `id`"] }, [], { SLURM_JOB_ID: '77', SLURM_ARRAY_TASK_ID: '7' }, '0-9');
    expect(dump.env).toEqual({ SLURM_ARRAY_TASK_ID: '7', SLURM_JOB_ID: '77', SEED: '42', MSG: "it's $HOME; `id`", HOST_SECRET: null });
  });

  it('modules are loaded with their names as given, GPUs add --nv, binds are passed as -B', async () => {
    const { apptainerArgv } = await renderAndRun({ module: ['apptainer/1.3.4', 'cuda 12'], gpus: '2', bind: ['/scratch', '/data:/in:ro'] }, ['x'], {});
    expect(apptainerArgv.slice(0, 7)).toEqual(['exec', '--cleanenv', '--nv', '-B', '/scratch', '-B', '/data:/in:ro']);
    const modules = (await fs.readFile(path.join(dir, 'module.argv'), 'utf8')).split('\n').filter(Boolean).map((l) => l.split('\0').filter(Boolean));
    expect(modules).toEqual([['load', 'apptainer/1.3.4'], ['load', 'cuda 12']]);
  });

  it('without --cleanenv the host environment reaches the script', async () => {
    const { dump, apptainerArgv } = await renderAndRun({ cleanenv: false }, [], {});
    expect(apptainerArgv).not.toContain('--cleanenv');
    expect(dump.env.HOST_SECRET).toBe('must-not-leak');
  });
});
