/**
 * SlurmJob → job script.
 *
 * Format:
 *   #!/bin/bash
 *   #SBATCH --job-name=train
 *   #SBATCH --output=%x_%j.out
 *   #SBATCH --cpus-per-task=8
 *   #SBATCH --gres=gpu:1
 *   set -euo pipefail
 *   set +u
 *   module load apptainer/1.3.4
 *   set -u
 *   for v in SLURM_JOB_ID ...; do ... export "APPTAINERENV_$v=${!v}"; done
 *   export APPTAINERENV_SEED=42
 *   export SRUN_CPUS_PER_TASK="${SLURM_CPUS_PER_TASK:-8}"
 *   srun apptainer exec --cleanenv --nv -B /scratch /abs/train.sif python train.py --lr 0.1
 *
 * Every value goes through shellQuote. sbatch reads quoted #SBATCH values the
 * way bash reads the rest, except that a backslash escapes the next character
 * even inside single quotes, so directive values have theirs doubled first.
 * What Python gets in sys.argv is what was typed.
 */
import { pulledImageLine } from '../model/sbatch-script.js';
import type { Bind, SlurmJob } from '../model/slurm-job.js';
import { containerEnvValue, shellJoin, shellQuote } from './shell-quote.js';
import { type Rendered, renderTemplate } from './template.js';

/**
 * Slurm's job-wide facts a job script may read; --cleanenv would hide them
 * from the container. These are read once, in the batch step.
 */
export const SLURM_VARS = [
  'SLURM_JOB_ID', 'SLURM_JOB_NAME', 'SLURM_JOB_NUM_NODES', 'SLURM_JOB_NODELIST', 'SLURM_JOB_PARTITION', 'SLURM_SUBMIT_DIR', 'SLURM_RESTART_COUNT',
  'SLURM_ARRAY_JOB_ID', 'SLURM_ARRAY_TASK_ID', 'SLURM_ARRAY_TASK_COUNT', 'SLURM_ARRAY_TASK_MIN', 'SLURM_ARRAY_TASK_MAX', 'SLURM_ARRAY_TASK_STEP',
  'SLURM_CPUS_PER_TASK', 'SLURM_CPUS_ON_NODE', 'SLURM_NTASKS', 'SLURM_MEM_PER_NODE', 'SLURM_GPUS', 'SLURM_GPUS_ON_NODE', 'TMPDIR',
] as const;

/**
 * Per-task facts: srun sets them in each task (rank, local rank, node, the
 * step, and the GPU lists under --gpu-bind), so a wrapper srun starts in every
 * task passes them in; read in the batch step they would be one task's values
 * for all. The *_VISIBLE_DEVICES and GPU_DEVICE_ORDINAL lists keep the script
 * on the GPUs Slurm gave it.
 */
export const TASK_VARS = [
  'SLURM_PROCID', 'SLURM_LOCALID', 'SLURM_NODEID', 'SLURM_STEP_ID', 'SLURM_STEP_NUM_TASKS', 'SLURMD_NODENAME',
  'CUDA_VISIBLE_DEVICES', 'ROCR_VISIBLE_DEVICES', 'GPU_DEVICE_ORDINAL',
] as const;

/**
 * Where sites keep the bash init of their module system, tried in order when
 * `module` is not a function (a non-login batch shell, --export=NONE):
 * Lmod's and Environment Modules' own init scripts ($MODULESHOME/init/bash
 * for both; Debian's lmod and environment-modules packages put them under
 * /usr/share), and Cray PE's Lmod. A profile's module-init comes first.
 */
export const MODULE_INITS = ['${MODULESHOME:-/nonexistent}/init/bash', '/usr/share/lmod/lmod/init/bash', '/usr/share/modules/init/bash', '/opt/cray/pe/lmod/lmod/init/bash', '/etc/profile.d/modules.sh'] as const;

/**
 * One `#SBATCH` value. sbatch's own parser (not bash) reads these lines: it
 * honours the same quotes, but takes a backslash as an escape even inside
 * single quotes, so each one is doubled before quoting (checked with
 * Slurm 22.05: `--job-name='a\\b'` gives the job name `a\b`).
 */
export function sbatchValue(value: string): string {
  return shellQuote(value.replace(/\\/g, '\\\\'));
}

const opt = (name: string, value: string | number) => `--${name}=${sbatchValue(String(value))}`;

/** The `#SBATCH` options, in a fixed order. */
export function directives(job: SlurmJob): string[] {
  const out = [opt('job-name', job.jobName), opt('output', job.output)];
  if (job.error) out.push(opt('error', job.error));
  if (job.chdir) out.push(opt('chdir', job.chdir));
  if (job.partition) out.push(opt('partition', job.partition));
  if (job.account) out.push(opt('account', job.account));
  if (job.qos) out.push(opt('qos', job.qos));
  if (job.reservation) out.push(opt('reservation', job.reservation));
  if (job.constraint) out.push(opt('constraint', job.constraint));
  if (job.time) out.push(opt('time', job.time));
  if (job.nodes) out.push(opt('nodes', job.nodes));
  if (job.ntasks !== undefined) out.push(opt('ntasks', job.ntasks));
  if (job.exclusive) out.push('--exclusive');
  if (job.mem) out.push(opt('mem', job.mem));
  if (job.cpusPerTask) out.push(opt('cpus-per-task', job.cpusPerTask));
  if (job.gpus) out.push(job.gpuRequest === 'gpus' ? opt('gpus', job.gpus) : opt('gres', `gpu:${job.gpus}`));
  if (job.array) out.push(opt('array', job.array));
  out.push(opt('open-mode', job.openMode));
  if (job.mailType) out.push(opt('mail-type', job.mailType));
  if (job.mailUser) out.push(opt('mail-user', job.mailUser));
  return out;
}

/** A bind as apptainer's -B takes it: SRC, SRC:DST or SRC:DST:ro. */
export function bindWord(b: Bind): string {
  return `${b.src}${b.dst !== b.src || b.readOnly ? `:${b.dst}` : ''}${b.readOnly ? ':ro' : ''}`;
}

/** `apptainer exec [--cleanenv] [--nv|--rocm] [-B ...] IMAGE python SCRIPT ARGS`, quoted. */
export function execWords(job: SlurmJob): string[] {
  return [...execOptions(job), ...execCommand(job)];
}

function execOptions(job: SlurmJob): string[] {
  const words: string[] = [job.runtime, 'exec'];
  if (job.cleanenv) words.push('--cleanenv');
  if (job.gpus) words.push(job.gpuVendor === 'amd' ? '--rocm' : '--nv');
  for (const b of job.binds) words.push('-B', bindWord(b));
  return words;
}

function execCommand(job: SlurmJob): string[] {
  return [job.image, 'python', job.script, ...job.args];
}

/**
 * What srun runs: with --cleanenv, the per-task wrapper ($per_task in the
 * template) first; the $TMPDIR bind the script decides at run time goes
 * with the other binds.
 */
function execLine(job: SlurmJob): string {
  const wrapper = job.cleanenv ? 'bash -c "$per_task" sifpack-task ' : '';
  // Expands to nothing when tmp_bind is empty, also under set -u in bash < 4.4.
  const tmpBind = '${tmp_bind[@]+"${tmp_bind[@]}"}';
  return `${wrapper}${shellJoin(execOptions(job))} ${tmpBind} ${shellJoin(execCommand(job))}`;
}

/** What the job script cannot do as asked, said to the user rather than dropped. */
export function sbatchWarnings(job: SlurmJob): string[] {
  const prefix = envPrefix(job);
  const warnings: string[] = [];
  if (!job.cleanenv) warnings.push("without --cleanenv the host's environment (PYTHONPATH, LD_LIBRARY_PATH, conda's variables) reaches the container too");
  if (job.array && !/%(\d*)a/.test(job.output)) warnings.push(`--output ${job.output} has no %a: every array task writes the same file`);
  for (const [k] of job.env) {
    if (k === 'HOME') warnings.push(`--env HOME is ignored: ${job.runtime} does not let ${prefix}HOME override HOME (its --home option does)`);
    if (k === 'PATH') warnings.push(`--env PATH replaces the image's PATH inside the container, so \`python\` may no longer be the environment's`);
  }
  return warnings;
}

function envPrefix(job: SlurmJob): string {
  return job.runtime === 'apptainer' ? 'APPTAINERENV_' : 'SINGULARITYENV_';
}

/** The job script for `job`; `version` is the sifpack version named in its header. */
export function renderSbatch(job: SlurmJob, opts: { version: string }): Rendered {
  const prefix = envPrefix(job);
  const warnings = sbatchWarnings(job);
  const text = renderTemplate('job.sbatch.mustache', {
    version: opts.version,
    scriptShown: job.script.replace(/\s+/g, ' '),
    imageShown: job.image.replace(/\s+/g, ' '),
    pulledLine: job.pulledFrom ? pulledImageLine(job.pulledFrom) : undefined,
    directives: directives(job),
    hasModules: job.modules.length > 0,
    modules: job.modules.map(shellQuote),
    cleanenv: job.cleanenv,
    slurmVars: SLURM_VARS.join(' '),
    taskVars: TASK_VARS.join(' '),
    runtime: job.runtime,
    moduleInits: [...(job.moduleInit ? [shellQuote(job.moduleInit)] : []), ...MODULE_INITS.map((p) => (p.startsWith('$') ? `"${p}"` : p))].join(' '),
    envPrefix: prefix,
    hasEnv: job.env.length > 0,
    // apptainer evaluates these values once more inside the container: see containerEnvValue.
    envLines: job.env.map(([k, v]) => `${prefix}${k}=${shellQuote(containerEnvValue(v))}`),
    // An integer (settings check it), so it needs no quoting inside "...".
    cpusPerTask: job.cpusPerTask,
    gpuNote: job.gpus ? (job.gpuVendor === 'amd' ? '--rocm binds the host\'s ROCm driver stack into the container.' : '--nv binds the host\'s NVIDIA driver libraries into the container.') : undefined,
    execLine: execLine(job),
  });
  return { text, warnings };
}
