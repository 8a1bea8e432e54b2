#!/usr/bin/env node
/**
 * sifpack's entry point: wires the commands into commander and maps every
 * error to an exit code in one place (0 ok, 1 failure, 2 usage or input).
 */
import { Command, CommanderError } from 'commander';
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { CliContext } from './commands/context.js';
import * as buildCommand from './commands/build.js';
import * as convertCommand from './commands/convert.js';
import * as defCommand from './commands/def.js';
import * as exportCommand from './commands/export.js';
import * as inspectCommand from './commands/inspect.js';
import * as logsCommand from './commands/logs.js';
import * as migrateCommand from './commands/migrate.js';
import * as sbatchCommand from './commands/sbatch.js';
import * as signCommand from './commands/sign.js';
import * as statusCommand from './commands/status.js';
import * as submitCommand from './commands/submit.js';
import * as verifyCommand from './commands/verify.js';
import { EXIT, SifpackError, formatError } from './errors.js';
import { NodeProcessRunner } from './runtime/process.js';
import { VERSION } from './util/package-root.js';

const COMMANDS = [exportCommand, defCommand, buildCommand, convertCommand, inspectCommand, signCommand, verifyCommand, sbatchCommand, submitCommand, statusCommand, logsCommand, migrateCommand];

export function buildProgram(ctx: CliContext): Command {
  const program = new Command('sifpack');
  program
    .description(
      'Turn the conda environment you already have into an Apptainer image, and run\n' +
        'your Python script on Slurm through `apptainer exec` instead of conda.\n\n' +
        'Pipeline: export → def → build → sbatch → submit → status (or all at once: run).\n' +
        'Settings: defaults < sifpack.yml (or --config) < its --profile < SIFPACK_* < flags.',
    )
    .version(VERSION, '-V, --version', 'print the sifpack version')
    .option('--config <FILE>', 'settings file (default: ./sifpack.yml when present)')
    .option('--profile <NAME>', 'named cluster profile from the settings file (or SIFPACK_PROFILE)')
    .option('-q, --quiet', 'print only results and warnings')
    .showSuggestionAfterError(true)
    .configureOutput({
      writeOut: (s) => void ctx.stdout.write(s),
      writeErr: (s) => void ctx.stderr.write(s),
    })
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
    sub.configureOutput({ writeOut: (s) => void ctx.stdout.write(s), writeErr: (s) => void ctx.stderr.write(s) }).exitOverride();
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
  sifpack COMMAND --help      # every command's options and examples

Exit codes: 0 success, 1 failure, 2 usage or input error.`,
  );
  return program;
}

/** Runs the CLI with `argv` (without node and script) and returns the exit code. */
export async function main(argv: string[], ctx: CliContext): Promise<number> {
  const program = buildProgram(ctx);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return EXIT.ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      // help and version end with code 0; every parse error is a usage error.
      if (err.exitCode === 0 || err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return EXIT.ok;
      return EXIT.usage;
    }
    if (err instanceof SifpackError) {
      ctx.stderr.write(`${formatError(err)}\n`);
      return err.exitCode;
    }
    const e = err as Error;
    ctx.stderr.write(`sifpack: internal error (please report it): ${e.stack ?? String(e)}\n`);
    return EXIT.failure;
  }
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
