/** `sifpack sbatch`: write the job script that runs a Python script in the image. */
import { type Command, Option } from 'commander';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { buildJob } from '../model/slurm-job.js';
import { renderSbatch } from '../render/sbatch.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import { displayPath } from '../util/display-path.js';
import { VERSION } from '../util/package-root.js';
import { type CliContext, Log, collect, globalOptions, settingsFor } from './context.js';

/** The job's resource and runtime flags, shared by `sbatch` and `run`. */
export interface JobFlags {
  jobName?: string;
  time?: string;
  mem?: string;
  cpusPerTask?: string;
  gpus?: string;
  gpuRequest?: string;
  gpuVendor?: string;
  partition?: string;
  account?: string;
  qos?: string;
  array?: string;
  output?: string;
  chdir?: string;
  bind?: string[];
  env?: string[];
  module?: string[];
  runtime?: string;
  cleanenv?: boolean;
}

interface SbatchFlags extends JobFlags {
  image?: string;
  file?: string;
  force?: boolean;
  json?: boolean;
}

/**
 * Declares the job flags with the meaning Slurm's sbatch gives them. `run`
 * leaves out -p, which there is conda's --prefix as in `conda create -p`.
 */
export function addJobOptions(cmd: Command, opts: { partitionShort: boolean }): Command {
  return cmd
    .option('-J, --job-name <NAME>', 'job name (default: the script name)')
    .option('-t, --time <LIMIT>', 'time limit: MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS')
    .option('--mem <SIZE>', 'memory per node: 500M, 4G, ...')
    .option('-c, --cpus-per-task <N>', 'CPUs per task')
    .option('--gpus <N>', 'GPUs (adds --nv, or --rocm with gpu-vendor: amd)')
    .addOption(new Option('--gpu-request <HOW>', 'how the site asks for GPUs').choices(['gres', 'gpus']))
    .addOption(new Option('--gpu-vendor <VENDOR>', 'GPU vendor').choices(['nvidia', 'amd']))
    .option(opts.partitionShort ? '-p, --partition <NAME>' : '--partition <NAME>', 'partition')
    .option('-A, --account <NAME>', 'account to charge')
    .option('--qos <NAME>', 'quality of service')
    .option('-a, --array <SPEC>', 'job array: 0-99, 1,3,5, 0-99%10, 0-15:4')
    .option('--output <PATTERN>', 'job output file (default %x_%j.out, arrays %x_%A_%a.out)')
    .option('-D, --chdir <DIR>', 'working directory of the job')
    .option('-B, --bind <SRC[:DST[:ro]]>', 'bind a host path into the container (repeatable)', collect)
    .option('-e, --env <NAME=VALUE>', 'set a variable in the container (repeatable)', collect)
    .option('-m, --module <NAME>', 'module to load first (repeatable)', collect)
    .addOption(new Option('--runtime <NAME>', 'container runtime on the nodes').choices(['apptainer', 'singularity']))
    .option('--no-cleanenv', "let the host's environment into the container");
}

/** The job flags as settings (undefined = not given). */
export function jobSettingFlags(flags: JobFlags): Record<string, unknown> {
  return {
    jobName: flags.jobName,
    time: flags.time,
    mem: flags.mem,
    cpusPerTask: flags.cpusPerTask,
    gpus: flags.gpus,
    gpuRequest: flags.gpuRequest,
    gpuVendor: flags.gpuVendor,
    partition: flags.partition,
    account: flags.account,
    qos: flags.qos,
    output: flags.output,
    chdir: flags.chdir,
    bind: flags.bind,
    env: flags.env,
    module: flags.module,
    runtime: flags.runtime,
    cleanenv: flags.cleanenv === false ? false : undefined,
  };
}

export function register(program: Command, ctx: CliContext): void {
  const cmd = program
    .command('sbatch')
    .summary('write the Slurm job script that runs SCRIPT in the image')
    .description(
      'Write a job script that runs `srun apptainer exec IMAGE python SCRIPT ARGS`.\n\n' +
        "Resources come from flags, then the profile, then sifpack.yml. Every argument is\n" +
        'quoted so the script receives exactly what you typed (spaces, quotes, $, ;,\n' +
        'newlines). Arguments that start with - go after `--`.',
    )
    .argument('<SCRIPT>', 'the Python script to run (a path as the job will see it)')
    .argument('[ARGS...]', 'arguments for the script (put them after -- if they start with -)')
    .option('--image <IMAGE.sif>', 'the image to run in');
  addJobOptions(cmd, { partitionShort: true })
    .option('-o, --file <FILE>', 'write the job script here instead of stdout')
    .option('-f, --force', 'overwrite an existing file')
    .option('--json', 'print { "file": ..., "job": ... }')
    .addHelpText(
      'after',
      `
Examples:
  sifpack sbatch analyze.py measurements.csv --image analysis.sif --time 30 --mem 4G -o analyze.sbatch
  sifpack sbatch train.py --image train.sif --gpus 1 --time 04:00:00 -o train.sbatch -- --epochs 10 --lr 0.1
  sifpack sbatch sweep.py results --image sweep.sif --array 0-99%10 -o sweep.sbatch
  sifpack --profile lumi sbatch train.py --image train.sif --gpus 8 -B /scratch -e SEED=42

Inside the job the script sees SLURM_ARRAY_TASK_ID, SLURM_CPUS_PER_TASK, ... even
with --cleanenv, and --env NAME=VALUE as NAME.`,
    )
    .action(async (script: string, args: string[], flags: SbatchFlags, cmd: Command) => run(script, args, flags, cmd, ctx));
}

export async function run(script: string, args: string[], flags: SbatchFlags, cmd: Command, ctx: CliContext): Promise<void> {
  const log = new Log(ctx.stderr, globalOptions(cmd).quiet);
  const { settings, sources } = await settingsFor(cmd, ctx, { image: flags.image, ...jobSettingFlags(flags) });
  const job = buildJob({ settings, sources, script, args, ...(flags.array !== undefined ? { array: flags.array } : {}), cwd: ctx.cwd });
  const exists = (p: string) => fs.stat(p).then(() => true, () => false);
  if (!(await exists(job.image))) log.warn(`${job.image} does not exist here; the job will fail unless it exists on the cluster by then`);
  const runDir = job.chdir ?? ctx.cwd;
  if (!(await exists(path.resolve(runDir, script)))) log.warn(`${script} is not in ${runDir}; the job looks for it relative to its working directory`);
  const rendered = renderSbatch(job, { version: VERSION });
  for (const w of rendered.warnings) log.warn(w);
  const file = flags.file ? path.resolve(ctx.cwd, flags.file) : undefined;
  if (file) {
    await writeFileAtomic(file, rendered.text, { force: !!flags.force, mode: 0o755 });
    log.info(`wrote ${displayPath(file, ctx.cwd)}; submit it with \`sifpack submit ${displayPath(file, ctx.cwd)}\``);
  }
  if (flags.json) ctx.stdout.write(`${JSON.stringify({ file: file ?? null, job, ...(file ? {} : { text: rendered.text }) })}\n`);
  else if (!file) ctx.stdout.write(rendered.text);
}
