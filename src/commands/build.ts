/** `sifpack build`: build the image with apptainer, singularity or Docker; skip what is already built. */
import { type Command, Option } from 'commander';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import Docker from 'dockerode';
import { checkPinned } from '../config/presets.js';
import { InputError } from '../errors.js';
import { type DockerEngine, DockerodeEngine } from '../runtime/docker.js';
import { formatBytes } from '../runtime/scratch.js';
import { displayPath } from '../util/display-path.js';
import { VERSION } from '../util/package-root.js';
import { type BuilderChoice, buildImage } from '../workflows/build.js';
import { type CliContext, Log, collect, globalOptions, settingsFor } from './context.js';
import { recipeFromInputs } from './def.js';
import { abortOnSigint } from './interrupt.js';
import { Progress } from './progress.js';

interface BuildFlags {
  lock?: string;
  fromPrefix?: string;
  keepPrefixPath?: boolean;
  allowLocal?: boolean;
  base?: string;
  baseImage?: string;
  defs?: string[];
  builder?: BuilderChoice;
  output?: string;
  tag?: string;
  dockerArchive?: string;
  fakeroot?: boolean;
  tmpdir?: string;
  force?: boolean;
  json?: boolean;
}


export function register(program: Command, ctx: CliContext): void {
  program
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
    .option('--from-prefix <PREFIX>', 'copy this installed env into the image, relocated to /opt/env (no solve, no network)')
    .option('--keep-prefix-path', 'with --from-prefix: keep the env at its host path (refused under $HOME, /home, /tmp, /var/tmp or the current directory, which apptainer mounts over)')
    .option('--allow-local', 'with --from-prefix: leave out (and list) editable installs, .pth entries outside the prefix, dangling symlinks and files you do not own, instead of failing')
    .option('--base <PRESET>', 'base preset (micromamba, miniforge, cuda, or one from --defs)')
    .option('--base-image <IMAGE>', "use this pinned image instead of the preset's")
    .option('--defs <DIR>', 'extra directory of presets (repeatable)', collect)
    .addOption(new Option('--builder <WHICH>', 'what builds: auto tries apptainer, singularity, then Docker').choices(['auto', 'apptainer', 'singularity', 'docker']))
    .option('-o, --output <IMAGE.sif>', 'the image to write (default: ENV_NAME.sif)')
    .option('--tag <NAME:TAG>', 'Docker image tag (default: sifpack/ENV_NAME:HASH)')
    .option('--docker-archive <FILE>', 'also save the Docker image as a tarball, for `apptainer build x.sif docker-archive://FILE` on the cluster')
    .option('--fakeroot', 'build with --fakeroot')
    .option('--no-fakeroot', 'never pass --fakeroot')
    .option('--tmpdir <DIR>', 'scratch space for the build (sets APPTAINER_TMPDIR)')
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

/** A Docker engine if one answers a ping within a few seconds. */
function engineFactory(): () => Promise<DockerEngine | undefined> {
  return async () => {
    const docker = new Docker();
    try {
      await Promise.race([docker.ping(), new Promise((_, reject) => setTimeout(() => reject(new Error('timeout')), 5000))]);
      return new DockerodeEngine(docker);
    } catch {
      return undefined;
    }
  };
}

async function isDefFile(file: string): Promise<boolean> {
  if (file.endsWith('.def')) return true;
  const head = await fs.readFile(file, 'utf8').then((t) => t.slice(0, 4096), () => '');
  return /^\s*bootstrap\s*:/im.test(head.split('\n').filter((l) => !l.trim().startsWith('#')).join('\n'));
}

export async function run(input: string, flags: BuildFlags, cmd: Command, ctx: CliContext): Promise<void> {
  const quiet = globalOptions(cmd).quiet;
  const log = new Log(ctx.stderr, quiet);
  const { settings } = await settingsFor(cmd, ctx, {
    base: flags.base,
    baseImage: flags.baseImage,
    defs: flags.defs,
    builder: flags.builder,
    fakeroot: flags.fakeroot,
    tmpdir: flags.tmpdir,
    allowLocal: flags.allowLocal,
  });
  if (settings.baseImage) checkPinned(settings.baseImage, '--base-image');
  const inputPath = path.resolve(ctx.cwd, input);
  const defMode = !flags.fromPrefix && (await isDefFile(inputPath));
  if (!flags.fromPrefix && (flags.keepPrefixPath || flags.allowLocal)) throw new InputError('--keep-prefix-path and --allow-local go with --from-prefix', { hint: 'add --from-prefix PREFIX' });

  if (defMode && (flags.lock || flags.base || flags.baseImage)) throw new InputError(`${input} is a definition file: --lock, --base and --base-image do not apply`, { hint: 'edit the definition file, or build from environment.yml' });
  const { recipe } = defMode
    ? { recipe: undefined }
    : await recipeFromInputs(
        {
          envFile: input,
          ...(flags.lock ? { lock: flags.lock } : {}),
          ...(flags.fromPrefix ? { fromPrefix: flags.fromPrefix } : {}),
          ...(flags.keepPrefixPath ? { keepPrefixPath: true } : {}),
          ...(ctx.env.HOME ? { home: ctx.env.HOME } : {}),
          onWarn: (m) => log.warn(m),
          defDir: ctx.cwd,
          cwd: ctx.cwd,
        },
        settings,
      );
  const name = recipe?.envName ?? path.basename(input).replace(/\.def$/, '');
  const output = path.resolve(ctx.cwd, flags.output ?? `${name}.sif`);
  const progress = new Progress(ctx.stderr as never, !!quiet);
  const interrupt = abortOnSigint();
  try {
    const res = await buildImage(
      {
        ...(recipe ? { recipe } : {}),
        ...(defMode ? { defFile: inputPath } : {}),
        name,
        output,
        builder: settings.builder,
        ...(flags.tag ? { tag: flags.tag } : {}),
        ...(flags.dockerArchive ? { dockerArchive: flags.dockerArchive } : {}),
        ...(settings.fakeroot !== undefined ? { fakeroot: settings.fakeroot } : {}),
        ...(settings.tmpdir ? { tmpdir: settings.tmpdir } : {}),
        ...(settings.dockerNetwork ? { dockerNetwork: settings.dockerNetwork } : {}),
        force: !!flags.force,
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
      engineFactory(),
    );
    progress.done();
    for (const w of res.warnings) log.warn(w);
    const size = (await fs.stat(res.image)).size;
    if (flags.json) ctx.stdout.write(`${JSON.stringify({ image: res.image, sha256: res.sha256, hash: res.hash, builder: res.builder, cached: res.cached, seconds: res.seconds, ...(res.tag ? { tag: res.tag } : {}) })}\n`);
    else {
      ctx.stdout.write(`${res.image}\n`);
      log.info(res.cached ? `${displayPath(res.image, ctx.cwd)} is up to date (same build hash ${res.hash.slice(7, 19)}…): nothing to build; --force rebuilds` : `built ${displayPath(res.image, ctx.cwd)} (${formatBytes(size)}) with ${res.builder} in ${res.seconds.toFixed(1)}s`);
    }
  } finally {
    progress.done();
    interrupt.dispose();
  }
}
