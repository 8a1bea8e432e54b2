/** `sifpack cancel`: scancel jobs and record it in the run ledger. */
import type { Command } from 'commander';
import { InputError } from '../errors.js';
import { Ledger } from '../runtime/ledger.js';
import { type CliContext, Log, globalOptions } from './context.js';
import { addSettings, settingsFor } from './setting-options.js';
import { slurmFor } from './slurm-context.js';

interface CancelFlags {
  all?: boolean;
  json?: boolean;
}

const TAKES = ['scancel-path'] as const;

export function register(program: Command, ctx: CliContext): void {
  const cmd = program
    .command('cancel')
    .summary('cancel jobs with scancel and record it in .sifpack/runs.jsonl')
    .description(
      'Cancel jobs with `scancel` (Slurm\'s own command, so its permissions and\n' +
        'messages apply) and add a cancel line per job to the run ledger. --all cancels\n' +
        'every job of the ledger that has not finished.',
    )
    .argument('[JOBID...]', 'job ids (4242, or 4242_3 for one array task)')
    .option('--all', "every unfinished job in this directory's ledger");
  addSettings(cmd, TAKES);
  cmd
    .option('--json', 'print { "cancelled": [...] }')
    .addHelpText('after', '\nExamples:\n  sifpack cancel 4242\n  sifpack cancel --all')
    .action(async (ids: string[], flags: CancelFlags, cmd: Command) => run(ids, flags, cmd, ctx));
}

export async function run(ids: string[], flags: CancelFlags, cmd: Command, ctx: CliContext): Promise<void> {
  const log = new Log(ctx.stderr, globalOptions(cmd).quiet);
  const { settings } = await settingsFor(cmd, ctx, TAKES);
  if (ids.length > 0 && flags.all) throw new InputError('give job ids or --all, not both');
  if (ids.length === 0 && !flags.all) throw new InputError('which jobs? give job ids, or --all for every unfinished job in the ledger', { hint: 'see them with `sifpack status`' });
  for (const id of ids) if (!/^\d+(_\d+)?$/.test(id)) throw new InputError(`${JSON.stringify(id)} is not a job id`, { hint: 'job ids are numbers, e.g. 4242 (or 4242_3 for one array task)' });
  const ledger = new Ledger(ctx.cwd);
  const targets = flags.all ? (await ledger.runs()).filter((r) => !r.final && !r.cancelledAt).map((r) => r.jobId) : ids;
  if (targets.length === 0) {
    if (flags.json) ctx.stdout.write(`${JSON.stringify({ cancelled: [] })}\n`);
    else log.info('no unfinished jobs in .sifpack/runs.jsonl');
    return;
  }
  await slurmFor(settings, ctx).cancel(targets);
  const at = new Date().toISOString();
  for (const jobId of targets) await ledger.append({ type: 'cancel', jobId, at });
  if (flags.json) ctx.stdout.write(`${JSON.stringify({ cancelled: targets })}\n`);
  else {
    ctx.stdout.write(`${targets.join('\n')}\n`);
    log.info(`asked Slurm to cancel ${targets.length} job(s); \`sifpack status\` shows when they have stopped`);
  }
}
