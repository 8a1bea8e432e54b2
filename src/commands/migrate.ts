/**
 * `sifpack migrate`: turn a job script that activates conda on the host into
 * one that runs the same commands through `apptainer exec IMAGE.sif`.
 */
import { type Command, Option } from 'commander';
import { checkPinned } from '../config/presets.js';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { InputError } from '../errors.js';
import { type CondaEnv, describeEnv, planMigration } from '../model/job-migration.js';
import { parseBind } from '../model/slurm-job.js';
import { lineDiff, renderMigrated } from '../render/migrate.js';
import { shellJoin } from '../render/shell-quote.js';
import { isCondaPrefix } from '../env/prefix.js';
import { locateEnv } from '../env/locate.js';
import { refuseOverwrite, writeFileAtomic } from '../util/atomic-write.js';
import { type BuildResult, buildImage } from '../workflows/build.js';
import { engineFactory } from './build.js';
import { recipeFromInputs } from './def.js';
import { abortOnSigint } from './interrupt.js';
import { Progress } from './progress.js';
import { displayPath } from '../util/display-path.js';
import { VERSION } from '../util/package-root.js';
import { type CliContext, Log, globalOptions } from './context.js';
import { addSettings, settingsFor } from './setting-options.js';

/** The settings migrate takes; their flags, help and types come from the settings table. */
const CONTAINER = ['image', 'runtime', 'gpu-vendor', 'bind', 'module'] as const;
const BUILD = ['builder', 'base', 'base-image', 'defs', 'fakeroot', 'tmpdir', 'docker-network'] as const;
const TAKES = [...CONTAINER, ...BUILD] as const;

/** migrate's own options, which are not settings. */
interface MigrateFlags {
  build?: boolean;
  scriptOut?: string;
  force?: boolean;
  json?: boolean;
}

export function register(program: Command, ctx: CliContext): void {
  const cmd = program
    .command('migrate')
    .summary('turn a job script that activates conda on the host into one that runs through the image')
    .description(
      'Read a job script that activates a conda environment (conda/mamba/micromamba\n' +
        'activate, source .../bin/activate, conda run, or PREFIX/bin/python by path)\n' +
        'and write one that runs the same commands through `apptainer exec IMAGE.sif`:\n' +
        'every #SBATCH line kept, the conda set-up lines removed, each python command\n' +
        '(also under srun or mpirun, with its redirections and pipes) run in the image.\n' +
        'Prints the new script (or writes it with -o), a diff, and the commands that\n' +
        'build the image.\n\n' +
        'A venv, two environments in one script, or python with no environment:\n' +
        'exit 2, naming the line.\n\n' +
        '--image defaults to the image setting, else ENV_NAME.sif; a relative one is read\n' +
        "from the job's directory. --module NAME is loaded where conda was set up.",
    )
    .argument('<JOB>', 'the job script (e.g. job.slurm)');
  cmd.optionsGroup('Container options:');
  addSettings(cmd, CONTAINER);
  cmd.optionsGroup('With --build:');
  cmd.option('--build', 'also build the image from the installed environment (as `sifpack build --from-prefix`), with the usual cache');
  addSettings(cmd, BUILD);
  cmd.optionsGroup('This command:');
  cmd
    .addHelpOption(new Option('-h, --help', 'display help for command'))
    .option('-o, --script-out <FILE>', 'write the new job script here instead of stdout')
    .option('-f, --force', 'overwrite an existing file')
    .option('--json', 'print one object: the environment found, kept directives, removed and rewritten lines, the new script')
    .addHelpText(
      'after',
      `
Examples:
  sifpack migrate train.slurm --image torch.sif -o train-sif.slurm
  sifpack migrate job.slurm --image /scratch/me/env.sif --bind /scratch > new.slurm
  sifpack migrate job.slurm --image env.sif --build -o new.slurm   # and build env.sif

Relative paths in the script (an environment like ./envs/x) are read from the
script's directory: Slurm starts a job in the directory sbatch was run from,
unless #SBATCH --chdir says otherwise, so submit from there.`,
    )
    .action(async (job: string, flags: MigrateFlags, cmd: Command) => run(job, flags, cmd, ctx));
}

/** The commands that make the image the new script runs. */
export function buildCommands(env: CondaEnv, image: string): string[][] {
  const from = env.kind === 'name' ? ['-n', env.name] : ['-p', env.prefix];
  return [
    ['sifpack', 'export', ...from, '-o', 'environment.yml', '--lock', 'environment.lock'],
    ['sifpack', 'build', 'environment.yml', '--lock', 'environment.lock', '-o', image],
  ];
}

export async function run(job: string, flags: MigrateFlags, cmd: Command, ctx: CliContext): Promise<void> {
  const log = new Log(ctx.stderr, globalOptions(cmd).quiet);
  const { settings, sources } = await settingsFor(cmd, ctx, TAKES);
  const quiet = globalOptions(cmd).quiet;
  const jobPath = path.resolve(ctx.cwd, job);
  const text = await fs.readFile(jobPath, 'utf8').catch((err: NodeJS.ErrnoException) => {
    throw new InputError(`${job}: cannot read the job script (${err.code === 'ENOENT' ? 'no such file' : err.code === 'EISDIR' ? 'a directory' : err.message})`, { hint: 'sifpack migrate JOB.slurm [--image IMAGE.sif]' });
  });
  if (text.includes('\0')) throw new InputError(`${job}: is not a text file (it holds NUL bytes)`, { hint: 'give the job script you submit with sbatch' });
  const outside: Record<string, string> = {};
  for (const k of ['HOME', 'USER', 'LOGNAME']) if (ctx.env[k]) outside[k] = ctx.env[k]!;
  const startDir = path.dirname(jobPath);
  const migration = planMigration({ text, file: job, startDir, outside });

  const envName = migration.env.kind === 'name' ? migration.env.name : path.posix.basename(migration.env.prefix);
  // An --image typed here stays as typed (relative to the job's directory), not resolved against ours.
  const typedImage = cmd.getOptionValueSource('image') === 'cli' ? String(cmd.getOptionValue('image')) : undefined;
  const image = typedImage ?? settings.image ?? `${envName}.sif`;
  // A registry reference in the script would make every task pull: migrate writes a file path only.
  if (/^oras:\/\//i.test(image)) throw new InputError(`--image ${image}: migrate takes the path of a .sif file`, { hint: `pull it once first: sifpack pull ${image} -o IMAGE.sif, then --image IMAGE.sif (sbatch and run pull an oras:// image themselves)` });
  if (/[\n\r\0]/.test(image)) throw new InputError(`--image: ${JSON.stringify(image)} cannot hold a line break`, { hint: 'give the image path on one line' });
  const binds = settings.bind.map((b) => parseBind(b, sources.bind ?? '--bind'));
  for (const mod of settings.module) if (/[\n\r\0]/.test(mod)) throw new InputError(`${sources.module ?? '--module'}: ${JSON.stringify(mod)} cannot hold a line break`, { hint: 'one module name per --module' });
  const rendered = renderMigrated(text, migration, { image, runtime: settings.runtime, gpuVendor: settings.gpuVendor, binds, modules: settings.module, version: VERSION, source: path.basename(job) });
  const next = buildCommands(migration.env, image).map(shellJoin);

  const file = flags.scriptOut ? path.resolve(ctx.cwd, flags.scriptOut) : undefined;
  if (file === jobPath && !flags.force) throw new InputError(`-o ${flags.scriptOut}: that is the script being migrated`, { hint: 'write the new script to another file (or pass --force to replace the original)' });
  if (file) await refuseOverwrite(file, { force: !!flags.force });

  // --build: the image first, so a failed build leaves no new script pointing at nothing.
  let built: BuildResult | undefined;
  if (flags.build) {
    const use = migration.envUses[0]!;
    let prefix: string;
    if (migration.env.kind === 'prefix') prefix = migration.env.prefix;
    else {
      const found = await locateEnv(migration.env.name, ctx.env);
      if (!found.prefix) throw new InputError(`${job}:${use.line}: --build: the environment ${migration.env.name} (${use.text}) is not on this machine`, { details: found.looked.map((l) => `looked in ${l}`), hint: 'run migrate --build where the environment is, or set CONDA_ENVS_PATH' });
      prefix = found.prefix;
    }
    if (!(await isCondaPrefix(prefix))) throw new InputError(`${job}:${use.line}: --build: ${prefix} (${use.text}) is not a conda environment on this machine (no conda-meta/)`, { hint: 'run migrate --build where the environment is; without --build, migrate prints the commands to build it there' });
    if (settings.baseImage) checkPinned(settings.baseImage, sources.baseImage ?? '--base-image');
    const { recipe } = await recipeFromInputs({ fromPrefix: prefix, defDir: ctx.cwd, cwd: ctx.cwd }, settings);
    const progress = new Progress(ctx.stderr as never, !!quiet);
    const interrupt = abortOnSigint();
    try {
      built = await buildImage(
        {
          recipe,
          name: recipe.envName,
          output: path.resolve(startDir, image),
          builder: settings.builder,
          ...(settings.fakeroot !== undefined ? { fakeroot: settings.fakeroot } : {}),
          ...(settings.tmpdir ? { tmpdir: settings.tmpdir } : {}),
          ...(settings.dockerNetwork ? { dockerNetwork: settings.dockerNetwork } : {}),
          force: false,
          cwd: ctx.cwd,
          env: ctx.env,
          sifpackVersion: VERSION,
          signal: interrupt.signal,
          onLine: (l) => progress.update(l),
          onInfo: (msg) => {
            progress.done();
            log.info(msg);
          },
        },
        ctx.runner,
        engineFactory(),
      );
    } finally {
      progress.done();
      interrupt.dispose();
    }
    for (const w of built.warnings) log.warn(w);
    log.info(built.cached ? `${displayPath(built.image, ctx.cwd)} is up to date (same build hash): nothing to build` : `built ${displayPath(built.image, ctx.cwd)} with ${built.builder} in ${built.seconds.toFixed(1)}s`);
  }
  if (file) await writeFileAtomic(file, rendered.text, { force: !!flags.force, mode: 0o755 });

  const use = migration.envUses[0]!;
  if (!flags.json) {
    log.info(`found ${describeEnv(migration.env)} (line ${use.line}: ${use.text})`);
    for (const a of migration.assumptions) log.info(`assumed: ${a}`);
    for (const w of rendered.warnings) log.warn(w);
    if (!built && !(await fs.stat(path.resolve(startDir, image)).then(() => true, () => false))) log.info(`${image} does not exist yet; make it with:\n  ${next.join('\n  ')}`);
  }
  const diff = `--- ${displayPath(jobPath, ctx.cwd)}\n+++ ${file ? displayPath(file, ctx.cwd) : '(new script)'}\n${lineDiff(text, rendered.text)}`;
  if (flags.json) {
    ctx.stdout.write(
      `${JSON.stringify({
        file: file ?? null,
        ...(file ? {} : { text: rendered.text }),
        env: migration.env,
        envLines: migration.envUses,
        image,
        gpus: migration.gpus,
        directives: migration.directives,
        removed: migration.removed,
        rewritten: migration.rewritten,
        assumptions: migration.assumptions,
        warnings: rendered.warnings,
        buildCommands: next,
        built: built ? { image: built.image, sha256: built.sha256, hash: built.hash, builder: built.builder, cached: built.cached, seconds: built.seconds, ...(built.tag ? { tag: built.tag } : {}) } : null,
      })}\n`,
    );
    return;
  }
  if (file) {
    // The new script is in the file: the diff is the result.
    ctx.stdout.write(diff);
    log.info(`wrote ${displayPath(file, ctx.cwd)}; submit it with \`sifpack submit ${displayPath(file, ctx.cwd)}\``);
  } else {
    if (!globalOptions(cmd).quiet) ctx.stderr.write(diff);
    ctx.stdout.write(rendered.text);
  }
}
