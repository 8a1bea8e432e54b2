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
  /** From the `# sifpack-image:` line of a script whose image was pulled from a registry. */
  pulled?: PulledImage;
}

/** An image pulled for a job: the reference given, the pinned manifest reference and the file's sha256. */
export interface PulledImage {
  /** As given: oras://HOST/REPO:TAG. */
  source: string;
  /** oras://HOST/REPO@sha256:MANIFEST. */
  reference: string;
  /** sha256 of the SIF (the layer digest). */
  digest: string;
}

/**
 * Format: `# sifpack-image: SOURCE REFERENCE DIGEST`, one line, three words
 * (ORAS references hold no whitespace: parseOrasRef refuses it).
 */
export const PULLED_LINE = /^# sifpack-image: (oras:\/\/\S+) (oras:\/\/\S+@sha256:[0-9a-f]{64}) (sha256:[0-9a-f]{64})$/;

export function pulledImageLine(p: PulledImage): string {
  const line = `# sifpack-image: ${p.source} ${p.reference} ${p.digest}`;
  if (!PULLED_LINE.test(line)) throw new Error(`internal: not a valid image line: ${JSON.stringify(line)}`);
  return line;
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
  let pulled: PulledImage | undefined;
  for (const line of text.split('\n')) {
    const p = PULLED_LINE.exec(line);
    if (p && !pulled) pulled = { source: p[1]!, reference: p[2]!, digest: p[3]! };
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
  return { directives, ...(image ? { image } : {}), ...(pulled ? { pulled } : {}) };
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
