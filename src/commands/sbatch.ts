/** `sifpack sbatch`: write the job script that runs a Python script in the image. */
import { type Command, Option } from 'commander';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { patternDirectory } from '../model/sbatch-script.js';
import { buildJob, gpuVendorMismatch } from '../model/slurm-job.js';
import { imageLabels } from '../runtime/image-labels.js';
import { renderSbatch } from '../render/sbatch.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import { checkOutputFile } from '../util/path-check.js';
import { displayPath } from '../util/display-path.js';
import { VERSION } from '../util/package-root.js';
import { type CliContext, Log, globalOptions } from './context.js';
import { JOB_IMAGE_SETTINGS, isRegistryImage, pullJobImage } from './job-image.js';
import { adviseDoubleDash } from './script-args.js';
import { addSettings, settingsFor } from './setting-options.js';

/** The settings sbatch takes (run takes them too); their flags, help and types come from the settings table. */
export const SLURM = ['job-name', 'time', 'mem', 'cpus-per-task', 'gpus', 'gpu-request', 'partition', 'account', 'qos', 'reservation', 'constraint', 'nodes', 'ntasks', 'exclusive', 'output', 'error', 'chdir', 'open-mode', 'mail-type', 'mail-user'] as const;
export const CONTAINER = ['image', 'runtime', 'gpu-vendor', 'bind', 'env', 'module', 'module-init', 'cleanenv'] as const;
const TAKES = [...SLURM, ...CONTAINER, ...JOB_IMAGE_SETTINGS] as const;

/** sbatch's own options, which are not settings. */
interface SbatchFlags {
  array?: string;
  scriptOut?: string;
  force?: boolean;
  json?: boolean;
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
    .argument('[ARGS...]', 'arguments for the script (put them after -- if they start with -)');
  // Short flags here mean what they mean in Slurm's sbatch (-o is the job's
  // output, -e its error file), so they are grouped apart from ours.
  cmd.optionsGroup('Slurm options (as in sbatch):');
  addSettings(cmd, SLURM);
  cmd.option('-a, --array <SPEC>', 'job array: 0-99, 1,3,5, 0-99%10, 0-15:4');
  cmd.optionsGroup('Container options:');
  addSettings(cmd, CONTAINER);
  addSettings(cmd, JOB_IMAGE_SETTINGS);
  cmd.optionsGroup('This command:');
  adviseDoubleDash(cmd, 'the script');
  cmd
    .addHelpOption(new Option('-h, --help', 'display help for command'))
    .option('--script-out <FILE>', 'write the job script here instead of stdout (-o is the job\'s output, as in sbatch)')
    .option('-f, --force', 'overwrite an existing file')
    .option('--json', 'print { "file": ..., "job": ... }')
    .addHelpText(
      'after',
      `
Examples:
  sifpack sbatch analyze.py measurements.csv --image analysis.sif -t 30 --mem 4G --script-out analyze.sbatch
  sifpack sbatch train.py --image train.sif --gpus 1 -t 04:00:00 -o logs/%x_%j.out --script-out train.sbatch -- --epochs 10 --lr 0.1
  sifpack sbatch sweep.py results --image sweep.sif --array 0-99%10 --script-out sweep.sbatch
  sifpack --profile lumi sbatch train.py --image train.sif --gpus 8 --bind /scratch --env SEED=42
  sifpack sbatch sweep.py --image oras://ghcr.io/mylab/sweep:1.0 --array 0-99 --script-out sweep.sbatch

--image oras://HOST/REPO:TAG pulls the image now, once, into --image-dir (default:
the directory of --script-out), and the script runs that file: no task pulls.

Inside the job the script sees SLURM_ARRAY_TASK_ID, SLURM_CPUS_PER_TASK, ... even
with --cleanenv, and --env NAME=VALUE as NAME.`,
    )
    .action(async (script: string, args: string[], flags: SbatchFlags, cmd: Command) => run(script, args, flags, cmd, ctx));
}

export async function run(script: string, args: string[], flags: SbatchFlags, cmd: Command, ctx: CliContext): Promise<void> {
  const log = new Log(ctx.stderr, globalOptions(cmd).quiet);
  const { settings, sources } = await settingsFor(cmd, ctx, TAKES);
  // Before any warning or work: a bad output path ends here.
  const file = flags.scriptOut ? await checkOutputFile(flags.scriptOut, '--script-out', { cwd: ctx.cwd, force: !!flags.force }) : undefined;
  let built = buildJob({ settings, sources, script, args, ...(flags.array !== undefined ? { array: flags.array } : {}), cwd: ctx.cwd });
  // Every other input was checked above: now the (possibly long) pull, before anything is written.
  if (isRegistryImage(settings.image)) {
    const dir = settings.imageDir ?? (file ? path.dirname(file) : ctx.cwd);
    const img = await pullJobImage(settings.image, { dir, stateDir: ctx.cwd, settings, ctx, quiet: !!globalOptions(cmd).quiet });
    log.info(`${img.stage.reused ? 'using' : 'pulled'} ${img.pulled.reference} → ${displayPath(img.file, ctx.cwd)}${img.stage.reused ? ' (already there)' : ''}`);
    built = { ...built, image: img.file, pulledFrom: img.pulled };
  }
  const exists = (p: string) => fs.stat(p).then(() => true, () => false);
  // apptainer cannot bind a path through a symlink (on LUMI /scratch/<project>
  // is one): bind what it points to, resolved here where it can be checked.
  const binds = await Promise.all(built.binds.map(async (b) => {
    const real = await fs.realpath(b.src).catch(() => undefined);
    if (real === undefined) log.warn(`--bind ${b.src}: does not exist here; bound as written`);
    else if (real !== b.src) log.info(`--bind ${b.src}: a symlink to ${real}; binding ${real}${b.dst === b.src ? ` at ${b.dst}` : ''}`);
    return real === undefined || real === b.src ? b : { ...b, src: real };
  }));
  const job = { ...built, binds };
  // The working directory as the user names it (--chdir, or the shell's $PWD)
  // may be a symlink, which apptainer does not mount as such (issue 11).
  const realOf = (p: string) => fs.realpath(p).catch(() => undefined);
  const realCwd = await realOf(ctx.cwd);
  const pwd = ctx.env.PWD;
  const named = built.chdir ? path.resolve(ctx.cwd, built.chdir) : pwd && path.isAbsolute(pwd) && (await realOf(pwd)) === realCwd ? pwd : ctx.cwd;
  const realNamed = await realOf(named);
  if (realNamed && realNamed !== named) log.warn(`the working directory ${named} is a symlink to ${realNamed}; ${job.runtime} does not mount it by that name: run from ${realNamed}${built.chdir ? '' : ` (or pass --chdir ${realNamed})`}`);
  if (!(await exists(job.image))) log.warn(`${job.image} does not exist here; the job will fail unless it exists on the cluster by then`);
  else if (job.gpus) {
    // gpu-vendor amd with a CUDA image (or nvidia with a ROCm one) runs, but on the CPU or not at all.
    const labels = (await imageLabels(job.image, ctx.runner).catch(() => ({ labels: undefined }))).labels;
    const mismatch = gpuVendorMismatch(job, labels);
    if (mismatch) log.warn(mismatch);
  }
  const runDir = job.chdir ?? ctx.cwd;
  if (!(await exists(path.resolve(runDir, script)))) log.warn(`${script} is not in ${runDir}; the job looks for it relative to its working directory`);
  const rendered = renderSbatch(job, { version: VERSION });
  for (const w of rendered.warnings) log.warn(w);
  for (const [flag, pattern] of [['--output', job.output], ['--error', job.error]] as const) {
    const dir = pattern === undefined ? undefined : patternDirectory(pattern, runDir);
    if (dir && !(await exists(dir))) log.warn(`${flag} ${pattern}: ${displayPath(dir, ctx.cwd)}/ does not exist; \`sifpack submit\` creates it (plain sbatch would fail the job without writing any output)`);
  }
  if (file) {
    await writeFileAtomic(file, rendered.text, { force: !!flags.force, mode: 0o755 });
    log.info(`wrote ${displayPath(file, ctx.cwd)}; submit it with \`sifpack submit ${displayPath(file, ctx.cwd)}\``);
  }
  if (flags.json) ctx.stdout.write(`${JSON.stringify({ file: file ?? null, job, ...(file ? {} : { text: rendered.text }) })}\n`);
  else if (!file) ctx.stdout.write(rendered.text);
}
