/** `sifpack def`: render the Apptainer definition file (or Dockerfile) for an environment. */
import type { Command } from 'commander';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { builtinPresetSummaries, loadPreset } from '../config/presets.js';
import { pipLockPath, specFromPrefix } from '../env/normalize.js';
import { readPrefix } from '../env/prefix.js';
import { checkKeepPrefixPath, checkPrefix, resolveProblems } from '../env/prefix-check.js';
import { InputError } from '../errors.js';
import { type EnvironmentSpec, environmentWarnings, parseEnvironmentYaml } from '../model/environment.js';
import { type Bootstrap, type InputFile, type Recipe, type RecipeSource, buildRecipe, checkBaseImage } from '../model/recipe.js';
import { renderDef } from '../render/def.js';
import { renderDockerfile } from '../render/dockerfile.js';
import type { Rendered } from '../render/template.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import { checkInputDir, checkInputFile, checkOutputFile } from '../util/path-check.js';
import { describeRelocation, writePrefixArchive } from '../workflows/build.js';
import { displayPath } from '../util/display-path.js';
import { VERSION } from '../util/package-root.js';
import { type CliContext, Log, globalOptions } from './context.js';
import { addSettings, settingsFor } from './setting-options.js';

/** The settings def takes; their flags, help and types come from the settings table. */
const TAKES = ['base', 'base-image', 'bootstrap', 'format', 'defs', 'allow-local'] as const;

/** def's own options, which are not settings. */
interface DefFlags {
  lock?: string;
  fromPrefix?: string;
  keepPrefixPath?: boolean;
  output?: string;
  force?: boolean;
  json?: boolean;
}

export function register(program: Command, ctx: CliContext): void {
  const cmd = program
    .command('def')
    .summary('render the Apptainer definition file (or Dockerfile) for an environment')
    .description(
      'Render the definition file that builds an image of a conda environment.\n\n' +
        'The image solves ENV_FILE (or installs the exact --lock, no solver) with the\n' +
        "base preset's installer, or --from-prefix copies an installed env in, relocated\n" +
        'to /opt/env like conda-pack does (no solve, no network). The env is on PATH for exec,\n' +
        'run and shell alike; PYTHONNOUSERSITE=1 keeps ~/.local out; %test imports the\n' +
        "env's packages; %labels carry the env and lock hashes.",
    )
    .argument('[ENV_FILE]', 'environment.yml to build from', 'environment.yml');
  addSettings(cmd, TAKES);
  cmd
    .option('--lock <FILE>', 'install this @EXPLICIT lock instead of solving (FILE.pip.txt beside it is used too)')
    .option('--from-prefix <PREFIX>', 'copy this installed env into the image, relocated to /opt/env, instead of solving (writes ENV-env.tar beside the def)')
    .option('--keep-prefix-path', 'with --from-prefix: keep the env at its host path (refused under $HOME, /home, /tmp, /var/tmp or the current directory, which apptainer mounts over)')
    .option('-o, --output <FILE>', 'write here instead of stdout')
    .option('-f, --force', 'overwrite an existing output file')
    .option('--json', 'print one JSON result on stdout')
    .addHelpText(
      'after',
      () => `
Examples:
  sifpack def environment.yml -o analysis.def
  sifpack def environment.yml --lock environment.lock -o analysis.def     # exact, no solver
  sifpack def environment.yml --base cuda -o train.def                    # GPU builds of pytorch/jax
  sifpack def --from-prefix ~/miniforge3/envs/analysis -o analysis.def    # no solve, no network
  sifpack def environment.yml --format docker -o Dockerfile

Presets (--base NAME; add your own with --defs DIR, one YAML file per preset,
shaped like the built-in ones; the chosen preset's notes are shown on writing):
${presetLines()}`,
    )
    .action(async (envFile: string, flags: DefFlags, cmd: Command) => run(envFile, flags, cmd, ctx));
}

function presetLines(): string {
  const all = builtinPresetSummaries();
  const width = Math.max(...all.map((p) => p.name.length)) + 2;
  return all.map((p) => `  ${p.name.padEnd(width)}${p.description}`).join('\n');
}

async function readInput(file: string, what: string): Promise<string> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new InputError(`${what} ${file}: ${code === 'ENOENT' ? 'no such file' : (err as Error).message}`, {
      hint: what === 'ENV_FILE' ? 'make one with `sifpack export -n NAME -o environment.yml`' : undefined,
    });
  }
}

/**
 * --base-image against --bootstrap: an image name must be pinned (docker,
 * docker-daemon); a file (docker-archive, localimage) must be given, and be
 * one a def header line can hold.
 */
export { checkBaseImage } from '../model/recipe.js';

/** A path as the def file refers to it: relative to the def's directory; %files cannot take whitespace. */
function defRelative(file: string, defDir: string): string {
  const rel = path.relative(defDir, file) || path.basename(file);
  if (/\s/.test(rel)) throw new InputError(`${file}: the path holds whitespace, which a %files line cannot express`, { hint: 'rename the file or its directory' });
  return rel;
}

/** The input paths of `def` and `build`, checked before any work. */
export async function checkRecipeInputs(i: { envFile?: string; envArg?: string; lock?: string | undefined; fromPrefix?: string | undefined; defs?: string[] | undefined; cwd: string }): Promise<void> {
  if (i.fromPrefix) await checkInputDir(i.fromPrefix, '--from-prefix', { cwd: i.cwd, hint: 'give the environment directory, the one holding conda-meta/' });
  else await checkInputFile(i.envFile ?? 'environment.yml', i.envArg ?? 'ENV_FILE', { cwd: i.cwd, hint: 'make one with `sifpack export -n NAME -o environment.yml`' });
  if (i.lock) await checkInputFile(i.lock, '--lock', { cwd: i.cwd, hint: 'write one with `sifpack export ... --lock FILE`' });
  for (const d of i.defs ?? []) await checkInputDir(d, '--defs', { cwd: i.cwd, hint: 'a directory of preset YAML files' });
}

/** Everything `def` and `build` need: the recipe and the environment it came from. */
export async function recipeFromInputs(
  input: {
    envFile?: string;
    lock?: string;
    fromPrefix?: string;
    /** --keep-prefix-path: the env stays at its host path (refused under apptainer's default mounts). */
    keepPrefixPath?: boolean;
    defDir: string;
    cwd: string;
    /** $HOME, for the --keep-prefix-path check. */
    home?: string;
    /** Whose files the prefix should hold (default: this process's user). */
    uid?: number;
    /** Told what --allow-local leaves out. */
    onWarn?: (message: string) => void;
  },
  settings: { base: string; baseImage?: string; defs: string[]; bootstrap?: Bootstrap; allowLocal?: boolean },
): Promise<{ recipe: Recipe; spec: EnvironmentSpec }> {
  const preset = await loadPreset(settings.base, settings.defs);
  let spec: EnvironmentSpec;
  let source: RecipeSource;
  if (input.fromPrefix) {
    if (input.lock) throw new InputError('--lock and --from-prefix exclude each other', { hint: '--from-prefix copies the installed env; a lock is for solving-free installs from channels' });
    const data = await readPrefix(path.resolve(input.cwd, input.fromPrefix));
    spec = specFromPrefix(data, { fromHistory: false, noBuilds: false, allowLocal: true }, path.basename(data.prefix)).spec;
    const digest = createHash('sha256')
      .update(data.records.map((r) => `${r.name}-${r.version}-${r.build}#${r.md5 ?? r.sha256 ?? ''}`).sort().join('\n'))
      .digest('hex');
    if (input.keepPrefixPath) checkKeepPrefixPath(data.prefix, { ...(input.home ? { home: input.home } : {}), cwd: input.cwd });
    // Everything that would fail in the image, found before a byte is copied.
    const check = await checkPrefix(data, { uid: input.uid ?? process.getuid?.() ?? 0 });
    const { skip, skipped } = resolveProblems(check, input.fromPrefix, !!settings.allowLocal);
    for (const p of skipped) input.onWarn?.(`left out of the image (--allow-local): ${p.path}: ${p.what}`);
    source = {
      kind: 'prefix',
      hostPath: data.prefix,
      recordsDigest: `sha256:${digest}`,
      ...(input.keepPrefixPath ? { keepPath: true } : {}),
      archive: defRelative(path.join(input.defDir, `${spec.name ?? 'env'}-env.tar`), input.defDir),
      fileModes: [...check.fileModes].sort(([a], [b]) => (a < b ? -1 : 1)),
      skip: [...skip].sort(),
      activationHooks: (await fs.readdir(path.join(data.prefix, 'etc', 'conda', 'activate.d')).catch(() => [])).some((f) => f.endsWith('.sh')),
    };
  } else {
    const envPath = path.resolve(input.cwd, input.envFile ?? 'environment.yml');
    const envText = await readInput(envPath, 'ENV_FILE');
    spec = parseEnvironmentYaml(envText, displayPath(envPath, input.cwd));
    const envFile: InputFile = { source: defRelative(envPath, input.defDir), name: 'environment.yml', text: envText };
    let lock: InputFile | undefined;
    let pipLock: InputFile | undefined;
    if (input.lock) {
      const lockPath = path.resolve(input.cwd, input.lock);
      const text = await readInput(lockPath, '--lock');
      if (!/^\s*@EXPLICIT\s*$/m.test(text)) throw new InputError(`--lock ${input.lock}: not an @EXPLICIT lock`, { hint: 'write one with `sifpack export ... --lock FILE` or `conda list --explicit --md5`' });
      lock = { source: defRelative(lockPath, input.defDir), name: 'environment.lock', text };
      const pipPath = pipLockPath(lockPath);
      const pipText = await fs.readFile(pipPath, 'utf8').catch(() => undefined);
      if (pipText !== undefined) pipLock = { source: defRelative(pipPath, input.defDir), name: 'environment.lock.pip.txt', text: pipText };
      else if (spec.pip.length > 0) throw new InputError(`--lock ${input.lock}: the environment has pip packages but ${displayPath(pipPath, input.cwd)} is missing`, { hint: 'export the lock again with `sifpack export --lock`, which writes both' });
    }
    source = { kind: 'env-file', envFile, ...(lock ? { lock } : {}), ...(pipLock ? { pipLock } : {}) };
  }
  const recipe = buildRecipe({ preset, spec, source, sifpackVersion: VERSION, ...(settings.baseImage ? { baseImage: settings.baseImage } : {}), ...(settings.bootstrap ? { bootstrap: settings.bootstrap } : {}) });
  return { recipe, spec };
}

export async function run(envFile: string, flags: DefFlags, cmd: Command, ctx: CliContext): Promise<void> {
  const log = new Log(ctx.stderr, globalOptions(cmd).quiet);
  const { settings } = await settingsFor(cmd, ctx, TAKES);
  checkBaseImage(settings);
  const output = flags.output ? await checkOutputFile(flags.output, '-o/--output', { cwd: ctx.cwd, force: !!flags.force }) : undefined;
  const defDir = output ? path.dirname(output) : ctx.cwd;
  await checkRecipeInputs({ envFile, lock: flags.lock, fromPrefix: flags.fromPrefix, defs: settings.defs, cwd: ctx.cwd });
  const { recipe, spec } = await recipeFromInputs(
    {
      envFile,
      ...(flags.lock ? { lock: flags.lock } : {}),
      ...(flags.fromPrefix ? { fromPrefix: flags.fromPrefix } : {}),
      ...(flags.keepPrefixPath ? { keepPrefixPath: true } : {}),
      ...(ctx.env.HOME ? { home: ctx.env.HOME } : {}),
      onWarn: (m) => log.warn(m),
      defDir,
      cwd: ctx.cwd,
    },
    settings,
  );
  const rendered: Rendered =
    settings.format === 'docker'
      ? renderDockerfile(recipe, { version: VERSION })
      : renderDef(recipe, { version: VERSION, defName: output ? path.basename(output) : `${recipe.envName}.def` });
  for (const w of [...environmentWarnings(spec, flags.fromPrefix ?? envFile), ...rendered.warnings]) log.warn(w);
  if (recipe.source.kind === 'prefix' && settings.format === 'apptainer') {
    // The def's %files names the prefix tarball: write it beside the def, relocated.
    const archive = path.resolve(defDir, recipe.source.archive);
    const t = await writePrefixArchive(recipe, archive, !!flags.force);
    const d = describeRelocation(t);
    log.info(`wrote ${displayPath(archive, ctx.cwd)}: ${d.info}`);
    for (const w of d.warnings) log.warn(w);
  }
  if (output) {
    await writeFileAtomic(output, rendered.text, { force: !!flags.force });
    log.info(`wrote ${displayPath(output, ctx.cwd)} (${settings.format}, preset ${recipe.preset.name}, base ${recipe.baseImage})`);
    // The preset's caveats (a GPU driver floor, how to run it) belong where the user chose it.
    for (const n of recipe.notes) log.info(`note (preset ${recipe.preset.name}): ${n}`);
  }
  if (flags.json) {
    ctx.stdout.write(`${JSON.stringify({ output: output ?? null, format: settings.format, preset: recipe.preset.name, baseImage: recipe.baseImage, notes: recipe.notes, labels: Object.fromEntries(recipe.labels), warnings: rendered.warnings, ...(output ? {} : { text: rendered.text }) })}\n`);
  } else if (!output) {
    ctx.stdout.write(rendered.text);
  }
}
