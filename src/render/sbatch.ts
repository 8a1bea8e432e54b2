/**
 * SlurmJob → job script.
 *
 * Format:
 *   #!/bin/bash
 *   #SBATCH --job-name=train
 *   #SBATCH --output=%x_%j.out
 *   #SBATCH --gres=gpu:1
 *   set -euo pipefail
 *   module load apptainer/1.3.4
 *   for v in SLURM_JOB_ID ...; do ... export "APPTAINERENV_$v=${!v}"; done
 *   export APPTAINERENV_SEED=42
 *   srun apptainer exec --cleanenv --nv -B /scratch /abs/train.sif python train.py --lr 0.1
 *
 * Every value goes through shellQuote: sbatch reads quoted #SBATCH values the
 * way bash reads the rest, so what Python gets in sys.argv is what was typed.
 */
import type { SlurmJob } from '../model/slurm-job.js';
import { shellJoin, shellQuote } from './shell-quote.js';
import { type Rendered, renderTemplate } from './template.js';

/** Slurm's facts a job script may read; --cleanenv would hide them from the container. */
export const SLURM_VARS = [
  'SLURM_JOB_ID', 'SLURM_JOB_NAME', 'SLURM_JOB_NUM_NODES', 'SLURM_JOB_PARTITION', 'SLURM_SUBMIT_DIR',
  'SLURM_ARRAY_JOB_ID', 'SLURM_ARRAY_TASK_ID', 'SLURM_ARRAY_TASK_COUNT', 'SLURM_ARRAY_TASK_MIN', 'SLURM_ARRAY_TASK_MAX', 'SLURM_ARRAY_TASK_STEP',
  'SLURM_CPUS_PER_TASK', 'SLURM_CPUS_ON_NODE', 'SLURM_NTASKS', 'SLURM_MEM_PER_NODE', 'SLURM_GPUS', 'SLURM_GPUS_ON_NODE', 'CUDA_VISIBLE_DEVICES', 'ROCR_VISIBLE_DEVICES', 'TMPDIR',
] as const;

const opt = (name: string, value: string | number) => `--${name}=${shellQuote(String(value))}`;

/** The `#SBATCH` options, in a fixed order. */
export function directives(job: SlurmJob): string[] {
  const out = [opt('job-name', job.jobName), opt('output', job.output)];
  if (job.chdir) out.push(opt('chdir', job.chdir));
  if (job.partition) out.push(opt('partition', job.partition));
  if (job.account) out.push(opt('account', job.account));
  if (job.qos) out.push(opt('qos', job.qos));
  if (job.time) out.push(opt('time', job.time));
  if (job.mem) out.push(opt('mem', job.mem));
  if (job.cpusPerTask) out.push(opt('cpus-per-task', job.cpusPerTask));
  if (job.gpus) out.push(job.gpuRequest === 'gpus' ? opt('gpus', job.gpus) : opt('gres', `gpu:${job.gpus}`));
  if (job.array) out.push(opt('array', job.array));
  return out;
}

/** `apptainer exec [--cleanenv] [--nv|--rocm] [-B ...] IMAGE python SCRIPT ARGS`, quoted. */
export function execWords(job: SlurmJob): string[] {
  const words: string[] = [job.runtime, 'exec'];
  if (job.cleanenv) words.push('--cleanenv');
  if (job.gpus) words.push(job.gpuVendor === 'amd' ? '--rocm' : '--nv');
  for (const b of job.binds) words.push('-B', `${b.src}${b.dst !== b.src || b.readOnly ? `:${b.dst}` : ''}${b.readOnly ? ':ro' : ''}`);
  words.push(job.image, 'python', job.script, ...job.args);
  return words;
}

export function renderSbatch(job: SlurmJob, opts: { version: string }): Rendered {
  const prefix = job.runtime === 'apptainer' ? 'APPTAINERENV_' : 'SINGULARITYENV_';
  const warnings: string[] = [];
  if (!job.cleanenv && job.env.length) warnings.push(`without --cleanenv the host's environment reaches the container too; ${prefix}* still sets the --env variables`);
  const text = renderTemplate('job.sbatch.mustache', {
    version: opts.version,
    scriptShown: job.script.replace(/\s+/g, ' '),
    imageShown: job.image.replace(/\s+/g, ' '),
    directives: directives(job),
    hasModules: job.modules.length > 0,
    modules: job.modules.map(shellQuote),
    cleanenv: job.cleanenv,
    slurmVars: SLURM_VARS.join(' '),
    envPrefix: prefix,
    hasEnv: job.env.length > 0,
    envLines: job.env.map(([k, v]) => `${prefix}${k}=${shellQuote(v)}`),
    gpuNote: job.gpus ? (job.gpuVendor === 'amd' ? '--rocm binds the host\'s ROCm driver stack into the container.' : '--nv binds the host\'s NVIDIA driver libraries into the container.') : undefined,
    execLine: shellJoin(execWords(job)),
  });
  return { text, warnings };
}
