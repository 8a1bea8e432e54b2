/** `sifpack export`: a conda environment to a portable environment.yml (and an exact lock). */
import type { Command } from 'commander';
import path from 'node:path';
import { exportEnvironment } from '../env/export.js';
import { pipLockPath } from '../env/normalize.js';
import { InputError } from '../errors.js';
import { refuseOverwrite, writeFilesAtomic } from '../util/atomic-write.js';
import { displayPath } from '../util/display-path.js';
import { type CliContext, Log, globalOptions } from './context.js';
import { addSettings, settingsFor } from './setting-options.js';

/** The settings export takes; their flags, help and types come from the settings table. */
const TAKES = ['from-history', 'no-builds', 'allow-local', 'via'] as const;

/** export's own options, which are not settings. */
interface ExportFlags {
  name?: string;
  prefix?: string;
  output?: string;
  file?: string;
  lock?: string;
  setName?: string;
  force?: boolean;
  json?: boolean;
}

export function register(program: Command, ctx: CliContext): void {
  const cmd = program
    .command('export')
    .summary('capture a conda environment as a portable environment.yml (+ exact lock)')
    .description(
      'Capture a conda environment as environment.yml, ready to build an image from.\n\n' +
        'By default the prefix is read directly (conda-meta/ and site-packages), so no\n' +
        'conda is needed; -n NAME is looked up where conda, mamba and micromamba keep\n' +
        'environments. The output never holds a prefix: line or channel credentials,\n' +
        'and pip-installed packages go into a nested pip: list.',
    );
  addSettings(cmd, TAKES);
  cmd
    .option('-n, --name <NAME>', 'environment name (looked up in CONDA_ENVS_PATH, ~/.conda/environments.txt, ~/miniforge3/envs, ...)')
    .option('-p, --prefix <PREFIX>', 'environment path (the directory holding conda-meta/)')
    .option('-o, --output <FILE>', 'write environment.yml here instead of stdout')
    .option('-f, --file <FILE>', "the same as -o, as in `conda env export -f`")
    .option('--lock <FILE>', 'also write an @EXPLICIT lock (exact URLs and md5s, no solver) and, with pip packages, FILE.pip.txt')
    .option('--set-name <NAME>', 'the name: written into environment.yml (default: the environment\'s own)')
    .option('--force', 'overwrite existing output files (-f is --file, as in conda)')
    .option('--json', 'print one JSON result on stdout')
    .addHelpText(
      'after',
      `
Examples:
  sifpack export -n analysis -o environment.yml
  sifpack export -n analysis -f environment.yml       # conda env export's -f works too
  sifpack export -p ~/miniforge3/envs/analysis --from-history -o environment.yml
  sifpack export -p ./env -o environment.yml --lock environment.lock
  sifpack export -n analysis --via micromamba        # through micromamba, to stdout

Exit codes: 0 ok, 1 a tool failed, 2 bad input (not a prefix, corrupt record,
unknown env name, local pip installs without --allow-local).`,
    )
    .action(async (flags: ExportFlags, cmd: Command) => run(flags, cmd, ctx));
}

export async function run(flags: ExportFlags, cmd: Command, ctx: CliContext): Promise<void> {
  const log = new Log(ctx.stderr, globalOptions(cmd).quiet);
  const { settings } = await settingsFor(cmd, ctx, TAKES);
  if (flags.output && flags.file && path.resolve(ctx.cwd, flags.output) !== path.resolve(ctx.cwd, flags.file)) {
    throw new InputError(`-o ${flags.output} and -f ${flags.file} name two output files`, { hint: '-f/--file is the same as -o/--output (conda\'s name for it): give one' });
  }
  const outArg = flags.output ?? flags.file;
  const output = outArg ? path.resolve(ctx.cwd, outArg) : undefined;
  const lock = flags.lock ? path.resolve(ctx.cwd, flags.lock) : undefined;
  if (output && lock && output === lock) throw new InputError('-o and --lock name the same file', { hint: 'give the lock its own name, e.g. environment.lock' });
  // Refuse before any work, so a long export does not end in "exists".
  for (const f of [output, lock, lock && pipLockPath(lock)]) if (f) await refuseOverwrite(f, { force: !!flags.force });

  const result = await exportEnvironment(
    {
      ...(flags.prefix ? { prefix: flags.prefix } : {}),
      ...(flags.name ? { name: flags.name } : {}),
      via: settings.via,
      options: {
        ...(flags.setName ? { name: flags.setName } : {}),
        fromHistory: settings.fromHistory,
        noBuilds: settings.noBuilds,
        allowLocal: settings.allowLocal,
      },
      lock: !!lock,
      env: ctx.env,
      cwd: ctx.cwd,
    },
    ctx.runner,
  );
  for (const w of result.warnings) log.warn(w);

  const files: { path: string; data: string }[] = [];
  if (output) files.push({ path: output, data: result.environmentYaml });
  if (lock && result.explicitLock) files.push({ path: lock, data: result.explicitLock });
  if (lock && result.pipLock) files.push({ path: pipLockPath(lock), data: result.pipLock });
  await writeFilesAtomic(files, { force: !!flags.force });

  const spec = result.outcome.spec;
  if (flags.json) {
    ctx.stdout.write(
      `${JSON.stringify({
        name: spec.name,
        via: result.via,
        prefix: result.prefix ?? null,
        platform: result.platform ?? null,
        output: output ?? null,
        lock: lock ?? null,
        pipLock: lock && result.pipLock ? pipLockPath(lock) : null,
        channels: spec.channels,
        dependencies: spec.dependencies.length,
        pip: spec.pip.length,
        skippedLocal: result.outcome.skippedLocal.map((p) => ({ name: p.name, source: p.source, location: p.location ?? null })),
        warnings: result.warnings,
        ...(output ? {} : { environmentYaml: result.environmentYaml }),
      })}\n`,
    );
    return;
  }
  if (!output) ctx.stdout.write(result.environmentYaml);
  else log.info(`wrote ${displayPath(output, ctx.cwd)} (${spec.dependencies.length} conda, ${spec.pip.length} pip) via ${result.via}`);
  if (lock) log.info(`wrote ${displayPath(lock, ctx.cwd)}${result.pipLock ? ` and ${displayPath(pipLockPath(lock), ctx.cwd)}` : ''}`);
}
