/**
 * `sifpack run`: export → def → build → sbatch → submit in one working
 * directory (`.sifpack/ENV_NAME/`), each step reused when what it would write
 * is already there: the export and the rendered texts are compared by
 * content, the image by the build hash in its labels. Where a step cannot run
 * here (no builder, no Slurm), every file that can be written is written and
 * the exact commands that finish the job elsewhere are printed.
 */
import type { Command } from 'commander';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Settings } from '../config/settings.js';
import { exportEnvironment } from '../env/export.js';
import { pipLockPath } from '../env/normalize.js';
import { InputError, ResultIsFailure, RuntimeFailure } from '../errors.js';
import { parseEnvironmentYaml } from '../model/environment.js';
import { parseOrasRef } from '../model/oras-ref.js';
import type { PulledImage } from '../model/sbatch-script.js';
import type { Recipe } from '../model/recipe.js';
import { buildJob } from '../model/slurm-job.js';
import { renderDef } from '../render/def.js';
import { renderSbatch } from '../render/sbatch.js';
import { shellJoin, shellQuote } from '../render/shell-quote.js';
import { Ledger, type LedgerRun } from '../runtime/ledger.js';
import { writeFilesAtomic } from '../util/atomic-write.js';
import { displayPath } from '../util/display-path.js';
import { VERSION } from '../util/package-root.js';
import { chooseBuilder, existingHash, labelOf } from '../workflows/build.js';
import { IMAGE_SETTINGS, buildForCli, engineFactory } from './build.js';
import { type CliContext, Log, globalOptions } from './context.js';
import { checkBaseImage, recipeFromInputs } from './def.js';
import { outputPath } from './logs.js';
import { CONTAINER, SLURM } from './sbatch.js';
import { addSettings, settingsFor } from './setting-options.js';
import { SLURM_QUERY_COMMANDS, slurmFor } from './slurm-context.js';
import { type JobStatus, jobStatuses } from './status.js';
import { JOB_IMAGE_SETTINGS, isRegistryImage, pullJobImage } from './job-image.js';
import { submitJobScript } from './submit.js';

/**
 * The settings run takes: build's, sbatch's (but `image`: run's --image is a
 * file it runs in instead of building, and sifpack.yml's image: must not
 * stop it from building), how to export, where the files go.
 */
// allow-local comes with IMAGE_SETTINGS (build takes it for --from-prefix too).
const EXPORT = ['via', 'from-history', 'no-builds'] as const;
const JOB = [...SLURM, ...CONTAINER.filter((k): k is Exclude<(typeof CONTAINER)[number], 'image'> => k !== 'image')] as const;
const TAKES = [...EXPORT, ...IMAGE_SETTINGS, ...JOB, 'workdir', 'sbatch-path', ...SLURM_QUERY_COMMANDS, ...JOB_IMAGE_SETTINGS] as const;

/** run's own options, which are not settings. */
interface RunFlags {
  name?: string;
  prefix?: string;
  file?: string;
  fromPrefix?: string;
  image?: string;
  array?: string;
  plan?: boolean;
  build?: boolean;
  submit?: boolean;
  watch?: boolean;
  interval?: string;
  tail?: string;
  json?: boolean;
}

export type StepName = 'export' | 'def' | 'build' | 'sbatch' | 'submit';
/** ran: did its work now; reused: its output was already up to date; skipped: a flag said so; blocked: cannot run here. */
export type Outcome = 'ran' | 'reused' | 'skipped' | 'blocked';

export interface StepReport {
  step: StepName;
  outcome: Outcome;
  detail: string;
  files: string[];
}

export function register(program: Command, ctx: CliContext): void {
  const cmd = program
    .command('run')
    .summary('export, def, build, sbatch, submit in one go (unchanged steps reused); --watch follows the job')
    .description(
      'Run SCRIPT on Slurm in an image of your environment, in one command: export\n' +
        'the env, render the definition file, build the image, write the job script\n' +
        'and submit it. Every file goes into one working directory (by default\n' +
        '.sifpack/ENV_NAME/), and a step whose output is already there and up to date\n' +
        'is reused, so an unchanged second run goes straight to submit.\n\n' +
        'Where a step cannot run here (no apptainer or Docker, no Slurm), run writes\n' +
        'every file it can, prints the commands that finish the job on a machine that\n' +
        'has what is missing, and exits 1. --plan writes the files and stops (exit 0).',
    )
    .argument('<SCRIPT>', 'the Python script to run (a path relative to here, as the job will see it)')
    .argument('[ARGS...]', 'arguments for the script (put them after -- if they start with -)')
    .option('-n, --name <NAME>', 'the conda environment, by name (as in `conda activate NAME`)')
    .option('-p, --prefix <PREFIX>', 'the conda environment, by path (as in `conda create -p`)')
    .option('-f, --file <ENV_FILE>', 'an environment.yml instead of an installed env (default: ./environment.yml when there is no -n/-p)')
    .option('--from-prefix <PREFIX>', 'copy this installed env into the image instead of solving it (no network)')
    .option('--image <IMAGE.sif>', 'run in this existing image, or one pulled once from oras://HOST/REPO:TAG into --image-dir: no export, def or build');
  cmd.optionsGroup('Export and build (as in export and build):');
  addSettings(cmd, [...EXPORT, ...IMAGE_SETTINGS, 'workdir', ...JOB_IMAGE_SETTINGS]);
  // -p and -n are conda's here (as in `conda run -p PREFIX`), so the partition and ntasks are long flags only.
  cmd.optionsGroup('Slurm options (as in sbatch):');
  addSettings(cmd, JOB, { withoutShort: ['partition', 'ntasks'] });
  cmd.option('-a, --array <SPEC>', 'job array: 0-99, 1,3,5, 0-99%10, 0-15:4');
  cmd.optionsGroup('This command:');
  cmd
    .option('--plan', 'write every file, then stop: no build, no submit')
    .option('--no-build', 'do not build; use the image already in the working directory')
    .option('--no-submit', 'stop after writing the job script')
    .option('--watch', "follow the job to its end; show its state and the end of its output (exit 0 only if it completed)")
    .option('--interval <SECONDS>', 'seconds between polls with --watch', '5')
    .option('--tail <LINES>', 'lines of the job output shown with --watch', '20')
    .option('--json', 'print one JSON object: each step, the files, the job id and state')
    .addHelpText(
      'after',
      `
Examples:
  sifpack run analyze.py data.csv -p ~/miniforge3/envs/analysis --time 30 --mem 4G --watch
  sifpack run analyze.py data.csv -n analysis --from-history --plan   # write everything, build and submit nothing
  sifpack run train.py -f environment.yml --base cuda --gpus 1 --partition gpu
  sifpack run sweep.py results --image sweep.sif --array 0-99%10

-p is conda's --prefix here (the partition is --partition), -n conda's --name.`,
    )
    .action(async (script: string, args: string[], flags: RunFlags, c: Command) => run(script, args, flags, c, ctx));
}

/** A directory-safe form of the env name. */
function safeName(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]/g, '-').replace(/^[.-]+/, '') || 'env';
}

/**
 * Writes the files whose content differs from what is on disk (all or none),
 * and says which changed. Equal content is left alone, mtime included.
 */
async function syncFiles(files: { path: string; data: string; mode?: number }[]): Promise<string[]> {
  const changed: typeof files = [];
  for (const f of files) {
    const have = await fs.readFile(f.path, 'utf8').catch(() => undefined);
    if (have !== f.data) changed.push(f);
  }
  if (changed.length) await writeFilesAtomic(changed, { force: true });
  return changed.map((f) => f.path);
}

const exists = (p: string) => fs.stat(p).then((s) => s.isFile(), () => false);

interface Exported {
  envName: string;
  files: { path: string; data: string }[];
  from: string;
  warnings: string[];
}

/** The environment as files for the working directory (not written yet: the name decides where). */
async function exportInputs(flags: RunFlags, settings: Readonly<Pick<Settings, 'via' | 'fromHistory' | 'noBuilds' | 'allowLocal'>>, ctx: CliContext): Promise<Exported> {
  const envFile = flags.file ?? (!flags.name && !flags.prefix && !flags.fromPrefix && (await exists(path.join(ctx.cwd, 'environment.yml'))) ? 'environment.yml' : undefined);
  if (envFile) {
    const abs = path.resolve(ctx.cwd, envFile);
    const text = await fs.readFile(abs, 'utf8').catch((err: NodeJS.ErrnoException) => {
      throw new InputError(`-f ${envFile}: ${err.code === 'ENOENT' ? 'no such file' : err.message}`, { hint: 'make one with `sifpack export -n NAME -o environment.yml`, or give -n NAME / -p PREFIX' });
    });
    const spec = parseEnvironmentYaml(text, displayPath(abs, ctx.cwd));
    return { envName: spec.name ?? 'env', files: [{ path: 'environment.yml', data: text }], from: displayPath(abs, ctx.cwd), warnings: [] };
  }
  const prefix = flags.prefix ?? flags.fromPrefix;
  const exportWith = (lock: boolean) =>
    exportEnvironment(
      {
        ...(prefix ? { prefix } : {}),
        ...(flags.name ? { name: flags.name } : {}),
        via: settings.via,
        options: { fromHistory: settings.fromHistory, noBuilds: settings.noBuilds, allowLocal: settings.allowLocal },
        lock,
        env: ctx.env,
        cwd: ctx.cwd,
      },
      ctx.runner,
    );
  // The lock is a record for exact rebuilds; the image is made from environment.yml
  // (or the prefix), so an env that cannot be locked still runs.
  let noLock: string | undefined;
  const res = await exportWith(true).catch(async (err: unknown) => {
    if (!(err instanceof InputError) || !err.message.startsWith('--lock')) throw err;
    noLock = `no environment.lock: ${err.message.replace(/^--lock: /, '').replace(/:$/, '')} (${err.details.join(', ')})`;
    return exportWith(false);
  });
  const files = [{ path: 'environment.yml', data: res.environmentYaml }];
  if (res.explicitLock) files.push({ path: 'environment.lock', data: res.explicitLock });
  if (res.pipLock) files.push({ path: pipLockPath('environment.lock'), data: res.pipLock });
  const from = res.prefix ? displayPath(res.prefix, ctx.cwd) : (flags.name ?? 'the active env');
  return { envName: res.outcome.spec.name ?? 'env', files, from: `${from}, via ${res.via}`, warnings: [...res.warnings, ...(noLock ? [noLock] : [])] };
}

/** The recipe with its %files sources absolute, for the build's own def under .sifpack/build. */
function withAbsoluteFiles(recipe: Recipe, dir: string): Recipe {
  return { ...recipe, files: recipe.files.map((f) => ({ ...f, source: path.resolve(dir, f.source) })) };
}

async function tailOf(file: string, lines: number): Promise<string[]> {
  const text = await fs.readFile(file, 'utf8').catch(() => undefined);
  if (text === undefined) return [];
  const all = text.replace(/\n$/, '').split('\n');
  return all.slice(-lines);
}

export async function run(script: string, args: string[], flags: RunFlags, cmd: Command, ctx: CliContext): Promise<void> {
  const started = Date.now();
  const quiet = globalOptions(cmd).quiet;
  const log = new Log(ctx.stderr, quiet);
  const given = (
    [
      [flags.name, '-n'],
      [flags.prefix, '-p'],
      [flags.file, '-f'],
      [flags.fromPrefix, '--from-prefix'],
      [flags.image, '--image'],
    ] as const
  ).filter(([v]) => v !== undefined);
  if (given.length > 1) throw new InputError(`${given.map(([, f]) => f).join(' and ')} exclude each other`, { hint: 'give one of -n NAME, -p PREFIX, -f ENV_FILE, --from-prefix PREFIX, --image IMAGE.sif' });
  if (flags.image && /^[a-z]+:\/\//i.test(flags.image) && !isRegistryImage(flags.image)) throw new InputError(`--image ${flags.image}: run takes a local .sif file or oras://HOST/REPO:TAG`, { hint: 'for a Docker image: `sifpack convert IMAGE -o IMAGE.sif`, then --image IMAGE.sif' });
  const registryImage = isRegistryImage(flags.image) ? parseOrasRef(flags.image, '--image') : undefined;
  const interval = Number(flags.interval ?? '5');
  if (!Number.isFinite(interval) || interval <= 0) throw new InputError(`--interval ${flags.interval}: expected a number of seconds > 0`);
  const tailLines = Number(flags.tail ?? '20');
  if (!Number.isInteger(tailLines) || tailLines < 0) throw new InputError(`--tail ${flags.tail}: expected a whole number of lines >= 0`);
  const { settings, sources } = await settingsFor(cmd, ctx, TAKES);
  checkBaseImage(settings);
  const scriptPath = path.resolve(ctx.cwd, settings.chdir ?? '.', script);
  if (!(await exists(scriptPath))) throw new InputError(`${script}: no such file${settings.chdir ? ` in ${settings.chdir}` : ''}`, { hint: 'give the path of the Python script relative to this directory (the job runs in it)' });

  const plan = !!flags.plan;
  const doBuild = !plan && flags.build !== false;
  const doSubmit = !plan && flags.submit !== false;
  const why = plan ? '--plan' : '';
  const steps: StepReport[] = [];
  const rel = (p: string) => displayPath(p, ctx.cwd);

  // export
  let envName: string;
  let image: string;
  let recipe: Recipe | undefined;
  let workdir: string;
  let pulledFrom: PulledImage | undefined;
  if (registryImage) {
    envName = safeName(registryImage.repository.split('/').at(-1)!);
    workdir = settings.workdir ?? path.join(ctx.cwd, '.sifpack', envName);
    await fs.mkdir(workdir, { recursive: true });
    for (const step of ['export', 'def'] as const) steps.push({ step, outcome: 'skipped', detail: `--image ${flags.image}`, files: [] });
    const dir = settings.imageDir ?? workdir;
    if (plan) {
      // Nothing is pulled for a plan; the file name depends on the digest, known only after asking the registry.
      image = path.join(dir, `${envName}.sif`);
      steps.push({ step: 'build', outcome: 'skipped', detail: `--plan: would pull ${flags.image} into ${rel(dir)}`, files: [] });
    } else {
      const img = await pullJobImage(flags.image!, { dir, stateDir: ctx.cwd, settings, ctx, quiet: !!quiet });
      image = img.file;
      pulledFrom = img.pulled;
      steps.push({ step: 'build', outcome: img.stage.reused ? 'reused' : 'ran', detail: `${img.stage.reused ? 'already pulled' : 'pulled'} ${img.pulled.reference}`, files: [image] });
    }
  } else if (flags.image) {
    image = path.resolve(ctx.cwd, flags.image);
    if (!(await exists(image))) throw new InputError(`--image ${flags.image}: no such file`, { hint: 'build one with `sifpack build`, or drop --image to let run build it' });
    envName = safeName(path.basename(image).replace(/\.sif$/, ''));
    workdir = settings.workdir ?? path.join(ctx.cwd, '.sifpack', envName);
    await fs.mkdir(workdir, { recursive: true });
    for (const step of ['export', 'def', 'build'] as const) steps.push({ step, outcome: 'skipped', detail: `--image ${rel(image)}`, files: [] });
  } else {
    const exported = await exportInputs(flags, settings, ctx);
    for (const w of exported.warnings) log.warn(w);
    envName = safeName(exported.envName);
    workdir = settings.workdir ?? path.join(ctx.cwd, '.sifpack', envName);
    await fs.mkdir(workdir, { recursive: true });
    const files = exported.files.map((f) => ({ path: path.join(workdir, f.path), data: f.data }));
    const changed = await syncFiles(files);
    steps.push({ step: 'export', outcome: changed.length ? 'ran' : 'reused', detail: `from ${exported.from}`, files: files.map((f) => f.path) });

    // def: the portable one, next to the env file it copies in
    const defPath = path.join(workdir, `${envName}.def`);
    ({ recipe } = await recipeFromInputs({ envFile: files[0]!.path, ...(flags.fromPrefix ? { fromPrefix: flags.fromPrefix } : {}), defDir: workdir, cwd: ctx.cwd }, settings));
    const def = renderDef(recipe, { version: VERSION, defName: path.basename(defPath) });
    for (const w of def.warnings) log.warn(w);
    const defChanged = await syncFiles([{ path: defPath, data: def.text }]);
    steps.push({ step: 'def', outcome: defChanged.length ? 'ran' : 'reused', detail: `preset ${recipe.preset.name}, base ${recipe.baseImage}`, files: [defPath] });

    // build
    image = path.join(workdir, `${envName}.sif`);
    const hash = labelOf(recipe, 'sifpack.build-hash');
    const have = await existingHash(image, ctx.runner);
    const short = hash.slice(7, 19);
    if (have === hash) steps.push({ step: 'build', outcome: 'reused', detail: `same build hash ${short}…`, files: [image] });
    else if (!doBuild) steps.push({ step: 'build', outcome: 'skipped', detail: why || '--no-build', files: [] });
    else {
      const engine = engineFactory();
      const blocked = await chooseBuilder(settings.builder, ctx.runner, engine, ctx.env).then(
        () => undefined,
        (err: unknown) => {
          if (err instanceof RuntimeFailure) return err.message;
          throw err;
        },
      );
      if (blocked) steps.push({ step: 'build', outcome: 'blocked', detail: blocked, files: [] });
      else {
        const res = await buildForCli(
          // Our own file: an image built from an older env is replaced.
          { recipe: withAbsoluteFiles(recipe, workdir), name: envName, output: image, force: have !== undefined || (await exists(image)) },
          settings,
          ctx,
          log,
          !!quiet,
          engine,
        );
        for (const w of res.warnings) log.warn(w);
        steps.push({ step: 'build', outcome: 'ran', detail: `with ${res.builder} in ${res.seconds.toFixed(1)}s, build hash ${short}…`, files: [image] });
      }
    }
  }

  // sbatch: the job runs the image in the working directory, whatever sifpack.yml's image: says
  const job = {
    ...buildJob({ settings: { ...settings, image }, sources, script, args, ...(flags.array !== undefined ? { array: flags.array } : {}), cwd: ctx.cwd }),
    ...(pulledFrom ? { pulledFrom } : {}),
  };
  const jobPath = path.join(workdir, `${safeName(path.basename(script).replace(/\.py$/, ''))}.sbatch`);
  const rendered = renderSbatch(job, { version: VERSION });
  for (const w of rendered.warnings) log.warn(w);
  const jobChanged = await syncFiles([{ path: jobPath, data: rendered.text, mode: 0o755 }]);
  steps.push({ step: 'sbatch', outcome: jobChanged.length ? 'ran' : 'reused', detail: `job ${job.jobName}${job.partition ? ` on ${job.partition}` : ''}`, files: [jobPath] });

  // submit
  const imageThere = await exists(image);
  let jobId: string | undefined;
  if (!doSubmit) steps.push({ step: 'submit', outcome: 'skipped', detail: why || '--no-submit', files: [] });
  else if (!imageThere) {
    const buildBlocked = steps.some((s) => s.step === 'build' && s.outcome === 'blocked');
    steps.push({ step: 'submit', outcome: buildBlocked ? 'blocked' : 'skipped', detail: `no image yet (${rel(image)})`, files: [] });
  } else if (!(await ctx.runner.which(settings.sbatchPath, ctx.env))) {
    steps.push({ step: 'submit', outcome: 'blocked', detail: `${settings.sbatchPath} not found: no Slurm here`, files: [] });
  } else {
    const submitted = await submitJobScript(jobPath, { display: rel(jobPath) }, settings, ctx, log);
    jobId = submitted.jobId;
    steps.push({ step: 'submit', outcome: 'ran', detail: `job ${jobId}${submitted.cluster ? ` on ${submitted.cluster}` : ''}`, files: [] });
  }

  // What finishes the job elsewhere: apptainer builds from the def in its directory (%files are relative to it).
  const next: string[] = [];
  const needBuild = !imageThere;
  const needSubmit = jobId === undefined && flags.submit !== false;
  if (needBuild && (doBuild || plan || flags.build === false) && recipe) {
    next.push(`(cd ${shellQuote(rel(workdir))} && ${shellJoin(['apptainer', 'build', path.basename(image), `${envName}.def`])})`);
  }
  if (needSubmit) next.push(shellJoin(['sbatch', rel(jobPath)]));
  const nextLine = next.join(' && ');

  const blocked = steps.filter((s) => s.outcome === 'blocked');
  const seconds = (Date.now() - started) / 1000;

  // --watch: follow the job to its end, then its state and the end of its output.
  let final: JobStatus | undefined;
  let tail: string[] = [];
  let outputFile: string | undefined;
  if (flags.watch && jobId) {
    const slurm = slurmFor(settings, ctx);
    const ledger = new Ledger(ctx.cwd);
    let last = '';
    for (;;) {
      const byId = new Map<string, LedgerRun>((await ledger.runs()).map((r) => [r.jobId, r]));
      [final] = await jobStatuses([jobId], slurm, ledger, byId);
      if (final!.explanation !== last) {
        log.info(`job ${jobId}: ${final!.explanation}`);
        last = final!.explanation;
      }
      if (final!.phase === 'done' || final!.phase === 'failed' || final!.phase === 'unknown') break;
      await new Promise((r) => setTimeout(r, interval * 1000));
    }
    outputFile = await outputPath(jobId, undefined, await slurm.jobs(jobId), ctx).catch(() => undefined);
    if (outputFile) tail = await tailOf(outputFile, tailLines);
  }

  if (flags.json) {
    ctx.stdout.write(
      `${JSON.stringify({
        workdir,
        envName,
        steps,
        image,
        jobScript: jobPath,
        jobId: jobId ?? null,
        ...(final ? { state: final.state, explanation: final.explanation, output: outputFile ?? null, outputTail: tail } : {}),
        next: nextLine || null,
        seconds,
      })}\n`,
    );
  } else {
    const out: string[] = [`sifpack run ${script}: files in ${rel(workdir)}/`];
    for (const s of steps) {
      const files = s.files.map((f) => path.basename(f)).join(', ');
      out.push(`  ${s.step.padEnd(7)} ${s.outcome.padEnd(8)} ${[files, s.detail].filter(Boolean).join(' — ')}`);
    }
    if (jobId && !flags.watch) out.push(`Job ${jobId} submitted. Follow it: sifpack status ${jobId} --watch; its output: sifpack logs ${jobId}`);
    if (nextLine) {
      const missing = blocked.length ? `${blocked.map((b) => b.step).join(' and ')} cannot run here` : plan ? 'planned only (--plan)' : 'stopped as asked';
      out.push(`Next (${missing}). ${plan ? 'Drop --plan to build and submit here, or run' : 'Run'} this where apptainer and Slurm are (a login node), from this directory:`);
      out.push(`  ${nextLine}`);
    }
    if (final) {
      out.push(`Job ${jobId} ${final.state}: ${final.explanation}`);
      if (outputFile) out.push(tail.length ? `Last ${tail.length} line(s) of ${rel(outputFile)}:` : `${rel(outputFile)} is empty or missing`);
      for (const l of tail) out.push(`  ${l}`);
    }
    ctx.stdout.write(`${out.join('\n')}\n`);
    log.info(`sifpack's own time: ${seconds.toFixed(2)}s`);
  }

  if (blocked.length) {
    throw new ResultIsFailure(`stopped: ${blocked.map((b) => `${b.step} (${b.detail})`).join('; ')}`, {
      hint: `every file is written; finish with: ${nextLine}`,
    });
  }
  if (final && final.state !== 'COMPLETED') throw new ResultIsFailure(`job ${jobId} ${final.state}: ${final.explanation}`, { hint: outputFile ? `its output: ${rel(outputFile)}` : `sifpack logs ${jobId}` });
}
