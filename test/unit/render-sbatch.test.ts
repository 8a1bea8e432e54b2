/**
 * SlurmJob → job script: exact text per case (golden files), determinism, the
 * #SBATCH quoting sbatch itself needs, and the warnings for what the script
 * cannot do as asked.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfig, resolveSettings } from '../../src/config/load.js';
import { type SlurmJob, buildJob } from '../../src/model/slurm-job.js';
import { renderSbatch, sbatchValue, sbatchWarnings } from '../../src/render/sbatch.js';
import { HOSTILE } from '../fixtures/hostile.js';
import { ROOT, expectGolden } from '../helpers.js';

const VERSION = JSON.parse(await fs.readFile(path.join(ROOT, 'package.json'), 'utf8')).version as string;
/** Goldens are rendered as if the project lived here, so they do not depend on the checkout's path. */
const PROJECT = '/home/researcher/project';

async function exampleJob(name: string, script: string, args: string[], flags: Record<string, unknown> = {}, profile?: string, array?: string): Promise<SlurmJob> {
  const dir = path.join(ROOT, 'examples', name);
  const config = parseConfig(await fs.readFile(path.join(dir, 'sifpack.yml'), 'utf8'), 'sifpack.yml', PROJECT);
  const { settings, sources } = resolveSettings({ config, ...(profile ? { profile } : {}), flags, cwd: PROJECT });
  return buildJob({ settings, sources, script, args, cwd: PROJECT, ...(array ? { array } : {}) });
}

/** A job from flags alone, as `sifpack sbatch SCRIPT ARGS... --flags` in PROJECT would build it. */
function flagJob(script: string, args: string[], flags: Record<string, unknown>, array?: string): SlurmJob {
  const { settings, sources } = resolveSettings({ flags, cwd: PROJECT });
  return buildJob({ settings, sources, script, args, cwd: PROJECT, ...(array ? { array } : {}) });
}

const render = (job: SlurmJob) => renderSbatch(job, { version: VERSION }).text;

describe('golden job scripts (test/golden/sbatch)', () => {
  it('a CPU job: resources, module, no GPU options, srun gets --cpus-per-task back', async () => {
    const job = flagJob('analyze.py', ['measurements.csv'], { image: 'analysis.sif', time: '00:30:00', mem: '4G', cpusPerTask: '4', partition: 'short', account: 'proj-123', qos: 'normal', module: ['apptainer/1.3.4'] });
    const text = render(job);
    expect(text).toContain('#SBATCH --cpus-per-task=4\n');
    expect(text).toContain('export SRUN_CPUS_PER_TASK="${SLURM_CPUS_PER_TASK:-4}"\n');
    expect(text).toMatch(/\nset \+u\n(?:.*\n)*?module load apptainer\/1\.3\.4\nset -u\n/);
    expect(text).not.toMatch(/--nv|--rocm|--gres|--gpus/);
    await expectGolden('sbatch/cpu.sbatch', text);
  });

  it('a GPU job on a --gres site with NVIDIA cards: --gres=gpu:N and --nv', async () => {
    const text = render(flagJob('train.py', ['--epochs', '10'], { image: 'train.sif', gpus: '2', gpuRequest: 'gres', gpuVendor: 'nvidia', cpusPerTask: '8', mem: '32G', time: '1-00:00:00', partition: 'gpu' }));
    expect(text).toContain('#SBATCH --gres=gpu:2\n');
    expect(text).toContain('srun bash -c "$per_task" sifpack-task apptainer exec --cleanenv --nv ${tmp_bind[@]+"${tmp_bind[@]}"} /home/researcher/project/train.sif python train.py --epochs 10\n');
    await expectGolden('sbatch/gpu-gres-nvidia.sbatch', text);
  });

  it('a GPU job on an AMD site: --gpus=N, --rocm, singularity and SINGULARITYENV_', async () => {
    const job = await exampleJob('gpu-pytorch', 'train.py', [], { gpus: '8' }, 'amd-site');
    const text = render(job);
    expect(text).toContain('#SBATCH --gpus=8\n');
    expect(text).toMatch(/srun bash -c "\$per_task" sifpack-task singularity exec --cleanenv --rocm /);
    expect(text).toContain('export "SINGULARITYENV_$v=$val"');
    expect(text).toContain('export "SINGULARITYENV_$v=$val"; fi; done; exec "$@"\'');
    expect(text).not.toContain('APPTAINERENV_');
    await expectGolden('sbatch/gpu-pytorch-amd.sbatch', text);
  });

  it('an array job: --array, %x_%A_%a.out, the task id passed through --cleanenv', async () => {
    const text = render(flagJob('sweep.py', ['results'], { image: 'sweep.sif', time: '10' }, '0-99%10'));
    expect(text).toContain('#SBATCH --array=0-99%10\n');
    expect(text).toContain('#SBATCH --output=%x_%A_%a.out\n');
    expect(text).toMatch(/^for v in .*\bSLURM_ARRAY_TASK_ID\b.*; do$/m);
    await expectGolden('sbatch/array.sbatch', text);
  });

  it('hostile arguments, binds, env and directive values: every one quoted', async () => {
    const job = flagJob("my dir/it's train.py", HOSTILE, {
      image: 'images/my image.sif',
      jobName: "a 'quoted' \\ name #1",
      output: 'logs/%x %j.out',
      chdir: '/scratch/my project',
      bind: ['/scratch/my data:/data:ro', '/tmp'],
      env: ['MSG=$HOME; `id` \'x\'\nnext', 'EMPTY=', 'UNI=ünï'],
      module: ['cuda 12', 'x;y'],
    });
    const text = render(job);
    expect(text).toContain("#SBATCH --job-name='a '\\''quoted'\\'' \\\\ name #1'\n");
    expect(text).toContain("#SBATCH --chdir='/scratch/my project'\n");
    // $ and ` escaped for apptainer's own evaluation of APPTAINERENV_ values (containerEnvValue)
    expect(text).toContain("export APPTAINERENV_MSG='\\$HOME; \\`id\\` '\\''x'\\''\nnext'\n");
    expect(text).toContain("module load 'cuda 12'\nmodule load 'x;y'\n");
    expect(text).toContain('srun bash -c "$per_task" sifpack-task apptainer exec --cleanenv -B ' + "'/scratch/my data:/data:ro' -B /tmp ${tmp_bind[@]+\"${tmp_bind[@]}\"} '/home/researcher/project/images/my image.sif' python 'my dir/it'\\''s train.py' plain 'two words' ");
    await expectGolden('sbatch/hostile.sbatch', text);
  });
});

describe('golden job scripts next to each example (examples/*/expected/job.sbatch)', () => {
  it('pandas-analysis (CPU, cluster profile with module and bind)', async () => {
    const job = await exampleJob('pandas-analysis', 'analyze.py', ['measurements.csv', '--out', 'summary.csv'], {}, 'cluster');
    await expectGolden(path.join(ROOT, 'examples/pandas-analysis/expected/job.sbatch'), render(job));
  });
  it('gpu-pytorch (NVIDIA, --gres, --nv)', async () => {
    const job = await exampleJob('gpu-pytorch', 'train.py', ['--epochs', '10', '--lr', '0.1'], {}, 'nvidia-site');
    const text = render(job);
    expect(text).toContain('#SBATCH --gres=gpu:1\n');
    expect(text).toMatch(/srun bash -c "\$per_task" sifpack-task apptainer exec --cleanenv --nv /);
    await expectGolden(path.join(ROOT, 'examples/gpu-pytorch/expected/job.sbatch'), text);
  });
  it('pip-heavy (env variables for the container, bind)', async () => {
    const job = await exampleJob('pip-heavy', 'classify.py', ['it\'s "quoted"', '$HOME and `id`', 'a;b'], {});
    const text = render(job);
    expect(text).toContain('export APPTAINERENV_TOKENIZERS_PARALLELISM=false\n');
    await expectGolden(path.join(ROOT, 'examples/pip-heavy/expected/job.sbatch'), text);
  });
  it('array-sweep (array, default output pattern)', async () => {
    const job = await exampleJob('array-sweep', 'sweep.py', ['results'], {}, undefined, '0-99%10');
    const text = render(job);
    expect(text).toContain('#SBATCH --output=%x_%A_%a.out\n');
    expect(text).toContain('#SBATCH --array=0-99%10\n');
    await expectGolden(path.join(ROOT, 'examples/array-sweep/expected/job.sbatch'), text);
  });
});

describe('rendering', () => {
  it('is deterministic: the same job renders to the same bytes', () => {
    const make = () => flagJob('x.py', HOSTILE, { image: 'x.sif', env: ['B=2', 'A=1'], bind: ['/b', '/a'], module: ['m2', 'm1'], gpus: '1' }, '0-3');
    expect(render(make())).toBe(render(make()));
    expect(renderSbatch(make(), { version: VERSION })).toEqual(renderSbatch(make(), { version: VERSION }));
  });

  it('keeps the order given for env, binds and modules', () => {
    const text = render(flagJob('x.py', [], { image: 'x.sif', env: ['B=2', 'A=1'], bind: ['/b', '/a'], module: ['m2', 'm1'] }));
    expect(text.indexOf('APPTAINERENV_B=')).toBeLessThan(text.indexOf('APPTAINERENV_A='));
    expect(text).toContain('-B /b -B /a');
    expect(text.indexOf('module load m2')).toBeLessThan(text.indexOf('module load m1'));
  });

  it('without --cpus-per-task there is no SRUN_CPUS_PER_TASK; without modules no set +u', () => {
    const text = render(flagJob('x.py', [], { image: 'x.sif' }));
    expect(text).not.toContain('SRUN_CPUS_PER_TASK');
    expect(text).not.toContain('set +u');
  });

  it('--no-cleanenv: no --cleanenv, no Slurm pass-through loop, --env still set', () => {
    const text = render(flagJob('x.py', [], { image: 'x.sif', cleanenv: false, env: ['A=1'] }));
    expect(text).not.toContain('--cleanenv');
    expect(text).not.toContain('for v in SLURM_JOB_ID');
    expect(text).not.toContain('per_task');
    expect(text).toContain('export APPTAINERENV_A=1\n');
  });

  it('no line of the script outside the srun and export lines is broken by a value', () => {
    const text = render(flagJob('a\nb.py', ['x\ny'], { image: 'i\nj.sif', jobName: 'ok' }));
    expect(text.split('\n')[1]).toBe('# Runs a b.py in /home/researcher/project/i j.sif on Slurm; written by sifpack ' + VERSION + '.');
  });
});

describe('#SBATCH values: shell quoting plus doubled backslashes (sbatch escapes with \\ even inside single quotes)', () => {
  it.each([
    ['plain', 'plain'],
    ['%x_%j.out', '%x_%j.out'],
    ['a b', "'a b'"],
    ["it's", "'it'\\''s'"],
    ['a\\b', "'a\\\\b'"],
    ['#1', "'#1'"],
    ['$HOME', "'$HOME'"],
  ])('%j → %s', (value, out) => expect(sbatchValue(value)).toBe(out));
});

describe('warnings: what the script cannot do as asked', () => {
  it('no warnings for a plain job', () => {
    expect(sbatchWarnings(flagJob('x.py', [], { image: 'x.sif' }))).toEqual([]);
  });
  it('--no-cleanenv lets the host in', () => {
    expect(sbatchWarnings(flagJob('x.py', [], { image: 'x.sif', cleanenv: false }))).toEqual([
      "without --cleanenv the host's environment (PYTHONPATH, LD_LIBRARY_PATH, conda's variables) reaches the container too",
    ]);
  });
  it('an array whose output has no %a writes one file for all tasks', () => {
    expect(sbatchWarnings(flagJob('x.py', [], { image: 'x.sif', output: 'run_%A.out' }, '0-3'))).toEqual(['--output run_%A.out has no %a: every array task writes the same file']);
    expect(sbatchWarnings(flagJob('x.py', [], { image: 'x.sif', output: 'run_%A_%4a.out' }, '0-3'))).toEqual([]);
  });
  it('--env HOME is ignored by the runtime; --env PATH hides the environment', () => {
    const w = sbatchWarnings(flagJob('x.py', [], { image: 'x.sif', env: ['HOME=/h', 'PATH=/bin'] }));
    expect(w).toEqual([
      '--env HOME is ignored: apptainer does not let APPTAINERENV_HOME override HOME (its --home option does)',
      "--env PATH replaces the image's PATH inside the container, so `python` may no longer be the environment's",
    ]);
  });
  it('renderSbatch returns them', () => {
    expect(renderSbatch(flagJob('x.py', [], { image: 'x.sif', cleanenv: false }), { version: 'v' }).warnings).toHaveLength(1);
  });
});
