/**
 * Migration → the new job script, and a diff of old → new.
 *
 * Format (conda-activate-hook.slurm, --image torch.sif):
 *   #!/bin/bash
 *   # Migrated by sifpack 0.1.0 from conda-activate-hook.slurm.
 *   # Ran in: the conda environment named torch-2.3, activated on the host.
 *   # Now runs in: torch.sif, through `apptainer exec`.
 *   #SBATCH --job-name=train            (every #SBATCH line as it was)
 *   ...
 *   module purge                        (other modules and commands as they were)
 *   module load apptainer               (--module / the profile's modules, where conda was set up)
 *   export OMP_NUM_THREADS=$SLURM_CPUS_PER_TASK
 *   srun apptainer exec --nv torch.sif python train.py --config configs/base.yaml --epochs 20
 *
 * Only the edits the model planned change the text; the words inserted
 * (runtime, options, binds, image, the tool replacing "$prefix/bin/python")
 * go through shellQuote, everything else is the user's own text. The header
 * comment sits after the #! line and before the #SBATCH lines, where sbatch
 * still reads directives.
 */
import type { Edit, Migration } from '../model/job-migration.js';
import { describeEnv } from '../model/job-migration.js';
import type { Bind } from '../model/slurm-job.js';
import { bindWord } from './sbatch.js';
import { shellJoin, shellQuote } from './shell-quote.js';
import { type Rendered, renderTemplate } from './template.js';

export interface MigrateRenderOptions {
  /** The image as the job will see it (kept as given: relative to the job's directory). */
  image: string;
  runtime: 'apptainer' | 'singularity';
  gpuVendor: 'nvidia' | 'amd';
  binds: Bind[];
  /** Site modules the image needs on the nodes (module load apptainer), from --module or the profile. */
  modules?: string[];
  version: string;
  /** The original script's name, for the header. */
  source: string;
}

/** `apptainer exec [--nv|--rocm] [-B ...] IMAGE`, quoted. */
export function migratedExecWords(m: Migration, o: MigrateRenderOptions): string[] {
  const words: string[] = [o.runtime, 'exec'];
  if (m.gpus) words.push(o.gpuVendor === 'amd' ? '--rocm' : '--nv');
  for (const b of o.binds) words.push('-B', bindWord(b));
  words.push(o.image);
  return words;
}

/** Applies the planned edits to `text` (edits sorted by start, not overlapping); `insert` goes in at `insertAt`, before an edit starting there. */
export function applyEdits(text: string, edits: readonly Edit[], exec: string, insert = '', insertAt = 0): string {
  let out = '';
  let at = 0;
  let inserted = !insert;
  for (const e of edits) {
    if (!inserted && insertAt <= e.start) {
      out += text.slice(at, insertAt) + insert;
      at = insertAt;
      inserted = true;
    }
    out += text.slice(at, e.start);
    if (e.kind === 'noop') out += ':';
    else if (e.kind === 'splice') out += e.text;
    else if (e.kind === 'exec') out += e.tool === undefined ? `${exec} ` : `${exec} ${shellQuote(e.tool)}`;
    at = e.end;
  }
  if (!inserted) return out + text.slice(at, insertAt) + insert + text.slice(insertAt);
  return out + text.slice(at);
}

const oneLine = (s: string) => s.replace(/\s+/g, ' ');


/** The migrated job script. Warnings: what the new script cannot do as the old one did. */
export function renderMigrated(original: string, m: Migration, o: MigrateRenderOptions): Rendered {
  const exec = shellJoin(migratedExecWords(m, o));
  const modules = (o.modules ?? []).map((name) => `module load ${shellQuote(name)}\n`).join('');
  const edited = applyEdits(original, m.edits, exec, modules, m.setupAt);
  const nl = edited.indexOf('\n');
  const [shebang, rest] = m.shebang !== undefined ? [edited.slice(0, nl < 0 ? edited.length : nl), nl < 0 ? '' : edited.slice(nl + 1)] : ['#!/bin/bash', edited];
  const warnings = [...m.warnings];
  if (m.shebang === undefined) warnings.push('the script had no #! line (sbatch requires one): #!/bin/bash was added');
  // No --cleanenv: the script's own exports (OMP_NUM_THREADS=...) must still reach python.
  warnings.push(`the container sees the job's environment (no --cleanenv, so the script's exports reach python; so would a PYTHONPATH set on the host)`);
  const text = renderTemplate('migrated-job.mustache', {
    shebang,
    version: o.version,
    sourceShown: oneLine(o.source),
    envShown: oneLine(describeEnv(m.env)),
    imageShown: oneLine(o.image),
    runtime: o.runtime,
    body: rest.replace(/\n$/, ''),
  });
  return { text, warnings };
}

/**
 * A line diff of old → new: every line, prefixed "  " (kept), "- " (removed)
 * or "+ " (added), from a longest common subsequence (job scripts are short).
 */
export function lineDiff(before: string, after: string): string {
  const a = before.replace(/\n$/, '').split('\n');
  const b = after.replace(/\n$/, '').split('\n');
  const lcs: number[][] = Array.from({ length: a.length + 1 }, () => new Array<number>(b.length + 1).fill(0));
  for (let i = a.length - 1; i >= 0; i--) for (let j = b.length - 1; j >= 0; j--) lcs[i]![j] = a[i] === b[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
  const out: string[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (i < a.length && j < b.length && a[i] === b[j]) out.push(`  ${a[i++]}`), j++;
    else if (i < a.length && (j >= b.length || lcs[i + 1]![j]! >= lcs[i]![j + 1]!)) out.push(`- ${a[i++]}`);
    else out.push(`+ ${b[j++]}`);
  }
  return `${out.join('\n')}\n`;
}
