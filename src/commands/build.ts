/** `sifpack build`: build the image with apptainer, singularity or Docker; skip what is already built. */
import { type Command, Option } from 'commander';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { checkPinned } from '../config/presets.js';
import { InputError } from '../errors.js';
import { type DockerEngine, DockerodeEngine, dockerClient, pingEngine } from '../runtime/docker.js';
import { formatBytes } from '../runtime/scratch.js';
import { displayPath } from '../util/display-path.js';
import { VERSION } from '../util/package-root.js';
import type { Settings } from '../config/settings.js';
import { type BuildRequest, type BuildResult, type BuilderChoice, buildImage } from '../workflows/build.js';
import { type CliContext, Log, collect, globalOptions, settingsFor } from './context.js';
import { recipeFromInputs } from './def.js';
import { abortOnSigint } from './interrupt.js';
import { Progress } from './progress.js';

/** What the image is made from and how it is built: shared by `build` and `run`. */
export interface ImageFlags {
  base?: string;
  baseImage?: string;
  defs?: string[];
  builder?: BuilderChoice;
  fakeroot?: boolean;
  tmpdir?: string;
}

interface BuildFlags extends ImageFlags {
  lock?: string;
  fromPrefix?: string;
  output?: string;
  tag?: string;
  dockerArchive?: string;
  force?: boolean;
  json?: boolean;
}

export function addImageOptions(cmd: Command): Command {
  return cmd
    .option('--base <PRESET>', 'base preset (micromamba, miniforge, cuda, or one from --defs)')
    .option('--base-image <IMAGE>', "use this pinned image instead of the preset's")
    .option('--defs <DIR>', 'extra directory of presets (repeatable)', collect)
    .addOption(new Option('--builder <WHICH>', 'what builds: auto tries apptainer, singularity, then Docker').choices(['auto', 'apptainer', 'singularity', 'docker']))
    .option('--fakeroot', 'build with --fakeroot')
    .option('--no-fakeroot', 'never pass --fakeroot')
    .option('--tmpdir <DIR>', 'scratch space for the build (sets APPTAINER_TMPDIR)');
}

/** The image flags as settings (undefined = not given). */
export function imageSettingFlags(flags: ImageFlags): Record<string, unknown> {
  return { base: flags.base, baseImage: flags.baseImage, defs: flags.defs, builder: flags.builder, fakeroot: flags.fakeroot, tmpdir: flags.tmpdir };
}


export function register(program: Command, ctx: CliContext): void {
  const cmd = program
    .command('build')
    .summary('build the image (apptainer, singularity or Docker); skips an identical one')
    .description(
      'Build the .sif for an environment with whatever is here: apptainer or singularity\n' +
        '(on a cluster), else a Docker engine (a workstation; DOCKER_HOST honoured, so\n' +
        "Podman's socket works too), which sifpack then converts to a SIF. An image that\n" +
        'already carries this build\'s content hash (env or lock, preset, base image,\n' +
        'sifpack version) is not rebuilt: an unchanged rebuild takes about a second.',
    )
    .argument('[ENV_FILE | DEF_FILE]', 'environment.yml (default), or a definition file you edited', 'environment.yml')
    .option('--lock <FILE>', 'install this @EXPLICIT lock exactly, no solver')
    .option('--from-prefix <PREFIX>', 'copy this installed env into the image at the same path (no solve, no network)');
  addImageOptions(cmd)
    .option('-o, --output <IMAGE.sif>', 'the image to write (default: ENV_NAME.sif)')
    .option('--tag <NAME:TAG>', 'Docker image tag (default: sifpack/ENV_NAME:HASH)')
    .option('--docker-archive <FILE>', 'also save the Docker image as a tarball, for `apptainer build x.sif docker-archive://FILE` on the cluster')
    .option('-f, --force', 'rebuild even if an identical image exists, and overwrite')
    .option('--json', 'print { image, sha256, hash, builder, cached, seconds }')
    .addHelpText(
      'after',
      `
Examples:
  sifpack build                                        # environment.yml -> analysis.sif
  sifpack build environment.yml --lock environment.lock -o analysis.sif
  sifpack build --from-prefix ~/miniforge3/envs/analysis --builder docker
  sifpack build train.yml --base cuda --tmpdir /scratch/$USER/tmp
  sifpack build my-edited.def -o custom.sif             # your own definition file, apptainer only

Ctrl-C stops the builder, removes temporary files and partial images, exit 130.`,
    )
    .action(async (input: string, flags: BuildFlags, cmd: Command) => run(input, flags, cmd, ctx));
}

/** A Docker engine if one answers a ping within a few seconds; asked once, then remembered. */
export function engineFactory(): () => Promise<DockerEngine | undefined> {
  let answer: Promise<DockerEngine | undefined> | undefined;
  return () =>
    (answer ??= (async () => {
      const docker = dockerClient();
      return pingEngine(docker, 5000).then(
        () => new DockerodeEngine(docker),
        () => undefined,
      );
    })());
}

async function isDefFile(file: string): Promise<boolean> {
  if (file.endsWith('.def')) return true;
  const head = await fs.readFile(file, 'utf8').then((t) => t.slice(0, 4096), () => '');
  return /^\s*bootstrap\s*:/im.test(head.split('\n').filter((l) => !l.trim().startsWith('#')).join('\n'));
}

export async function run(input: string, flags: BuildFlags, cmd: Command, ctx: CliContext): Promise<void> {
  const quiet = globalOptions(cmd).quiet;
  const log = new Log(ctx.stderr, quiet);
  const { settings } = await settingsFor(cmd, ctx, imageSettingFlags(flags));
  if (settings.baseImage) checkPinned(settings.baseImage, '--base-image');
  const inputPath = path.resolve(ctx.cwd, input);
  const defMode = !flags.fromPrefix && (await isDefFile(inputPath));
  if (defMode && (flags.lock || flags.base || flags.baseImage)) throw new InputError(`${input} is a definition file: --lock, --base and --base-image do not apply`, { hint: 'edit the definition file, or build from environment.yml' });
  const { recipe } = defMode
    ? { recipe: undefined }
    : await recipeFromInputs({ envFile: input, ...(flags.lock ? { lock: flags.lock } : {}), ...(flags.fromPrefix ? { fromPrefix: flags.fromPrefix } : {}), defDir: ctx.cwd, cwd: ctx.cwd }, settings);
  const name = recipe?.envName ?? path.basename(input).replace(/\.def$/, '');
  const output = path.resolve(ctx.cwd, flags.output ?? `${name}.sif`);
  const res = await buildForCli(
    {
      ...(recipe ? { recipe } : {}),
      ...(defMode ? { defFile: inputPath } : {}),
      name,
      output,
      ...(flags.tag ? { tag: flags.tag } : {}),
      ...(flags.dockerArchive ? { dockerArchive: flags.dockerArchive } : {}),
      force: !!flags.force,
    },
    settings,
    ctx,
    log,
    !!quiet,
  );
  for (const w of res.warnings) log.warn(w);
  const size = (await fs.stat(res.image)).size;
  if (flags.json) ctx.stdout.write(`${JSON.stringify({ image: res.image, sha256: res.sha256, hash: res.hash, builder: res.builder, cached: res.cached, seconds: res.seconds, ...(res.tag ? { tag: res.tag } : {}) })}\n`);
  else {
    ctx.stdout.write(`${res.image}\n`);
    log.info(res.cached ? `${displayPath(res.image, ctx.cwd)} is up to date (same build hash ${res.hash.slice(7, 19)}…): nothing to build; --force rebuilds` : `built ${displayPath(res.image, ctx.cwd)} (${formatBytes(size)}) with ${res.builder} in ${res.seconds.toFixed(1)}s`);
  }
}

/** What a build needs besides the settings: its input, its output, whether to replace. */
export type BuildTarget = Pick<BuildRequest, 'recipe' | 'defFile' | 'name' | 'output' | 'tag' | 'dockerArchive' | 'force'>;

/**
 * The build workflow as commands run it (`build` and `run`): the settings'
 * build options, progress on stderr, Ctrl-C stopping the builder.
 */
export async function buildForCli(target: BuildTarget, settings: Settings, ctx: CliContext, log: Log, quiet: boolean, engine = engineFactory()): Promise<BuildResult> {
  const progress = new Progress(ctx.stderr as never, quiet);
  const interrupt = abortOnSigint();
  try {
    return await buildImage(
      {
        ...target,
        builder: settings.builder,
        ...(settings.fakeroot !== undefined ? { fakeroot: settings.fakeroot } : {}),
        ...(settings.tmpdir ? { tmpdir: settings.tmpdir } : {}),
        ...(settings.dockerNetwork ? { dockerNetwork: settings.dockerNetwork } : {}),
        cwd: ctx.cwd,
        env: ctx.env,
        sifpackVersion: VERSION,
        signal: interrupt.signal,
        onLine: (l) => progress.update(l),
        onInfo: (m) => {
          progress.done();
          log.info(m);
        },
      },
      ctx.runner,
      engine,
    );
  } finally {
    progress.done();
    interrupt.dispose();
  }
}
