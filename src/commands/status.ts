/** `sifpack status`: each job's state in plain words; arrays summarised. */
import type { Command } from 'commander';
import { InputError, ResultIsFailure } from '../errors.js';
import { type JobInfo, explainState, isFinished, phaseOf, summariseArray } from '../model/job-state.js';
import { Ledger, type LedgerRun } from '../runtime/ledger.js';
import type { SlurmCli } from '../runtime/slurm.js';
import { type CliContext, Log, globalOptions } from './context.js';
import { addSettings, settingsFor } from './setting-options.js';
import { SLURM_QUERY_COMMANDS, slurmFor } from './slurm-context.js';

interface StatusFlags {
  json?: boolean;
  watch?: boolean;
  interval?: string;
  all?: boolean;
  since?: string;
}

/** How far back `status` without ids looks for finished jobs. */
const RECENT_MS = 24 * 3600 * 1000;

/**
 * `--since` as sacct -S takes it, plus durations: 30m, 12h, 2d, 1w (ago), or a
 * date/time: 2026-11-25, 2026-11-25T14:00[:00], now-2days style is not taken.
 */
export function parseSince(value: string, now = Date.now()): number {
  const d = /^(\d+)\s*(s|m|min|h|d|w)$/i.exec(value.trim());
  if (d) {
    const unit = { s: 1e3, m: 60e3, min: 60e3, h: 3600e3, d: 86400e3, w: 7 * 86400e3 }[d[2]!.toLowerCase() as 's']!;
    return now - Number(d[1]) * unit;
  }
  if (/^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2})?)?$/.test(value.trim())) {
    const t = new Date(value.trim().length === 10 ? `${value.trim()}T00:00:00` : value.trim()).getTime();
    if (Number.isFinite(t)) return t;
  }
  throw new InputError(`--since ${JSON.stringify(value)}: not a duration or a date`, { hint: 'use a duration (30m, 12h, 2d, 1w) or a date as sacct -S takes it (2026-11-25 or 2026-11-25T14:00)' });
}

export interface JobStatus {
  jobId: string;
  name: string | null;
  state: string;
  phase: string;
  explanation: string;
  /** Array jobs: each task. */
  tasks?: { taskId: string; state: string; explanation: string }[];
  /** Where the answer came from. */
  source: 'slurm' | 'ledger';
}

export function register(program: Command, ctx: CliContext): void {
  const cmd = program
    .command('status')
    .summary("jobs' states in plain words (exit code, out of memory, time limit, waiting on what)")
    .description(
      "Show each job's state and why, in plain words: \"exited with code 3\", \"ran out of\n" +
        'memory", "hit its 00:01:00 time limit", "waiting: Dependency". Array jobs are\n' +
        'summarised ("10 completed, 2 failed: tasks 3, 7"). Without JOBIDs: the jobs in\n' +
        '.sifpack/runs.jsonl that have not finished yet, then those that finished in the\n' +
        'last 24 hours. Final states are added to the ledger as they are learnt, so a\n' +
        'job Slurm has forgotten still shows how it ended. With --watch the exit code\n' +
        'is 1 when any watched job did not complete (failed, cancelled, timed out).',
    )
    .argument('[JOBID...]', 'job ids (default: unfinished jobs, then those finished in the last 24 h)');
  addSettings(cmd, SLURM_QUERY_COMMANDS);
  cmd
    .option('--all', 'every job in the ledger')
    .option('--since <WHEN>', 'jobs submitted since WHEN: 30m, 12h, 2d, 1w, or a date (like sacct -S)')
    .option('--json', 'print one JSON array of job states')
    .option('--watch', 'keep polling until every job has finished; exit 1 if any did not complete')
    .option('--interval <SECONDS>', 'seconds between polls with --watch', '10')
    .addHelpText(
      'after',
      `
Examples:
  sifpack status                 # unfinished jobs from this directory's ledger, then the last 24 h
  sifpack status --since 2d      # everything submitted in the last two days
  sifpack status --all --json
  sifpack status 4242 4243
  sifpack status 4242 --watch --interval 30`,
    )
    .action(async (ids: string[], flags: StatusFlags, cmd: Command) => run(ids, flags, cmd, ctx));
}

/** Folds what Slurm says of one id (one job, or an array's tasks) into a status. */
export function toStatus(jobId: string, jobs: JobInfo[]): JobStatus {
  const tasks = jobs.filter((j) => j.arrayTaskId !== undefined && /^\d+$/.test(j.arrayTaskId));
  const pendingRange = jobs.find((j) => j.arrayTaskId !== undefined && !/^\d+$/.test(j.arrayTaskId));
  if (tasks.length > 0 || pendingRange) {
    const all = [...tasks];
    const summary = summariseArray(all) + (pendingRange ? `${all.length ? ', ' : ''}tasks ${pendingRange.arrayTaskId} waiting` : '');
    const phases = all.map(phaseOf);
    const phase = pendingRange || phases.includes('running') || phases.includes('waiting') ? (phases.includes('running') ? 'running' : 'waiting') : phases.includes('failed') ? 'failed' : 'done';
    return {
      jobId,
      name: jobs[0]?.name ?? null,
      state: phase === 'done' ? 'COMPLETED' : phase === 'failed' ? 'FAILED' : phase.toUpperCase(),
      phase,
      explanation: summary,
      tasks: all.map((t) => ({ taskId: t.arrayTaskId!, state: t.state, explanation: explainState(t) })),
      source: 'slurm',
    };
  }
  const j = jobs[0]!;
  return { jobId, name: j.name ?? null, state: j.state.split(/\s+/)[0]!, phase: phaseOf(j), explanation: explainState(j), source: 'slurm' };
}

/**
 * Each job's status from Slurm, else from the ledger; a final state learnt
 * now is appended to the ledger once (`status` and `run --watch` share this).
 */
export async function jobStatuses(targets: readonly string[], slurm: SlurmCli, ledger: Ledger, byId: Map<string, LedgerRun>): Promise<JobStatus[]> {
  const out: JobStatus[] = [];
  for (const id of targets) {
    const jobs = await slurm.jobs(id);
    const rec = byId.get(id);
    if (!jobs || jobs.length === 0) {
      if (rec?.final) {
        out.push({ jobId: id, name: null, state: rec.final.state, phase: rec.final.state === 'COMPLETED' ? 'done' : 'failed', explanation: `${rec.final.explanation} (last known state, from the ledger)`, source: 'ledger' });
      } else if (rec) {
        out.push({ jobId: id, name: null, state: 'UNKNOWN', phase: 'unknown', explanation: 'no longer known to Slurm (finished long enough ago that the controller forgot it, and there is no accounting)', source: 'ledger' });
      } else {
        throw new InputError(`job ${id} is not known to Slurm`, { hint: 'check the id with `squeue --me`; finished jobs stay visible only for a while unless the site runs accounting (sacct)' });
      }
      continue;
    }
    const st = toStatus(id, jobs);
    out.push(st);
    if (rec && !rec.final && (st.phase === 'done' || st.phase === 'failed') && jobs.every(isFinished)) {
      await ledger.append({ type: 'final', jobId: id, state: st.state, explanation: st.explanation, at: new Date().toISOString() });
      rec.final = { type: 'final', jobId: id, state: st.state, explanation: st.explanation, at: '' };
    }
  }
  return out;
}

function isValidJobId(id: string): boolean {
  return /^\d+(_\d+)?$/.test(id);
}

export async function run(ids: string[], flags: StatusFlags, cmd: Command, ctx: CliContext): Promise<void> {
  const log = new Log(ctx.stderr, globalOptions(cmd).quiet);
  const { settings } = await settingsFor(cmd, ctx, SLURM_QUERY_COMMANDS);
  for (const id of ids) if (!isValidJobId(id)) throw new InputError(`${JSON.stringify(id)} is not a job id`, { hint: 'job ids are numbers, e.g. 4242 (or 4242_3 for one array task)' });
  const interval = Number(flags.interval);
  if (!Number.isFinite(interval) || interval < 1) throw new InputError(`--interval ${flags.interval}: expected a number of seconds >= 1`);
  const slurm = slurmFor(settings, ctx);
  const ledger = new Ledger(ctx.cwd, (m) => log.warn(m));
  const runs = await ledger.runs();
  const byId = new Map<string, LedgerRun>(runs.map((r) => [r.jobId, r]));
  if (ids.length > 0 && (flags.all || flags.since)) throw new InputError('give job ids, or --all / --since, not both');
  const since = flags.since !== undefined ? parseSince(flags.since) : undefined;
  const finishedAt = (r: LedgerRun) => Date.parse(r.final?.at || r.cancelledAt || r.submittedAt);
  const chosen = ids.length > 0
    ? undefined
    : flags.all
      ? runs
      : since !== undefined
        ? runs.filter((r) => Date.parse(r.submittedAt) >= since)
        : // Unfinished first, then what ended in the last day (newest last), so a failure is seen more than once.
          [...runs.filter((r) => !r.final), ...runs.filter((r) => r.final && Date.now() - finishedAt(r) <= RECENT_MS)];
  const targets = ids.length > 0 ? ids : chosen!.map((r) => r.jobId);
  if (targets.length === 0) {
    if (flags.json) ctx.stdout.write('[]\n');
    else log.info(`no ${flags.all ? '' : since !== undefined ? `jobs submitted since ${new Date(since).toISOString()} ` : 'unfinished or recently finished jobs '}in .sifpack/runs.jsonl (give job ids to ask about others)`);
    return;
  }

  const query = () => jobStatuses(targets, slurm, ledger, byId);

  const print = (states: JobStatus[]) => {
    if (flags.json) {
      ctx.stdout.write(`${JSON.stringify(states)}\n`);
      return;
    }
    const w = Math.max(5, ...states.map((s) => s.jobId.length));
    for (const s of states) ctx.stdout.write(`${s.jobId.padEnd(w)}  ${(s.name ?? '-').padEnd(12)}  ${s.state.padEnd(10)}  ${s.explanation}\n`);
  };

  let states = await query();
  print(states);
  if (!flags.watch) return;
  const finishWatch = () => {
    const bad = states.filter((s) => s.state !== 'COMPLETED');
    if (bad.length > 0) {
      // For scripts: `sifpack status JOB --watch && next-step` must not go on after a failure.
      throw new ResultIsFailure(`${bad.length} of ${states.length} watched job(s) did not complete: ${bad.map((s) => `${s.jobId} ${s.state}`).join(', ')}`, { hint: 'see why with `sifpack logs JOBID`' });
    }
  };
  let last = JSON.stringify(states);
  while (!states.every((s) => s.phase === 'done' || s.phase === 'failed' || s.phase === 'unknown')) {
    await new Promise((r) => setTimeout(r, interval * 1000));
    states = await query();
    const now = JSON.stringify(states);
    if (now !== last) {
      if (!flags.json) ctx.stdout.write(`-- ${new Date().toISOString()}\n`);
      print(states);
      last = now;
    }
  }
  finishWatch();
}
