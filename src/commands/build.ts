/** `sifpack build`: build the image with apptainer, singularity or Docker; skip what is already built. */
import type { Command } from 'commander';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { environmentWarnings } from '../model/environment.js';
import { InputError } from '../errors.js';
import { type DockerEngine, DockerodeEngine, dockerClient, pingEngine } from '../runtime/docker.js';
import { formatBytes } from '../runtime/scratch.js';
import { displayPath } from '../util/display-path.js';
import { checkInputDir, checkOutputFile } from '../util/path-check.js';
import { VERSION } from '../util/package-root.js';
import type { Settings } from '../config/settings.js';
import { type BuildRequest, type BuildResult, type BuilderChoice, buildImage } from '../workflows/build.js';
import { cachedSha256 } from '../util/hash-cache.js';
import { type CliContext, Log, globalOptions } from './context.js';
import { addSettings, settingsFor } from './setting-options.js';
import { signBuiltImage, signingKeyForFlags } from './signing-keys.js';
import { checkBaseImage, checkRecipeInputs, recipeFromInputs } from './def.js';
import { abortOnSigint } from './interrupt.js';
import { Progress } from './progress.js';

/** The settings build takes (run takes them too); their flags, help and types come from the settings table. */
export const IMAGE_SETTINGS = ['base', 'base-image', 'bootstrap', 'defs', 'builder', 'fakeroot', 'tmpdir', 'docker-network', 'allow-local'] as const;

/** build's own options, which are not settings. */
interface BuildFlags {
  lock?: string;
  fromPrefix?: string;
  keepPrefixPath?: boolean;
  output?: string;
  tag?: string;
  dockerArchive?: string;
  force?: boolean;
  json?: boolean;
  sign?: boolean;
  key?: string;
  passphraseStdin?: boolean;
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
        'sifpack version) is not rebuilt: only its labels are read.',
    )
    .argument('[ENV_FILE | DEF_FILE]', 'environment.yml (default), or a definition file you edited', 'environment.yml');
  addSettings(cmd, IMAGE_SETTINGS);
  cmd
    .option('--lock <FILE>', 'install this @EXPLICIT lock exactly, no solver')
    .option('--from-prefix <PREFIX>', 'copy this installed env into the image, relocated to /opt/env (no solve, no network)')
    .option('--keep-prefix-path', 'with --from-prefix: keep the env at its host path (refused under $HOME, /home, /tmp, /var/tmp or the current directory, which apptainer mounts over)')
    .option('-o, --output <IMAGE.sif>', 'the image to write (default: ENV_NAME.sif)')
    .option('--tag <NAME:TAG>', 'Docker image tag (default: sifpack/ENV_NAME:HASH)')
    .option('--docker-archive <FILE>', 'also save the Docker image as a tarball, for `apptainer build x.sif docker-archive://FILE` on the cluster')
    .option('-f, --force', 'rebuild even if an identical image exists, and overwrite')
    .option('--sign', 'sign the image when it is written (as `sifpack sign`; needs --key)')
    .option('--key <FILE>', 'with --sign: PEM private key or armored OpenPGP secret key')
    .option('--passphrase-stdin', 'with --sign: read the key passphrase from stdin')
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
  sifpack build analysis.sif environment.yml            # apptainer's order works too

Ctrl-C stops the builder, removes temporary files and partial images, exit 130.`,
    )
    // apptainer's order (`build OUT.sif SOURCE`) arrives as two arguments: see buildArguments.
    .allowExcessArguments(true)
    .action(async (_input: string, flags: BuildFlags, cmd: Command) => {
      const { input, output } = buildArguments(cmd.args, flags.output);
      return run(input, { ...flags, ...(output !== undefined ? { output } : {}) }, cmd, ctx);
    });
}

/**
 * `build [ENV_FILE|DEF_FILE]`, and apptainer's `build IMAGE.sif SOURCE` too:
 * people who know apptainer type the image first.
 */
export function buildArguments(args: readonly string[], output: string | undefined): { input: string; output?: string } {
  const [first = 'environment.yml', second, ...more] = args;
  if (second === undefined) {
    if (first.endsWith('.sif')) {
      throw new InputError(`${first} is an image: build reads an environment.yml or a definition file and writes the image`, { hint: `sifpack build environment.yml -o ${first}` });
    }
    return { input: first, ...(output !== undefined ? { output } : {}) };
  }
  if (more.length === 0 && first.endsWith('.sif')) {
    if (output !== undefined && path.resolve(output) !== path.resolve(first)) {
      throw new InputError(`two images to write: ${first} (apptainer's order) and -o ${output}`, { hint: `give one: sifpack build ${second} -o ${first}` });
    }
    return { input: second, output: first };
  }
  throw new InputError(`too many arguments: ${args.join(' ')}; build takes one ENV_FILE or DEF_FILE`, {
    hint: first.endsWith('.sif') ? `sifpack build ${second} -o ${first}` : `sifpack build ${first}${second.endsWith('.sif') ? ` -o ${second}` : ''}`,
  });
}

/** A Dockerfile (what `def --format docker` writes), by name or by its first instruction. */
async function isDockerfile(file: string): Promise<boolean> {
  if (/^(Dockerfile|Containerfile)(\..*)?$|\.(Dockerfile|Containerfile)$/i.test(path.basename(file))) return true;
  const head = await fs.readFile(file, 'utf8').then((t) => t.slice(0, 4096), () => '');
  const first = head.split('\n').map((l) => l.trim()).find((l) => l && !l.startsWith('#'));
  return !!first && /^(FROM|ARG)\s/i.test(first);
}

/** A Docker engine if one answers a ping within a few seconds; asked once, then remembered. */
export function engineFactory(): () => Promise<DockerEngine | undefined> {
  let answer: Promise<DockerEngine | undefined> | undefined;
  return () => {
    const docker = dockerClient();
    answer ??= pingEngine(docker, 5000).then(
      () => new DockerodeEngine(docker),
      () => undefined,
    );
    return answer;
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
  const { settings, sources } = await settingsFor(cmd, ctx, IMAGE_SETTINGS);
  checkBaseImage(settings);
  await checkRecipeInputs({ envFile: input, envArg: 'ENV_FILE|DEF_FILE', lock: flags.lock, fromPrefix: flags.fromPrefix, defs: settings.defs, cwd: ctx.cwd });
  if (flags.output) await checkOutputFile(flags.output, '-o/--output', { cwd: ctx.cwd, force: true });
  if (flags.dockerArchive) await checkOutputFile(flags.dockerArchive, '--docker-archive', { cwd: ctx.cwd, force: !!flags.force });
  if (settings.tmpdir) await checkInputDir(settings.tmpdir, '--tmpdir', { cwd: ctx.cwd, writable: true, hint: 'give an existing directory with room for the build, e.g. /scratch/$USER/tmp' });
  const inputPath = path.resolve(ctx.cwd, input);
  if (!flags.fromPrefix && (await isDockerfile(inputPath))) {
    const dir = path.relative(ctx.cwd, path.dirname(inputPath)) || '.';
    throw new InputError(`${input} is a Dockerfile: build reads an environment.yml or an apptainer definition file`, {
      hint: `let sifpack run Docker and convert: sifpack build environment.yml --builder docker\nor build this Dockerfile yourself: docker build -t NAME:TAG -f ${input} ${dir} && sifpack convert NAME:TAG -o NAME.sif`,
    });
  }
  const defMode = !flags.fromPrefix && (await isDefFile(inputPath));
  if (!flags.fromPrefix && (flags.keepPrefixPath || settings.allowLocal)) throw new InputError('--keep-prefix-path and --allow-local go with --from-prefix', { hint: 'add --from-prefix PREFIX' });
  if (defMode && (flags.lock || sources.base === '--base' || sources.baseImage === '--base-image' || sources.bootstrap === '--bootstrap')) throw new InputError(`${input} is a definition file: --lock, --base, --base-image and --bootstrap do not apply`, { hint: 'edit the definition file, or build from environment.yml' });
  const { recipe, spec } = defMode
    ? { recipe: undefined, spec: undefined }
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
  if (spec) for (const w of environmentWarnings(spec, flags.fromPrefix ?? input)) log.warn(w);
  const name = recipe?.envName ?? path.basename(input).replace(/\.def$/, '');
  // An existing image is fine here: the build cache decides whether it is rebuilt.
  const output = await checkOutputFile(flags.output ?? `${name}.sif`, flags.output ? '-o/--output' : 'the default output', { cwd: ctx.cwd, force: true });
  const signingKey = await signingKeyForFlags(flags, ctx);
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
  let signed: Awaited<ReturnType<typeof signBuiltImage>> | undefined;
  if (signingKey) {
    const interrupt = abortOnSigint();
    try {
      signed = await signBuiltImage(res.image, signingKey, interrupt.signal);
    } finally {
      interrupt.dispose();
    }
    log.info(signed.alreadySigned ? `${displayPath(res.image, ctx.cwd)} already carries a signature by ${signed.signer}` : `signed ${displayPath(res.image, ctx.cwd)} by ${signed.signer}`);
    if (!signed.alreadySigned) res.sha256 = await cachedSha256(res.image, ctx.cwd);
  }
  const size = (await fs.stat(res.image)).size;
  if (flags.json) ctx.stdout.write(`${JSON.stringify({ image: res.image, sha256: res.sha256, hash: res.hash, builder: res.builder, cached: res.cached, seconds: res.seconds, ...(res.tag ? { tag: res.tag } : {}), ...(signed ? { signed: { signer: signed.signer, signatures: signed.signatures } } : {}) })}\n`);
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
export async function buildForCli(
  target: BuildTarget,
  settings: Readonly<Pick<Settings, 'builder' | 'fakeroot' | 'tmpdir' | 'dockerNetwork'>>,
  ctx: CliContext,
  log: Log,
  quiet: boolean,
  engine = engineFactory(),
): Promise<BuildResult> {
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
