/** `sifpack submit`: sbatch a job script, print the job id, record it in the run ledger. */
import type { Command } from 'commander';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { InputError, RuntimeFailure } from '../errors.js';
import { formatRef, parseOrasRef } from '../model/oras-ref.js';
import { patternDirectory, readScriptFacts } from '../model/sbatch-script.js';
import { imageLabels } from '../runtime/image-labels.js';
import { Ledger } from '../runtime/ledger.js';
import { type Submitted, checkDependency } from '../runtime/slurm.js';
import { displayPath } from '../util/display-path.js';
import { cachedSha256 } from '../util/hash-cache.js';
import { checkInputFile } from '../util/path-check.js';
import { type CliContext, Log, globalOptions } from './context.js';
import { pullJobImage } from './job-image.js';
import { addSettings, settingsFor } from './setting-options.js';
import { slurmFor } from './slurm-context.js';

/** The settings submit takes; their flags, help and types come from the settings table. */
const TAKES = ['sbatch-path', 'plain-http', 'cache-dir'] as const;

/** submit's own options, which are not settings. */
interface SubmitFlags {
  dependency?: string;
  json?: boolean;
}

export function register(program: Command, ctx: CliContext): void {
  const cmd = program
    .command('submit')
    .summary('submit a job script with sbatch and record it in .sifpack/runs.jsonl')
    .description(
      'Submit a job script with `sbatch --parsable`, print its job id, and append the\n' +
        'submission to the run ledger .sifpack/runs.jsonl: the script and its sha256,\n' +
        'the image it runs and its sha256, and the env hash from the image labels, so\n' +
        'a result can be traced to the exact image and environment later.',
    )
    .argument('<FILE>', 'the job script (from `sifpack sbatch`, or your own)');
  addSettings(cmd, TAKES);
  cmd
    .option('--dependency <DEP>', 'start only after other jobs, e.g. afterok:123 or afterok:123:124')
    .option('--json', 'print { "jobId": ..., "cluster": ... }')
    .addHelpText(
      'after',
      `
Examples:
  sifpack submit analysis.sbatch
  sifpack submit postprocess.sbatch --dependency afterok:4242
  JOB=$(sifpack submit train.sbatch) && sifpack status "$JOB"`,
    )
    .action(async (file: string, flags: SubmitFlags, cmd: Command) => run(file, flags, cmd, ctx));
}

export async function run(file: string, flags: SubmitFlags, cmd: Command, ctx: CliContext): Promise<void> {
  const log = new Log(ctx.stderr, globalOptions(cmd).quiet);
  const { settings } = await settingsFor(cmd, ctx, TAKES);
  const dependency = flags.dependency !== undefined ? checkDependency(flags.dependency) : undefined;
  const submitted = await submitJobScript(path.resolve(ctx.cwd, file), { ...(dependency ? { dependency } : {}), display: file }, settings, ctx, log);
  if (flags.json) ctx.stdout.write(`${JSON.stringify({ jobId: submitted.jobId, cluster: submitted.cluster ?? null })}\n`);
  else {
    ctx.stdout.write(`${submitted.jobId}\n`);
    log.info(`submitted ${path.basename(file)} as job ${submitted.jobId}${submitted.cluster ? ` on ${submitted.cluster}` : ''}${dependency ? ` (after ${dependency})` : ''}; \`sifpack status ${submitted.jobId}\` follows it`);
  }
}

/** sbatch a job script and record it in the run ledger (`submit` and `run` share this). */
export async function submitJobScript(
  script: string,
  opts: { dependency?: string; display: string },
  settings: { sbatchPath: string; plainHttp?: boolean; cacheDir?: string | undefined },
  ctx: CliContext,
  log: Log,
): Promise<Submitted> {
  const checked = await checkInputFile(script, 'FILE', { cwd: ctx.cwd, hint: 'write one with `sifpack sbatch SCRIPT.py --image IMAGE.sif --script-out job.sbatch`' });
  const text = await fs.readFile(checked, 'utf8');
  const facts = readScriptFacts(text);
  const workDir = facts.directives.chdir ? path.resolve(ctx.cwd, facts.directives.chdir) : ctx.cwd;
  const image = facts.image ? path.resolve(workDir, facts.image) : undefined;
  let imageThere = image ? await fs.stat(image).then((s) => s.isFile(), () => false) : false;
  const pulled = facts.pulled;
  if (pulled && image) {
    // A script written for a pulled image: the file must hold that digest. Gone
    // (image-dir cleaned, another login node): pull the pinned digest again,
    // here, before sbatch; the tasks never pull.
    if (!imageThere) {
      const pinned = parseOrasRef(pulled.reference, 'the script\'s sifpack-image line');
      const staged = await pullJobImage(pulled.reference, { dir: path.dirname(image), stateDir: ctx.cwd, settings: { plainHttp: !!settings.plainHttp, cacheDir: settings.cacheDir }, ctx, quiet: log.quiet });
      if (staged.file !== image || staged.pulled.digest !== pulled.digest) {
        await fs.rm(staged.file, { force: true });
        throw new RuntimeFailure(`${opts.display} runs ${image}, which is missing, and ${formatRef(pinned)} does not give that file back (got ${staged.pulled.digest})`, { hint: 'write the script again with `sifpack sbatch ... --image oras://...`' });
      }
      log.info(`${displayPath(image, ctx.cwd)} was missing; pulled ${pulled.reference} again`);
      imageThere = true;
    } else {
      const have = await cachedSha256(image, ctx.cwd);
      if (have !== pulled.digest) {
        throw new RuntimeFailure(`${opts.display} was written for ${pulled.reference} (${pulled.digest}), but ${image} now holds ${have}; nothing submitted`, { hint: `remove ${image} and submit again to pull it back, or write the script again with \`sifpack sbatch\`` });
      }
    }
  }
  if (image && !imageThere) log.warn(`the script runs ${image}, which does not exist (yet); the job will fail unless it appears before the job starts`);

  // Slurm opens the output and error files before the script runs and does
  // not create their directory: a job whose directory is missing fails with
  // no output at all (JobLaunchFailure, checked with Slurm 22.05).
  for (const key of ['output', 'error'] as const) {
    const pattern = facts.directives[key];
    const dir = pattern === undefined ? undefined : patternDirectory(pattern, workDir);
    if (dir && !(await fs.stat(dir).then(() => true, () => false))) {
      await fs.mkdir(dir, { recursive: true });
      log.info(`created ${displayPath(dir, ctx.cwd)}/ for the job's --${key} ${pattern} (Slurm does not create it)`);
    }
  }
  const submitted = await slurmFor(settings, ctx).submit(script, { ...(opts.dependency ? { dependency: opts.dependency } : {}), cwd: ctx.cwd });

  // After sbatch accepted the job: record it. Hashing the image can take a
  // while for a big image, but a ledger line without it would be worth less.
  // A stand-in or foreign file at the image path is not an error here: the
  // ledger just records no env hash for it.
  const labels = image && imageThere ? (await imageLabels(image, ctx.runner).catch(() => ({ labels: undefined }))).labels : undefined;
  await new Ledger(ctx.cwd).append({
    type: 'submit',
    jobId: submitted.jobId,
    cluster: submitted.cluster ?? null,
    sbatch: script,
    sbatchSha256: `sha256:${createHash('sha256').update(text).digest('hex')}`,
    image: image ?? null,
    imageSha256: image && imageThere ? await cachedSha256(image, ctx.cwd) : null,
    ...(pulled ? { imageRef: pulled.reference, imageSource: pulled.source } : {}),
    envHash: labels?.['sifpack.env-hash'] ?? null,
    output: facts.directives.output ?? null,
    workDir,
    submittedAt: new Date().toISOString(),
  });
  return submitted;
}
