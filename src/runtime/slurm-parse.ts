/**
 * Readers of Slurm's text output. Pure functions, so the shapes are tested
 * against output captured from a real slurmctld (test/fixtures/slurm/).
 */
import type { JobInfo } from '../model/job-state.js';

/**
 * `scontrol show job -o` prints one line per job (per array task) of
 * `Key=Value` pairs separated by spaces; values may themselves hold spaces
 * (Command=, WorkDir=, Comment=), so a pair ends only where the next
 * `Key=` begins.
 */
export function parseScontrolLine(line: string): Record<string, string> {
  const out: Record<string, string> = {};
  const re = /(?:^|\s)([A-Za-z][A-Za-z0-9_/:]*)=/g;
  const marks: { key: string; start: number; valueStart: number }[] = [];
  for (let m = re.exec(line); m; m = re.exec(line)) {
    marks.push({ key: m[1]!, start: m.index, valueStart: m.index + m[0].length });
  }
  marks.forEach((mk, i) => {
    const end = i + 1 < marks.length ? marks[i + 1]!.start : line.length;
    out[mk.key] = line.slice(mk.valueStart, end).trim();
  });
  return out;
}

const nullish = (v: string | undefined) => (v === undefined || v === '(null)' || v === 'N/A' || v === '' ? undefined : v);

/** JobInfo from one parsed scontrol record. */
export function jobFromScontrol(r: Record<string, string>): JobInfo {
  const info: JobInfo = { jobId: r.JobId ?? '', state: r.JobState ?? 'UNKNOWN' };
  const set = (k: keyof JobInfo, v: string | undefined) => {
    const x = nullish(v);
    if (x !== undefined) (info as unknown as Record<string, string>)[k] = x;
  };
  set('arrayJobId', r.ArrayJobId);
  set('arrayTaskId', r.ArrayTaskId);
  set('name', r.JobName);
  set('reason', r.Reason);
  set('exitCode', r.ExitCode);
  set('timeLimit', r.TimeLimit);
  set('runTime', r.RunTime);
  set('stdout', r.StdOut);
  set('stderr', r.StdErr);
  set('workDir', r.WorkDir);
  set('dependency', r.Dependency);
  return info;
}

/** All jobs in `scontrol show job -o` output (one per non-empty line). */
export function parseScontrolJobs(text: string): JobInfo[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.startsWith('JobId='))
    .map((l) => jobFromScontrol(parseScontrolLine(l)));
}

/** `sbatch --parsable` prints `jobid` or `jobid;cluster`. */
export function parseParsable(stdout: string): { jobId: string; cluster?: string } | undefined {
  const m = /^(\d+)(?:;(\S+))?\s*$/m.exec(stdout.trim());
  if (!m) return undefined;
  return m[2] ? { jobId: m[1]!, cluster: m[2] } : { jobId: m[1]! };
}

/**
 * `sacct -n -P -o JobID,JobName,State,ExitCode,Timelimit,Elapsed,Reason`
 * lines; job steps (`12.batch`, `12.0`) are left out: the allocation's line
 * carries the job's state.
 */
export const SACCT_FIELDS = ['JobID', 'JobName', 'State', 'ExitCode', 'Timelimit', 'Elapsed', 'Reason'] as const;

export function parseSacct(text: string): JobInfo[] {
  const out: JobInfo[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const [id, name, state, exit, limit, elapsed, reason] = line.split('|');
    if (!id || id.includes('.')) continue;
    const arr = /^(\d+)_(\d+)$/.exec(id);
    const info: JobInfo = { jobId: id, state: state ?? 'UNKNOWN' };
    if (arr) {
      info.arrayJobId = arr[1]!;
      info.arrayTaskId = arr[2]!;
    }
    if (nullish(name)) info.name = name!;
    if (nullish(exit)) info.exitCode = exit!;
    if (nullish(limit)) info.timeLimit = limit!;
    if (nullish(elapsed)) info.runTime = elapsed!;
    if (nullish(reason) && reason !== 'None') info.reason = reason!;
    out.push(info);
  }
  return out;
}
