/**
 * Each shared job script (test/fixtures/job-scripts), run by real bash before
 * and after `sifpack migrate`, runs the same Python commands with the same
 * arguments in the same directory: before, on the host's conda environment;
 * after, inside the image.
 *
 * conda, micromamba and conda's bin/activate cannot be installed here, so
 * the originals run against doubles of them (test/doubles/migrate), named as
 * such: they do what activation does that matters here — put the
 * environment's bin/ first on PATH. Every environment's python is a recording
 * double, and so is the image's; the apptainer double runs the command with
 * the image's bin first on PATH. module is the recording double the sbatch
 * tests use; srun one that also reads srun's options (-n 4, --mpi=pmix). The originals' absolute paths (/home/alice/...,
 * /opt/conda, /scratch, /work) are moved under a temp directory, the only
 * change made to them.
 */
import { execFile, spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { planMigration } from '../../src/model/job-migration.js';
import { renderMigrated } from '../../src/render/migrate.js';
import { ROOT, tempDir } from '../helpers.js';

const run = promisify(execFile);
const DOUBLES = path.join(ROOT, 'test/doubles');
const MIGRATE = path.join(DOUBLES, 'migrate');
const FIXTURES = path.join(ROOT, 'test/fixtures/job-scripts');
/** Only system tools: no python of the host's on PATH, so a python that escaped the rewrite fails loudly. */
const SYSTEM_PATH = '/usr/sbin:/usr/bin:/sbin:/bin';

let t: string;
beforeAll(async () => {
  t = await tempDir('sifpack-migrate-');
  const mk = async (dir: string) => fs.mkdir(path.join(t, dir), { recursive: true });
  const link = async (target: string, at: string) => {
    await mk(path.dirname(at));
    await fs.symlink(target, path.join(t, at));
  };
  // The image's environment, and the tools a job finds on PATH.
  await link(path.join(MIGRATE, 'python'), 'image-bin/python');
  await link(path.join(MIGRATE, 'python'), 'image-bin/python3');
  await link(path.join(MIGRATE, 'apptainer'), 'host-bin/apptainer');
  await link(path.join(MIGRATE, 'micromamba'), 'host-bin/micromamba');
  await link(path.join(MIGRATE, 'srun'), 'host-bin/srun');
  // conda installations: one "module load"ed onto PATH, three at the scripts' absolute paths.
  for (const install of ['conda', 'root/home/alice/miniforge3', 'root/opt/miniconda3', 'root/opt/conda']) {
    await link(path.join(MIGRATE, 'conda'), `${install}/bin/conda`);
    await link(path.join(MIGRATE, 'activate'), `${install}/bin/activate`);
  }
  // Environments, each with its own recording python.
  for (const env of ['conda/envs/torch-2.3', 'conda/envs/stats-env', 'root/home/alice/miniforge3/envs/climate', 'root/scratch/bob/envs/viz', 'root/work/proj/envs/seq', 'run/envs/prep']) {
    await link(path.join(MIGRATE, 'python'), `${env}/bin/python`);
    await link(path.join(MIGRATE, 'python'), `${env}/bin/python3`);
  }
  await fs.writeFile(path.join(t, 'run/env.sif'), 'stand-in image: the apptainer double only checks that it exists\n');
});
afterAll(async () => {
  await fs.rm(t, { recursive: true, force: true });
});

interface Call {
  where: string;
  name: string;
  cwd: string;
  args: string[];
}

const readCalls = async (file: string): Promise<string[][]> =>
  (await fs.readFile(path.join(t, 'run', file), 'utf8').catch(() => ''))
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split('\0').slice(0, -1));

/** Runs `script` with bash in t/run and returns the python calls it made, and bash's stderr. */
async function runScript(script: string, pathDirs: string[]): Promise<{ calls: Call[]; apptainer: string[][]; srun: string[]; stderr: string }> {
  const dir = path.join(t, 'run');
  for (const f of ['python.calls', 'apptainer.calls', 'srun.argv', 'module.argv', 'analysis.log']) await fs.rm(path.join(dir, f), { force: true });
  await fs.writeFile(path.join(dir, 'job.slurm'), script);
  const { stderr } = await run('bash', ['job.slurm'], {
    cwd: dir,
    env: {
      PATH: [...pathDirs, path.join(DOUBLES, 'bin'), SYSTEM_PATH].join(':'),
      HOME: path.join(t, 'root/home/alice'),
      SIFPACK_RECORD: dir,
      SIFPACK_IMAGE_BIN: path.join(t, 'image-bin'),
      SLURM_SUBMIT_DIR: dir,
      SLURM_ARRAY_TASK_ID: '3',
      SLURM_CPUS_PER_TASK: '2',
    },
  });
  const calls = (await readCalls('python.calls')).map(([where, name, cwd, ...args]) => ({ where: where!, name: name!, cwd: cwd!, args }));
  const srun = (await fs.readFile(path.join(dir, 'srun.argv'), 'utf8').catch(() => '')).split('\0').slice(0, -1);
  return { calls, apptainer: await readCalls('apptainer.calls'), srun, stderr };
}

/** The original, with its absolute paths moved under t/root. */
const relocated = (text: string) => text.replace(/(?<=^|[\s"'=])\/(home|opt|scratch|work)\//gm, `${t}/root/$1/`);

function migrated(text: string, file: string, modules: string[] = []): string {
  const m = planMigration({ text, file, startDir: path.join(t, 'run'), outside: { HOME: path.join(t, 'root/home/alice') } });
  return renderMigrated(text, m, { image: 'env.sif', runtime: 'apptainer', gpuVendor: 'nvidia', binds: [], modules, version: 'test', source: file }).text;
}

describe('migrated job scripts run the same python commands as the originals (real bash, recording doubles)', () => {
  const cases: [string, number][] = [
    ['abs-prefix', 1],
    ['conda-activate-hook', 1],
    ['explicit-python', 2],
    ['micromamba', 1],
    ['module-source-activate', 2],
    ['relative-prefix', 1],
  ];
  it.each(cases)('%s.slurm: %i python call(s), same argv and directory, on the host before and in the image after', async (name, count) => {
    const text = await fs.readFile(path.join(FIXTURES, `${name}.slurm`), 'utf8');
    // The original finds conda the way a `module load` would have put it on PATH.
    const before = await runScript(relocated(text), [path.join(t, 'conda/bin'), path.join(t, 'host-bin')]);
    expect(before.stderr).toBe('');
    expect(before.calls).toHaveLength(count);
    expect(before.calls.every((c) => c.where === 'host')).toBe(true);

    // The migrated one gets no conda at all: only apptainer (and srun, module).
    const after = await runScript(migrated(text, `${name}.slurm`), [path.join(t, 'host-bin')]);
    expect(after.stderr).toBe('');
    expect(after.calls.map((c) => ({ ...c, where: 'host' }))).toEqual(before.calls);
    expect(after.calls.every((c) => c.where === 'image')).toBe(true);
    expect(after.apptainer).toHaveLength(count);
    const gpu = name === 'conda-activate-hook' ? ['--nv'] : [];
    for (const a of after.apptainer) expect(a.slice(0, 2 + gpu.length)).toEqual(['exec', ...gpu, 'env.sif']);
  });

  it('conda-activate-hook.slurm with --module apptainer: module purge, then load apptainer; srun runs apptainer, which runs python with the script\'s arguments', async () => {
    const text = await fs.readFile(path.join(FIXTURES, 'conda-activate-hook.slurm'), 'utf8');
    const after = await runScript(migrated(text, 'conda-activate-hook.slurm', ['apptainer']), [path.join(t, 'host-bin')]);
    expect(await fs.readFile(path.join(t, 'run/module.argv'), 'utf8')).toBe('purge\0\nload\0apptainer\0\n');
    expect(after.srun).toEqual(['apptainer', 'exec', '--nv', 'env.sif', 'python', 'train.py', '--config', 'configs/base.yaml', '--epochs', '20']);
    expect(after.calls).toEqual([{ where: 'image', name: 'python', cwd: path.join(t, 'run'), args: ['train.py', '--config', 'configs/base.yaml', '--epochs', '20'] }]);
  });

  it('module-source-activate.slurm: the redirection still sends python\'s output to analysis.log', async () => {
    const text = await fs.readFile(path.join(FIXTURES, 'module-source-activate.slurm'), 'utf8');
    await runScript(migrated(text, 'module-source-activate.slurm'), [path.join(t, 'host-bin')]);
    expect(await fs.readFile(path.join(t, 'run/analysis.log'), 'utf8')).toBe('python double ran: -u analysis.py\n');
  });

  it('relative-prefix.slurm: the array task id still reaches python through the quoted argument', async () => {
    const text = await fs.readFile(path.join(FIXTURES, 'relative-prefix.slurm'), 'utf8');
    const after = await runScript(migrated(text, 'relative-prefix.slurm'), [path.join(t, 'host-bin')]);
    expect(after.calls[0]!.args).toEqual(['preprocess.py', 'chunk_3.csv']);
  });

  it('hostile arguments and pipes written by hand survive the rewrite unchanged', async () => {
    const text = [
      '#!/bin/bash',
      '#SBATCH -t 5',
      'source /opt/conda/bin/activate /scratch/bob/envs/viz',
      `srun -n 1 python a.py 'it'\\''s' "$HOME/x y" \\`,
      `   --msg=$'tab\\there' "\`echo sub\`" '$(not run)' ";|&" | cat > piped.txt`,
      'X=1 python3 -c "import sys" && echo ok',
      '',
    ].join('\n');
    const before = await runScript(relocated(text), [path.join(t, 'host-bin')]);
    const after = await runScript(migrated(text, 'hostile.slurm'), [path.join(t, 'host-bin')]);
    expect(before.stderr).toBe('');
    expect(after.stderr).toBe('');
    expect(after.calls.map((c) => ({ ...c, where: 'host' }))).toEqual(before.calls);
    expect(before.calls[0]!.args).toEqual(['a.py', "it's", `${t}/root/home/alice/x y`, '--msg=tab\there', 'sub', '$(not run)', ';|&']);
    expect(before.calls[1]!.name).toBe('python3');
    expect(await fs.readFile(path.join(t, 'run/piped.txt'), 'utf8')).toContain('python double ran: a.py');
  });
});

describe('a migrated script is valid bash whenever the original is (bash -n)', () => {
  it('fixtures mangled with shell words and metacharacters', async () => {
    let seed = 1616;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const pieces = ['if true; then ', '; fi', ' && ', ' || ', ' | ', '\n', '; ', '( ', ' )', '{ ', '; }', 'python x.py ', 'srun ', 'conda deactivate', 'for i in 1; do ', '; done', ' \\\n', '"', "'"];
    const syntaxOk = (text: string) => spawnSync('bash', ['-n'], { input: text }).status === 0;
    let checked = 0;
    for (const name of ['abs-prefix', 'conda-activate-hook', 'explicit-python', 'micromamba', 'module-source-activate', 'relative-prefix']) {
      const original = await fs.readFile(path.join(FIXTURES, `${name}.slurm`), 'utf8');
      for (let k = 0; k < 15; k++) {
        let text = original;
        for (let e = 0; e < 1 + rand(3); e++) {
          const at = rand(text.length);
          text = text.slice(0, at) + pieces[rand(pieces.length)]! + text.slice(at);
        }
        if (!syntaxOk(text)) continue;
        let out: string;
        try {
          out = migrated(text, `${name}.slurm`);
        } catch {
          continue; // refused (two envs, python before activation, ...): nothing written
        }
        checked++;
        expect(syntaxOk(out), `migrated from:\n${text}\nto:\n${out}`).toBe(true);
      }
    }
    expect(checked).toBeGreaterThan(10);
  }, 300_000);
});
