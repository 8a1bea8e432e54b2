/**
 * A Slurm job's state in plain words. Slurm says FAILED with ExitCode=3:0,
 * OUT_OF_MEMORY, TIMEOUT with TimeLimit=00:01:00, PENDING with
 * Reason=Dependency; researchers want "exited with code 3", "ran out of
 * memory", "hit its 00:01:00 time limit", "waiting: Dependency".
 */

/** What sifpack knows about one job (or one array task). */
export interface JobInfo {
  jobId: string;
  /** For array tasks: the array's job id and this task's index. */
  arrayJobId?: string;
  arrayTaskId?: string;
  name?: string;
  /** Slurm's state word: PENDING, RUNNING, COMPLETED, FAILED, TIMEOUT, ... */
  state: string;
  reason?: string;
  /** "3:0": exit code, then the signal that ended it. */
  exitCode?: string;
  timeLimit?: string;
  runTime?: string;
  stdout?: string;
  stderr?: string;
  workDir?: string;
  dependency?: string;
}

export type Phase = 'waiting' | 'running' | 'done' | 'failed';

const FINISHED_OK = new Set(['COMPLETED']);
const ACTIVE = new Set(['RUNNING', 'COMPLETING', 'CONFIGURING', 'STAGE_OUT', 'SIGNALING', 'RESIZING', 'SUSPENDED', 'STOPPED']);
const WAITING = new Set(['PENDING', 'REQUEUED', 'REQUEUE_HOLD', 'REQUEUE_FED', 'RESV_DEL_HOLD', 'SPECIAL_EXIT']);

/** Slurm sometimes appends words: "CANCELLED by 0". */
function stateWord(state: string): string {
  return state.split(/\s+/)[0]!.replace(/\+$/, '').toUpperCase();
}

export function phaseOf(info: JobInfo): Phase {
  const s = stateWord(info.state);
  if (FINISHED_OK.has(s)) return 'done';
  if (ACTIVE.has(s)) return 'running';
  if (WAITING.has(s)) return 'waiting';
  return 'failed';
}

/** True once the job can no longer change state. */
export function isFinished(info: JobInfo): boolean {
  const p = phaseOf(info);
  return p === 'done' || p === 'failed';
}

function exitParts(exitCode: string | undefined): { code: number; signal: number } {
  const m = /^(\d+):(\d+)$/.exec(exitCode ?? '');
  return m ? { code: Number(m[1]), signal: Number(m[2]) } : { code: 0, signal: 0 };
}

/** One line of plain words for a job's state. */
export function explainState(info: JobInfo): string {
  const s = stateWord(info.state);
  const { code, signal } = exitParts(info.exitCode);
  switch (s) {
    case 'COMPLETED':
      return 'completed (exit code 0)';
    case 'RUNNING':
    case 'COMPLETING':
      return `running${info.runTime ? ` for ${info.runTime}` : ''}`;
    case 'PENDING':
      return `waiting: ${info.reason && info.reason !== 'None' ? info.reason : 'queued'}${info.reason === 'DependencyNeverSatisfied' ? ' (an afterok job it depends on failed; this job will never start — cancel it)' : ''}`;
    case 'OUT_OF_MEMORY':
      return 'ran out of memory (raise --mem)';
    case 'TIMEOUT':
      return `hit its ${info.timeLimit ?? ''} time limit`.replace('its  time', 'its time') + ' (raise --time)';
    case 'CANCELLED':
      return info.state.includes(' by ') ? `cancelled (${info.state.slice(info.state.indexOf('by'))})` : 'cancelled';
    case 'FAILED':
      if (signal) return `killed by signal ${signal}`;
      return `exited with code ${code}`;
    case 'NODE_FAIL':
      return 'its node failed (not your script: resubmit)';
    case 'PREEMPTED':
      return 'preempted by a higher-priority job';
    case 'BOOT_FAIL':
      return 'its node failed to boot (resubmit)';
    case 'DEADLINE':
      return 'missed its deadline';
    default:
      return s.toLowerCase();
  }
}

/**
 * A summary of an array's tasks: "10 completed, 2 failed: tasks 3, 7".
 * Running and waiting counts come first when there are any.
 */
export function summariseArray(tasks: readonly JobInfo[]): string {
  const by: Record<Phase, JobInfo[]> = { running: [], waiting: [], done: [], failed: [] };
  for (const t of tasks) by[phaseOf(t)].push(t);
  const parts: string[] = [];
  if (by.running.length) parts.push(`${by.running.length} running`);
  if (by.waiting.length) parts.push(`${by.waiting.length} waiting`);
  if (by.done.length) parts.push(`${by.done.length} completed`);
  if (by.failed.length) {
    const ids = by.failed.map((t) => t.arrayTaskId ?? t.jobId).sort((a, b) => Number(a) - Number(b) || a.localeCompare(b));
    parts.push(`${by.failed.length} failed: task${ids.length > 1 ? 's' : ''} ${ids.join(', ')}`);
  }
  return parts.join(', ') || 'no tasks';
}
