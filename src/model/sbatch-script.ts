/**
 * What submit and logs need to know from a job script, ours or hand-written:
 * its #SBATCH directives and the image its `apptainer|singularity exec` runs.
 */
import path from 'node:path';

export interface ScriptFacts {
  /** #SBATCH options by long name: { 'job-name': 'x', output: '%x_%j.out', ... }. */
  directives: Record<string, string>;
  /** The .sif image path the script runs, if one can be seen. */
  image?: string;
}

const SHORT: Record<string, string> = { J: 'job-name', o: 'output', e: 'error', D: 'chdir', a: 'array', t: 'time', p: 'partition', A: 'account', c: 'cpus-per-task', G: 'gpus', q: 'qos' };

/** Undoes the quoting sifpack's shellQuote (and most hand-written scripts) use. */
function unquote(word: string): string {
  if (word.startsWith("'") && word.endsWith("'")) return word.slice(1, -1).replace(/'\\''/g, "'");
  if (word.startsWith('"') && word.endsWith('"')) return word.slice(1, -1);
  return word;
}

export function readScriptFacts(text: string): ScriptFacts {
  const directives: Record<string, string> = {};
  let image: string | undefined;
  for (const line of text.split('\n')) {
    const d = /^#SBATCH\s+(?:--([a-z-]+)(?:[=\s]\s*(.*?))?|-([A-Za-z])\s*(.*?))\s*$/.exec(line);
    if (d) {
      const key = d[1] ?? SHORT[d[3]!] ?? d[3]!;
      // sbatch's parser takes a backslash as an escape, even inside quotes.
      directives[key] = unquote((d[2] ?? d[4] ?? '').trim()).replace(/\\(.)/g, '$1');
      continue;
    }
    if (!image && /\b(apptainer|singularity)\s+(exec|run)\b/.test(line)) {
      const m = /('(?:[^']|'\\'')*\.sif'|"[^"]*\.sif"|\S+\.sif)(?=\s|$)/.exec(line);
      if (m) image = unquote(m[1]!);
    }
  }
  return { directives, ...(image ? { image } : {}) };
}

/** Expands Slurm's filename pattern: %j %A %a %x %u %%, and %N-free cases; %4a style padding too. */
export function expandOutputPattern(pattern: string, v: { jobId: string; arrayJobId?: string; arrayTaskId?: string; jobName?: string; user?: string }): string {
  return pattern.replace(/%(\d*)([%jAaxus])/g, (whole, pad: string, c: string) => {
    const width = pad ? Number(pad) : 0;
    const p = (s: string | undefined) => (s === undefined ? whole : s.padStart(width, '0'));
    switch (c) {
      case '%':
        return '%';
      case 'j':
        return p(v.jobId);
      case 'A':
        return p(v.arrayJobId ?? v.jobId);
      case 'a':
        return p(v.arrayTaskId ?? '4294967294');
      case 'x':
        return v.jobName ?? whole;
      case 'u':
        return v.user ?? whole;
      default:
        return whole;
    }
  });
}

/**
 * The directory an --output/--error pattern writes into, absolute, when it
 * can be known before the job runs (no % in the directory part); undefined
 * for a file in the working directory itself. Slurm does not create it: a job
 * whose output directory is missing fails without writing anything.
 */
export function patternDirectory(pattern: string, workDir: string): string | undefined {
  const dir = path.dirname(pattern);
  if (dir === '.' || dir.includes('%')) return undefined;
  return path.resolve(workDir, dir);
}
