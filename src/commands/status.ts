/** `sifpack status`: each job's state in plain words; arrays summarised. */
import type { Command } from 'commander';
import { InputError } from '../errors.js';
import { type JobInfo, explainState, isFinished, phaseOf, summariseArray } from '../model/job-state.js';
import { Ledger, type LedgerRun } from '../runtime/ledger.js';
import { type CliContext, Log, globalOptions } from './context.js';
import { addSettings, settingsFor } from './setting-options.js';
import { SLURM_QUERY_COMMANDS, slurmFor } from './slurm-context.js';

interface StatusFlags {
  json?: boolean;
  watch?: boolean;
  interval?: string;
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
        '.sifpack/runs.jsonl that have not finished yet. Finished states are added to the\n' +
        'ledger as they are learnt.',
    )
    .argument('[JOBID...]', 'job ids (default: unfinished jobs from the run ledger)');
  addSettings(cmd, SLURM_QUERY_COMMANDS);
  cmd
    .option('--json', 'print one JSON array of job states')
    .option('--watch', 'keep polling until every job has finished')
    .option('--interval <SECONDS>', 'seconds between polls with --watch', '10')
    .addHelpText(
      'after',
      `
Examples:
  sifpack status                 # my unfinished jobs from this directory's ledger
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
  const targets = ids.length > 0 ? ids : runs.filter((r) => !r.final).map((r) => r.jobId);
  if (targets.length === 0) {
    if (flags.json) ctx.stdout.write('[]\n');
    else log.info('no unfinished jobs in .sifpack/runs.jsonl (give job ids to ask about others)');
    return;
  }

  const query = async (): Promise<JobStatus[]> => {
    const out: JobStatus[] = [];
    for (const id of targets) {
      const jobs = await slurm.jobs(id);
      const rec = byId.get(id);
      if (!jobs || jobs.length === 0) {
        if (rec?.final) {
          out.push({ jobId: id, name: null, state: rec.final.state, phase: rec.final.state === 'COMPLETED' ? 'done' : 'failed', explanation: rec.final.explanation, source: 'ledger' });
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
  };

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
}
