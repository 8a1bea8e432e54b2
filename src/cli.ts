#!/usr/bin/env node
/**
 * sifpack's entry point: wires the commands into commander and maps every
 * error to an exit code in one place (0 ok, 1 failure, 2 usage or input).
 */
import { Command, CommanderError, Help } from 'commander';
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { CliContext } from './commands/context.js';
import * as buildCommand from './commands/build.js';
import * as cancelCommand from './commands/cancel.js';
import * as convertCommand from './commands/convert.js';
import * as defCommand from './commands/def.js';
import * as doctorCommand from './commands/doctor.js';
import * as exportCommand from './commands/export.js';
import * as inspectCommand from './commands/inspect.js';
import * as logsCommand from './commands/logs.js';
import * as migrateCommand from './commands/migrate.js';
import * as pullCommand from './commands/pull.js';
import * as pushCommand from './commands/push.js';
import * as sbatchCommand from './commands/sbatch.js';
import * as signCommand from './commands/sign.js';
import * as statusCommand from './commands/status.js';
import * as runCommand from './commands/run.js';
import * as submitCommand from './commands/submit.js';
import * as verifyCommand from './commands/verify.js';
import { EXIT, InputError, ResultIsFailure, RuntimeFailure, SifpackError, ToolNotFoundError, formatError } from './errors.js';
import { NodeProcessRunner } from './runtime/process.js';
import { VERSION } from './util/package-root.js';

// Listed in --help in this order: check the machine, the pipeline step by step, share and sign, bring old job scripts over, then all of it at once.
const COMMANDS = [doctorCommand, exportCommand, defCommand, buildCommand, convertCommand, inspectCommand, signCommand, verifyCommand, pushCommand, pullCommand, sbatchCommand, submitCommand, statusCommand, cancelCommand, logsCommand, migrateCommand, runCommand];

export function buildProgram(ctx: CliContext): Command {
  const program = new Command('sifpack');
  program
    .description(
      'Turn the conda environment you already have into an Apptainer image, and run\n' +
        'your Python script on Slurm through `apptainer exec` instead of conda.\n\n' +
        'Pipeline: export → def → build → sbatch → submit → status, or all at once: run.\n' +
        'First time on a machine: doctor says what it can do.\n' +
        'Settings: defaults < sifpack.yml (or --config) < its --profile < SIFPACK_* < flags.',
    )
    .version(VERSION, '-V, --version', 'print the sifpack version')
    .option('--config <FILE>', 'settings file (default: ./sifpack.yml when present)')
    .option('--profile <NAME>', 'named cluster profile from the settings file (or SIFPACK_PROFILE)')
    .option('-q, --quiet', 'print only results and warnings')
    .showSuggestionAfterError(true)
    .configureOutput(commanderOutput(ctx))
    .configureHelp({ boxWrap: (str: string, width: number) => Help.prototype.boxWrap.call(help, joinWrappedLines(str), width) })
    .exitOverride();
  // Options before the command name belong to sifpack, after it to the
  // command: `sifpack sbatch -q normal` is sbatch's --qos, as in Slurm.
  program.enablePositionalOptions();
  for (const c of COMMANDS) c.register(program, ctx);
  // Subcommands inherit output and exit handling, and take the global
  // options after their name too (`sifpack build --quiet`), except a short
  // flag the command uses for its own: where -q is sbatch's --qos, --quiet
  // is -Q, as in Slurm's sbatch.
  for (const sub of program.commands) {
    sub.configureOutput(commanderOutput(ctx, sub.name())).exitOverride();
    sub.optionsGroup('Global options:');
    const taken = (short: string) => sub.options.some((o) => o.short === short);
    for (const g of program.options.filter((o) => o.long !== '--version')) {
      const rest = g.flags.replace(/^-\w, /, '');
      const short = !g.short || !taken(g.short) ? g.short : g.long === '--quiet' && !taken('-Q') ? '-Q' : undefined;
      sub.option(short ? `${short}, ${rest}` : rest, g.description);
    }
  }
  program.addHelpText(
    'after',
    `
Examples (the pipeline, one step at a time):
  sifpack export -n analysis --from-history -o environment.yml --lock environment.lock
  sifpack build environment.yml --lock environment.lock -o analysis.sif
  sifpack sbatch analyze.py data.csv --image analysis.sif --time 30 --mem 4G --script-out analyze.sbatch
  sifpack submit analyze.sbatch && sifpack status

All at once (files in .sifpack/analysis/; unchanged steps are reused next time):
  sifpack run analyze.py data.csv -n analysis --time 30 --mem 4G --watch
  sifpack run analyze.py data.csv -n analysis --plan    # write every file, build and submit nothing

  sifpack COMMAND --help      # every command's options and examples

Exit codes: 0 success, 1 failure, 2 usage or input error.`,
  );
  return program;
}

const help = new Help();

/**
 * Descriptions are written wrapped at 80 columns; commander wraps again at
 * the terminal's width and keeps our breaks, which leaves short lines such as
 * "apptainer or\nsingularity\n(on a cluster)". A break inside a sentence is
 * joined first; breaks after a sentence or a colon, blank lines and indented
 * or list lines stay.
 */
export function joinWrappedLines(str: string): string {
  return str.replace(/([^\n.:!?])\n(?=[^\s\-*\n])/g, '$1 ');
}

/**
 * commander's own parse errors ("error: unknown option '--x'\n(Did you mean
 * --y?)") in the same shape as ours: `sifpack: error: ...` and a `hint:` line.
 */
function commanderOutput(ctx: CliContext, command?: string) {
  return {
    writeOut: (s: string) => void ctx.stdout.write(s),
    writeErr: (s: string) => void ctx.stderr.write(s),
    outputError: (s: string, write: (s: string) => void) => write(`${formatCommanderError(s, command)}\n`),
  };
}

/** `error: X\n(Did you mean Y?)` → `sifpack: error: X\nhint: did you mean Y? ...`. */
export function formatCommanderError(raw: string, command?: string): string {
  const { message, hint } = splitCommanderError(raw, command);
  return formatError(new InputError(message, { hint }));
}

function splitCommanderError(raw: string, command?: string): { message: string; hint: string } {
  const lines = raw.trim().split('\n');
  const suggestion = lines.slice(1).join(' ').match(/\(Did you mean (.+)\?\)/);
  // Our own advice after the first line (sbatch's `--` hint) stays part of the message.
  const message = (suggestion ? (lines[0] ?? '') : lines.join('\n')).replace(/^error: /, '');
  const help = `sifpack ${command ? `${command} ` : ''}--help`;
  return { message, hint: suggestion ? `did you mean ${suggestion[1]}? (\`${help}\` lists them all)` : `see \`${help}\`` };
}

/** With --json anywhere before `--`, errors are also one JSON object on stdout. */
function wantsJson(argv: string[]): boolean {
  const end = argv.indexOf('--');
  return (end < 0 ? argv : argv.slice(0, end)).includes('--json');
}

const ERRNO_REASONS: Record<string, string> = {
  ENOENT: 'no such file or directory',
  EISDIR: 'is a directory',
  ENOTDIR: 'a part of the path is not a directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on the device',
  EEXIST: 'already exists',
};

/**
 * A file-system error that no check caught: still a plain sentence naming
 * the path, not a stack trace. Space and permissions are the user's to fix
 * (exit 1); the rest means a path was wrong (exit 2).
 */
function fromErrno(err: unknown): SifpackError | undefined {
  const e = err as NodeJS.ErrnoException & { dest?: string };
  if (!e || typeof e.code !== 'string' || !(e.code in ERRNO_REASONS) || !e.path) return undefined;
  const reason = ERRNO_REASONS[e.code]!;
  const msg = `${e.path}${e.dest ? ` → ${e.dest}` : ''}: ${reason}`;
  if (e.code === 'ENOSPC') return new RuntimeFailure(msg, { hint: 'free space there, or point --tmpdir / -o elsewhere', cause: err });
  return new InputError(msg, { hint: 'check the paths given on the command line', cause: err });
}

/** Runs the CLI with `argv` (without node and script) and returns the exit code. */
export async function main(argv: string[], ctx: CliContext): Promise<number> {
  const program = buildProgram(ctx);
  const json = wantsJson(argv);
  const jsonError = (code: string, message: string, hint: string | null) => {
    if (json) ctx.stdout.write(`${JSON.stringify({ error: { code, message, hint } })}\n`);
  };
  // A bare `sifpack` asks what there is: the help, as a result (stdout, exit 0).
  if (argv.length === 0) {
    ctx.stdout.write(program.helpInformation());
    return EXIT.ok;
  }
  try {
    await program.parseAsync(argv, { from: 'user' });
    return EXIT.ok;
  } catch (caught) {
    if (caught instanceof CommanderError) {
      // help and version end with code 0; every parse error is a usage error.
      if (caught.exitCode === 0 || caught.code === 'commander.helpDisplayed' || caught.code === 'commander.version') return EXIT.ok;
      if (caught.code === 'commander.help') return caught.exitCode === 0 ? EXIT.ok : EXIT.usage;
      const sub = program.commands.find((c) => argv.includes(c.name()));
      const { message, hint } = splitCommanderError(caught.message, sub?.name());
      jsonError(caught.code.replace(/^commander\./, '').replace(/([A-Z])/g, '_$1').toLowerCase(), message, hint);
      return EXIT.usage;
    }
    const err = caught instanceof SifpackError ? caught : fromErrno(caught);
    if (err) {
      ctx.stderr.write(`${formatError(err)}\n`);
      if (!(err instanceof ResultIsFailure)) jsonError(errorCode(err), err.message, err.hint ?? null);
      return err.exitCode;
    }
    const e = caught as Error;
    ctx.stderr.write(`sifpack: internal error (please report it): ${e.stack ?? String(e)}\n`);
    jsonError('internal', String(e.message ?? e), 'please report it');
    return EXIT.failure;
  }
}

/** A stable word for the kind of error, for `--json` readers. */
function errorCode(err: SifpackError): string {
  if (err instanceof ToolNotFoundError) return 'tool_not_found';
  if (err.exitCode === EXIT.interrupted) return 'interrupted';
  return err instanceof InputError || err.exitCode === EXIT.usage ? 'input' : 'failure';
}

function isEntryPoint(): boolean {
  try {
    return !!process.argv[1] && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  // `sifpack ... | head` closes the pipe early: that is not an error.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
      throw err;
    });
  }
  const ctx: CliContext = {
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    cwd: process.cwd(),
    runner: new NodeProcessRunner(),
  };
  main(process.argv.slice(2), ctx).then((code) => {
    process.exitCode = code;
  });
}
