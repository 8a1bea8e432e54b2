/** `sifpack doctor`: one table of what this machine can do, and whether `run` can work here. */
import type { Command } from 'commander';
import { InputError, ResultIsFailure } from '../errors.js';
import { type DoctorRow, runDoctor } from '../workflows/doctor.js';
import { type CliContext, globalOptions } from './context.js';

interface DoctorFlags {
  json?: boolean;
  timeout?: string;
}

export function register(program: Command, ctx: CliContext): void {
  program
    .command('doctor')
    .summary('what this machine can do: apptainer, fakeroot, scratch, Docker, Slurm, squashfs tools, credentials')
    .description(
      'Check what this machine can do before a long build: apptainer or singularity\n' +
        '(version, setuid or user namespaces, --fakeroot, scratch space and noexec,\n' +
        'cache dir), the Docker engine, conda tools, Slurm (sbatch, the controller, the\n' +
        'default partition), squashfs tools, where registry credentials would come\n' +
        'from (never the secrets), and the sifpack.yml and profile in effect.\n\n' +
        'Each row is ok, warning or missing, with the fix in one line. Each probe has a\n' +
        'short time limit, so a dead controller or a hung Docker socket cannot stall it.',
    )
    .option('--json', 'print { rows: [...], readyForRun, builder, seconds }')
    .option('--timeout <SECONDS>', 'time limit of each probe', '5')
    .addHelpText(
      'after',
      `
Exit codes: 0 when everything \`sifpack run\` needs here is usable, 1 when
something it needs is missing (the rows marked "run needs" say what).`,
    )
    .action(async (flags: DoctorFlags, cmd: Command) => run(flags, cmd, ctx));
}

function table(rows: DoctorRow[]): string {
  const w = Math.max(...rows.map((r) => r.check.length));
  const out: string[] = [];
  for (const r of rows) {
    const mark = r.status === 'ok' ? 'ok     ' : r.status === 'warning' ? 'warning' : 'missing';
    out.push(`${mark}  ${r.check.padEnd(w)}  ${r.detail}${r.neededForRun && r.status === 'missing' ? '   [run needs this]' : ''}`);
    if (r.fix && r.status !== 'ok') out.push(`${' '.repeat(9 + w + 2)}fix: ${r.fix}`);
  }
  return out.join('\n');
}

export async function run(flags: DoctorFlags, cmd: Command, ctx: CliContext): Promise<void> {
  const g = globalOptions(cmd);
  const seconds = Number(flags.timeout ?? '5');
  if (!Number.isFinite(seconds) || seconds <= 0) {
    throw new InputError(`--timeout ${flags.timeout}: expected a number of seconds > 0`);
  }
  const report = await runDoctor({ runner: ctx.runner, env: ctx.env, cwd: ctx.cwd, ...(g.config ? { config: g.config } : {}), ...(g.profile !== undefined ? { profile: g.profile } : {}), timeoutMs: seconds * 1000 });
  if (flags.json) ctx.stdout.write(`${JSON.stringify(report)}\n`);
  else {
    ctx.stdout.write(`${table(report.rows)}\n`);
    ctx.stdout.write(
      report.readyForRun
        ? `\nReady for \`sifpack run\`: builds with ${report.builder}, submits to Slurm.\n`
        : `\nNot ready for \`sifpack run\` here; \`sifpack run --plan\` still writes every file.\n`,
    );
  }
  if (!report.readyForRun) {
    const missing = report.rows.filter((r) => r.neededForRun && r.status === 'missing').map((r) => r.check);
    throw new ResultIsFailure(`missing for \`sifpack run\`: ${missing.join(', ')}`);
  }
}
