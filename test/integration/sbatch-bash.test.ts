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
import { shellQuote } from '../../src/render/shell-quote.js';
import { HOSTILE } from '../fixtures/hostile.js';
import { ROOT, tempDir } from '../helpers.js';

const run = promisify(execFile);
const DOUBLES = path.join(ROOT, 'test/doubles/bin');

const DUMP = `import json, os, sys
names = ("SLURM_PROCID", "SLURM_LOCALID", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TMPDIR", "SLURM_EXPORT_ENV", "SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_JOB_ID", "SLURM_JOB_ID", "SLURM_CPUS_PER_TASK", "CUDA_VISIBLE_DEVICES", "SRUN_CPUS_PER_TASK", "SEED", "MSG", "HOST_SECRET", "PYTHONPATH")
out = {"argv": sys.argv[1:], "env": {k: os.environ.get(k) for k in names}}
with open("dump.json", "w", encoding="utf-8") as f:
    json.dump(out, f)
`;

let dir: string;
let extraBin: string;
beforeAll(async () => {
  dir = await tempDir();
  await fs.writeFile(path.join(dir, 'dump.py'), DUMP);
  await fs.writeFile(path.join(dir, 'image.sif'), 'not really a SIF: the double only checks it exists');
  // A singularity double: the apptainer one with SingularityCE's prefix.
  extraBin = path.join(dir, 'bin');
  await fs.mkdir(extraBin);
  const apptainer = await fs.readFile(path.join(DOUBLES, 'apptainer'), 'utf8');
  await fs.writeFile(path.join(extraBin, 'singularity'), apptainer.replaceAll('APPTAINERENV_', 'SINGULARITYENV_').replace('apptainer.argv', 'singularity.argv'), { mode: 0o755 });
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

interface Dump {
  argv: string[];
  env: Record<string, string | null>;
}

async function renderAndRun(flags: Record<string, unknown>, args: string[], env: Record<string, string>, array?: string) {
  const { settings, sources } = resolveSettings({ flags: { image: 'image.sif', ...flags }, cwd: dir });
  const job = buildJob({ settings, sources, script: 'dump.py', args, cwd: dir, ...(array ? { array } : {}) });
  const script = path.join(dir, 'job.sbatch');
  await fs.writeFile(script, renderSbatch(job, { version: 'test' }).text, { mode: 0o755 });
  for (const f of ['module.argv', 'dump.json', 'srun.argv', 'apptainer.argv', 'singularity.argv']) await fs.rm(path.join(dir, f), { force: true });
  await run('bash', [script], {
    cwd: dir,
    env: { PATH: `${extraBin}:${DOUBLES}:${process.env.PATH}`, HOME: dir, SIFPACK_RECORD: dir, HOST_SECRET: 'must-not-leak', PYTHONPATH: '/host/site-packages', ...env },
  });
  const dump = JSON.parse(await fs.readFile(path.join(dir, 'dump.json'), 'utf8')) as Dump;
  const argv = async (f: string) => (await fs.readFile(path.join(dir, f), 'utf8')).split('\0').slice(0, -1);
  return { dump, runtimeArgv: await argv(`${job.runtime}.argv`), srunArgv: await argv('srun.argv'), job };
}

describe('a rendered job script run by real bash, with recording doubles of srun, module and apptainer', () => {
  it('the Python process receives every hostile argument unchanged', async () => {
    const { dump, runtimeArgv, srunArgv } = await renderAndRun({}, HOSTILE, { SLURM_JOB_ID: '77' });
    expect(dump.argv).toEqual(HOSTILE);
    // srun starts the per-task wrapper (bash -c "$per_task" sifpack-task), which execs apptainer.
    expect(srunArgv.slice(0, 2)).toEqual(['bash', '-c']);
    expect(srunArgv.slice(3)).toEqual(['sifpack-task', 'apptainer', 'exec', '--cleanenv', path.join(dir, 'image.sif'), 'python', 'dump.py', ...HOSTILE]);
    expect(runtimeArgv).toEqual(srunArgv.slice(5));
  });

  it('hostile arguments survive binds, GPUs, modules and env alongside them', async () => {
    const { dump, runtimeArgv } = await renderAndRun({ bind: ['/tmp'], gpus: '1', module: ['m'], env: ['SEED=1'] }, HOSTILE, {});
    expect(dump.argv).toEqual(HOSTILE);
    expect(runtimeArgv.slice(0, 5)).toEqual(['exec', '--cleanenv', '--nv', '-B', '/tmp']);
  });

  it('--cleanenv keeps the host out, but SLURM_ARRAY_TASK_ID, the job ids, CPUs, GPUs and --env values get in', async () => {
    const slurm = { SLURM_JOB_ID: '78', SLURM_ARRAY_JOB_ID: '77', SLURM_ARRAY_TASK_ID: '7', SLURM_CPUS_PER_TASK: '4', CUDA_VISIBLE_DEVICES: '0,1' };
    const { dump } = await renderAndRun({ env: ['SEED=42', "MSG=it's $HOME; `id`\nand ünï"] }, [], slurm, '0-9');
    expect(dump.env).toMatchObject({ ...slurm, SRUN_CPUS_PER_TASK: null, SEED: '42', MSG: "it's $HOME; `id`\nand ünï", HOST_SECRET: null, PYTHONPATH: null });
  });

  it('--cpus-per-task is asked of srun again (SRUN_CPUS_PER_TASK), from the job or the rendered default', async () => {
    // Without --cleanenv the double hands srun's whole environment to Python, so it shows what srun saw.
    const fromJob = await renderAndRun({ cpusPerTask: '4', cleanenv: false }, [], { SLURM_CPUS_PER_TASK: '6' });
    expect(fromJob.dump.env.SRUN_CPUS_PER_TASK).toBe('6');
    const fallback = await renderAndRun({ cpusPerTask: '4', cleanenv: false }, [], {});
    expect(fallback.dump.env.SRUN_CPUS_PER_TASK).toBe('4');
  });

  it('modules are loaded with their names as given, GPUs add --nv, binds are passed as -B', async () => {
    const { runtimeArgv } = await renderAndRun({ module: ['apptainer/1.3.4', 'cuda 12'], gpus: '2', bind: ['/scratch', '/data:/in:ro'] }, ['x'], {});
    expect(runtimeArgv.slice(0, 7)).toEqual(['exec', '--cleanenv', '--nv', '-B', '/scratch', '-B', '/data:/in:ro']);
    const modules = (await fs.readFile(path.join(dir, 'module.argv'), 'utf8')).split('\n').filter(Boolean).map((l) => l.split('\0').filter(Boolean));
    expect(modules).toEqual([['load', 'apptainer/1.3.4'], ['load', 'cuda 12']]);
  });

  it('a module function that reads unset variables (as Lmod 9.2.4 does) does not trip set -u', async () => {
    // bash imports BASH_FUNC_module%% as the function `module`, the way Slurm hands Lmod's to a job.
    const lmodLike = '() {  : "$LD_PRELOAD"; printf \'%s\\0\' "$@" >> "$SIFPACK_RECORD/module.argv"; printf \'\\n\' >> "$SIFPACK_RECORD/module.argv"; }';
    const { dump } = await renderAndRun({ module: ['apptainer'] }, ['ok'], { 'BASH_FUNC_module%%': lmodLike });
    expect(dump.argv).toEqual(['ok']);
    expect(await fs.readFile(path.join(dir, 'module.argv'), 'utf8')).toBe('load\0apptainer\0\n');
  });

  it('a failing module load stops the job before srun', async () => {
    const failing = '() { echo "module: $2 not found" >&2; return 1; }';
    await expect(renderAndRun({ module: ['nope'] }, [], { 'BASH_FUNC_module%%': failing })).rejects.toThrow(/module: nope not found/);
    await expect(fs.access(path.join(dir, 'srun.argv'))).rejects.toThrow();
  });

  it('singularity: SINGULARITYENV_ carries the task id and --env values; --rocm for AMD', async () => {
    const { dump, runtimeArgv, srunArgv } = await renderAndRun({ runtime: 'singularity', gpus: '1', gpuVendor: 'amd', env: ['SEED=9'] }, HOSTILE, { SLURM_ARRAY_TASK_ID: '7' }, '0-9');
    expect(srunArgv[4]).toBe('singularity');
    expect(runtimeArgv.slice(0, 3)).toEqual(['exec', '--cleanenv', '--rocm']);
    expect(dump.argv).toEqual(HOSTILE);
    expect(dump.env).toMatchObject({ SLURM_ARRAY_TASK_ID: '7', SEED: '9', HOST_SECRET: null });
  });

  it('without --cleanenv the host environment reaches the script', async () => {
    const { dump, runtimeArgv } = await renderAndRun({ cleanenv: false }, [], {});
    expect(runtimeArgv).not.toContain('--cleanenv');
    expect(dump.env.HOST_SECRET).toBe('must-not-leak');
  });

  // Issue 11: what a real cluster does differently from a login shell.
  it('SLURM_EXPORT_ENV=ALL is exported before srun (sbatch(1): job steps inherit nothing under --export=NONE otherwise)', async () => {
    const { dump } = await renderAndRun({ cleanenv: false }, [], { SLURM_EXPORT_ENV: 'NONE' });
    expect(dump.env.SLURM_EXPORT_ENV).toBe('ALL');
  });

  it('with no `module` function (a non-login batch shell), the site module init is sourced and its function used', async () => {
    const init = path.join(dir, 'init');
    await fs.mkdir(path.join(init, 'init'), { recursive: true });
    await fs.writeFile(path.join(init, 'init/bash'), 'module() { { printf "from-init\\0"; printf "%s\\0" "$@"; printf "\\n"; } >> "$SIFPACK_RECORD/module.argv"; }\n');
    await renderAndRun({ module: ['apptainer'] }, [], { MODULESHOME: init });
    expect(await fs.readFile(path.join(dir, 'module.argv'), 'utf8')).toBe('from-init\0load\0apptainer\0\n');
    // --module-init (a profile's) is tried first.
    const site = path.join(dir, 'site-init.sh');
    await fs.writeFile(site, 'module() { { printf "site\\0"; printf "%s\\0" "$@"; printf "\\n"; } >> "$SIFPACK_RECORD/module.argv"; }\n');
    await renderAndRun({ module: ['x'], moduleInit: site }, [], { MODULESHOME: init });
    expect(await fs.readFile(path.join(dir, 'module.argv'), 'utf8')).toBe('site\0load\0x\0\n');
  });

  it('an exported module function (a login shell) is used as it is: no init is sourced', async () => {
    const init = path.join(dir, 'init2');
    await fs.mkdir(path.join(init, 'init'), { recursive: true });
    await fs.writeFile(path.join(init, 'init/bash'), 'echo sourced > "$SIFPACK_RECORD/init-sourced"\n');
    await renderAndRun({ module: ['m'] }, [], { MODULESHOME: init, 'BASH_FUNC_module%%': '() { printf \'%s\\0\' "$@" >> "$SIFPACK_RECORD/module.argv"; printf \'\\n\' >> "$SIFPACK_RECORD/module.argv"; }' });
    await expect(fs.access(path.join(dir, 'init-sourced'))).rejects.toThrow();
    expect(await fs.readFile(path.join(dir, 'module.argv'), 'utf8')).toBe('load\0m\0\n');
  });

  it('OMP/MKL/OPENBLAS_NUM_THREADS follow SLURM_CPUS_PER_TASK in the container, unless the user set them', async () => {
    const a = await renderAndRun({ cpusPerTask: '6' }, [], { SLURM_CPUS_PER_TASK: '6' });
    expect(a.dump.env).toMatchObject({ OMP_NUM_THREADS: '6', MKL_NUM_THREADS: '6', OPENBLAS_NUM_THREADS: '6' });
    const b = await renderAndRun({ cpusPerTask: '6', env: ['OMP_NUM_THREADS=1'] }, [], { SLURM_CPUS_PER_TASK: '6', MKL_NUM_THREADS: '2' });
    expect(b.dump.env).toMatchObject({ OMP_NUM_THREADS: '1', MKL_NUM_THREADS: '2', OPENBLAS_NUM_THREADS: '6' });
    const c = await renderAndRun({}, [], {});
    expect(c.dump.env).toMatchObject({ OMP_NUM_THREADS: null, MKL_NUM_THREADS: null, OPENBLAS_NUM_THREADS: null });
  });

  it('a $TMPDIR outside /tmp is bound and passed; one under /tmp is only passed', async () => {
    // Like a node-local /local/job.N: outside /tmp, which apptainer binds anyway.
    const local = await fs.mkdtemp('/var/tmp/sifpack-issue11-');
    try {
      const a = await renderAndRun({ bind: ['/scratch'] }, [], { TMPDIR: local });
      expect(a.runtimeArgv.slice(0, 6)).toEqual(['exec', '--cleanenv', '-B', '/scratch', '-B', local]);
      expect(a.dump.env.TMPDIR).toBe(local);
    } finally {
      await fs.rm(local, { recursive: true, force: true });
    }
    const b = await renderAndRun({}, [], { TMPDIR: '/tmp/job.1' });
    expect(b.runtimeArgv).not.toContain('-B');
    expect(b.dump.env.TMPDIR).toBe('/tmp/job.1');
  });

  it('per-task values come from the task srun starts, not from the batch step', async () => {
    // The srun double runs one task; a per-task value set only in srun's task environment must reach Python.
    const srunBin = path.join(dir, 'srun-task-bin');
    await fs.mkdir(srunBin, { recursive: true });
    await fs.writeFile(path.join(srunBin, 'srun'), '#!/usr/bin/env bash\nprintf "%s\\0" "$@" >"$SIFPACK_RECORD/srun.argv"\nSLURM_PROCID=1 SLURM_LOCALID=1 exec "$@"\n', { mode: 0o755 });
    const { dump } = await renderAndRun({}, [], { SLURM_PROCID: '0', SLURM_LOCALID: '0', PATH: `${srunBin}:${extraBin}:${DOUBLES}:${process.env.PATH}` });
    expect(dump.env).toMatchObject({ SLURM_PROCID: '1', SLURM_LOCALID: '1' });
  });

  it('per-task values are escaped like the job-wide ones: $, ` and \\ in a task value reach Python as they are', async () => {
    // apptainer evaluates APPTAINERENV_ values (the double does as its injectEnvHandler does);
    // a GPU list or node name from the task must not expand $HOME or run a command.
    const srunBin = path.join(dir, 'srun-hostile-task-bin');
    await fs.mkdir(srunBin, { recursive: true });
    const value = 'GPU-$HOME-`echo ran`-\\x-"q"';
    await fs.writeFile(path.join(srunBin, 'srun'), `#!/usr/bin/env bash\nprintf "%s\\0" "$@" >"$SIFPACK_RECORD/srun.argv"\nexport CUDA_VISIBLE_DEVICES=${shellQuote(value)} SLURM_PROCID=3\nexec "$@"\n`, { mode: 0o755 });
    const { dump } = await renderAndRun({}, [], { SLURM_PROCID: '0', PATH: `${srunBin}:${extraBin}:${DOUBLES}:${process.env.PATH}` });
    expect(dump.env).toMatchObject({ CUDA_VISIBLE_DEVICES: value, SLURM_PROCID: '3' });
  });
});
