/**
 * The recipe: one typed model of the image, rendered to an Apptainer
 * definition file and to a Dockerfile by pure functions in src/render/.
 * buildRecipe() turns inputs (preset, environment, optional lock or prefix)
 * into it; nothing here touches the disk.
 */
import { createHash } from 'node:crypto';
import { checkPinned } from '../config/presets.js';
import { InputError } from '../errors.js';
import { stripCredentials } from './channel.js';
import { type EnvironmentSpec, renderEnvironmentYaml } from './environment.js';
import { guessedImport, importName } from './import-names.js';
import { parseMatchSpec } from './match-spec.js';
import { vcsSchemes } from './vcs.js';

/** A base preset from defs/: data, never code. */
export interface Preset {
  name: string;
  description: string;
  /** Pinned base image (a version tag or digest, never latest). */
  image: string;
  installer: 'micromamba' | 'conda';
  installerPath: string;
  osPackageManager: 'apt' | 'dnf' | 'none';
  osPackages: string[];
  /** Where the env is installed when solved in the image. */
  envPrefix: string;
  /** CUDA version for CONDA_OVERRIDE_CUDA while solving (GPU presets). */
  cuda?: string;
  /** An extra pip index for the install step (PIP_EXTRA_INDEX_URL), e.g. PyTorch's ROCm wheels. */
  pipExtraIndexUrl?: string;
  notes: string[];
  file: string;
}

/** Bump when the templates change what an image contains, so cached builds are redone. */
export const TEMPLATE_VERSION = '3';

/** Where sifpack keeps the env file and lock inside the image. */
export const IMAGE_SIFPACK_DIR = '/opt/sifpack';

/** Where the env lives in every image: a path apptainer never mounts over at run time. */
export const IMAGE_ENV_PREFIX = '/opt/env';

/** HOME's cache while %post / RUN run as root: nothing in it belongs in the image. */
export const BUILD_HOME_CACHE = '/root/.cache';

/** A throwaway env holding conda-forge's git while pip installs `git+` requirements; removed after. */
export const BUILD_GIT_PREFIX = '/opt/sifpack-git';

/** The pip requirement lines of an env-file source: its pip: section and the pip lock. */
export function pipLines(spec: EnvironmentSpec, source: RecipeSource): string[] {
  if (source.kind !== 'env-file') return [];
  return [...spec.pip, ...(source.pipLock?.text.split(/\r?\n/) ?? [])];
}

/** Where a definition file's %files puts the prefix tarball, unpacked and removed in %post. */
export const IMAGE_ENV_ARCHIVE = `${IMAGE_SIFPACK_DIR}/env.tar`;

export interface InputFile {
  /** Path as the definition file refers to it (relative to the def's directory, or absolute). */
  source: string;
  /** File name inside /opt/sifpack. */
  name: string;
  text: string;
}

export type RecipeSource =
  | { kind: 'env-file'; envFile: InputFile; lock?: InputFile; pipLock?: InputFile }
  | {
      kind: 'prefix';
      hostPath: string;
      recordsDigest: string;
      /** --keep-prefix-path: the env stays at its host path in the image, nothing rewritten. */
      keepPath?: boolean;
      /** The prefix packed as a tarball, as the def file's %files refers to it. */
      archive: string;
      /** conda's file_mode for files recorded with a prefix placeholder (relative paths). */
      fileModes: [string, 'text' | 'binary'][];
      /** Paths relative to the prefix left out (--allow-local). */
      skip: string[];
      /** Whether etc/conda/activate.d holds hooks (unknown: undefined). */
      activationHooks?: boolean;
    };

/** Apptainer's bootstrap agents for the base image (Bootstrap: in the def file). */
export type Bootstrap = 'docker' | 'docker-daemon' | 'docker-archive' | 'localimage';

export interface RecipeInput {
  preset: Preset;
  baseImage?: string;
  bootstrap?: Bootstrap;
  spec: EnvironmentSpec;
  source: RecipeSource;
  sifpackVersion: string;
}

export interface Recipe {
  preset: Preset;
  baseImage: string;
  /** Where apptainer takes the base image from; a Dockerfile's FROM always asks the engine. */
  bootstrap: Bootstrap;
  envName: string;
  /** The env's path inside the image. */
  envPrefix: string;
  source: RecipeSource;
  /** Files copied into the image: [source, destination]. */
  files: { source: string; dest: string }[];
  /** Solve/install steps as argv lists; empty for --from-prefix. */
  install: { env: Record<string, string>; steps: string[][] };
  /** Runtime environment, in order. */
  environment: [string, string][];
  labels: [string, string][];
  /** Modules %test must import. */
  testImports: string[];
  /** pip packages' guessed module names: tried, a miss reported, not fatal. */
  testGuessed: string[];
  testSkipped: string[];
  /** Packages for %help, as listed in the env. */
  packages: string[];
  notes: string[];
}

const sha256 = (s: string) => `sha256:${createHash('sha256').update(s).digest('hex')}`;

/** The env's hash: over its normalised rendering, so comments and layout don't change it. */
export function envHash(spec: EnvironmentSpec): string {
  return sha256(renderEnvironmentYaml(spec));
}

/** The lock's hash: over its package lines only (comments and blank lines don't count). */
export function lockHash(text: string): string {
  return sha256(text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l && !l.startsWith('#')).join('\n'));
}

function installSteps(p: Preset, prefix: string, src: Extract<RecipeSource, { kind: 'env-file' }>, git: boolean): string[][] {
  const inImage = (f: InputFile) => `${IMAGE_SIFPACK_DIR}/${f.name}`;
  const steps: string[][] = [];
  // pip runs `git clone` for git+ requirements; the base images have no git. A
  // separate solve keeps the env (and a lock) exactly as written and git out of the image.
  if (git) steps.push([p.installerPath, 'create', '-y', '-p', BUILD_GIT_PREFIX, '-c', 'conda-forge', 'git']);
  if (p.installer === 'micromamba') {
    steps.push([p.installerPath, 'create', '-y', '-p', prefix, '-f', inImage(src.lock ?? src.envFile)]);
  } else if (src.lock) {
    steps.push([p.installerPath, 'create', '-y', '-p', prefix, '--file', inImage(src.lock)]);
  } else {
    steps.push([p.installerPath, 'env', 'create', '-p', prefix, '-f', inImage(src.envFile)]);
  }
  if (src.lock && src.pipLock) steps.push([`${prefix}/bin/python`, '-m', 'pip', 'install', '--no-deps', '--no-cache-dir', '-r', inImage(src.pipLock)]);
  if (git) steps.push(['rm', '-rf', BUILD_GIT_PREFIX]);
  steps.push([p.installerPath, 'clean', '-a', '-y']);
  // Whatever still wrote under HOME=/root during the build (pip's cache if a
  // tool ignores PIP_NO_CACHE_DIR, matplotlib's font cache, ...) is not the env's.
  steps.push(['rm', '-rf', BUILD_HOME_CACHE]);
  return steps;
}

/** Which top-level modules %test imports, and what it leaves out. */
export function testImports(spec: EnvironmentSpec): { imports: string[]; guessed: string[]; skipped: string[] } {
  const imports: string[] = [];
  const guessed: string[] = [];
  const skipped: string[] = [];
  const add = (dist: string, pip: boolean) => {
    const mod = importName(dist);
    if (mod) {
      if (!imports.includes(mod)) imports.push(mod);
    } else if (mod === undefined && pip) {
      const g = guessedImport(dist);
      if (!guessed.includes(g)) guessed.push(g);
    } else if (!skipped.includes(dist)) skipped.push(dist);
  };
  for (const d of spec.dependencies) {
    const s = parseMatchSpec(d);
    if (s) add(s.name, false);
  }
  for (const p of spec.pip) {
    const m = /^\s*([A-Za-z0-9][A-Za-z0-9._-]*)/.exec(p);
    if (m && !p.trim().startsWith('-')) add(m[1]!, true);
  }
  return { imports, guessed, skipped };
}

/**
 * The build's content hash: everything that decides what the image holds —
 * the env (normalised) or its lock, the prefix's records and path for --from-prefix,
 * the preset's data, the base image, the template and sifpack versions — and
 * nothing else (not paths, not dates, not which builder). Equal hash, same
 * image: the build can be skipped.
 */
export function buildHash(input: { labels: [string, string][]; preset: Preset; baseImage: string }): string {
  const { file: _file, ...presetData } = input.preset;
  const identity = {
    labels: input.labels.filter(([k]) => ['sifpack.env-hash', 'sifpack.lock-hash', 'sifpack.prefix-hash', 'sifpack.prefix-path', 'sifpack.env-prefix', 'sifpack.template-version', 'sifpack.version'].includes(k)),
    preset: presetData,
    baseImage: input.baseImage,
  };
  return sha256(JSON.stringify(identity));
}

/** Builds the recipe. Throws InputError for inputs no image can be made from. */
/**
 * The env file and lock are copied into the image, and an image travels
 * (registries, scp, other groups): a channel token or a user:password in a
 * URL there would travel with it. Refused, naming the place but never the
 * secret; `${VAR}` forms are not secrets and pass.
 */
function refusePlaintextSecrets(spec: EnvironmentSpec, source: Extract<RecipeSource, { kind: 'env-file' }>): void {
  const places: string[] = [];
  const urls = (text: string) => text.split(/\s+/).filter((w) => /^[a-z][a-z0-9+.-]*:\/\//i.test(w.replace(/^[^=]*=/, '')) || w.includes('/t/'));
  spec.channels.forEach((c, i) => stripCredentials(c).hadCredentials && places.push(`channels[${i}]`));
  spec.dependencies.forEach((d, i) => urls(d).some((u) => stripCredentials(u).hadCredentials) && places.push(`dependencies item ${i + 1}`));
  spec.pip.forEach((line, i) => urls(line).some((u) => stripCredentials(u.replace(/^[^=]*=/, '')).hadCredentials) && places.push(`pip item ${i + 1}`));
  for (const f of [source.lock, source.pipLock]) {
    f?.text.split('\n').forEach((line, i) => urls(line).some((u) => stripCredentials(u.replace(/^[^=]*=/, '')).hadCredentials) && places.push(`${f.source} line ${i + 1}`));
  }
  if (places.length === 0) return;
  throw new InputError(`${source.envFile.source}: a password or token is written in plain text (${places.join(', ')}); it would be copied into the image and travel wherever the image goes`, {
    hint: 'write it as an environment variable instead, e.g. https://${CONDA_USER}:${CONDA_PASSWORD}@host/channel or /t/${CONDA_TOKEN}/ (conda and pip expand them); `sifpack export` writes files without credentials',
  });
}

/**
 * The base image as --bootstrap reads it: an image reference, pinned, for
 * docker and docker-daemon; a file (no whitespace: it goes on the From: line)
 * for docker-archive and localimage. Commands call it before any work;
 * buildRecipe calls it too, so no recipe holds an unchecked value.
 */
export function checkBaseImage(settings: { baseImage?: string | undefined; bootstrap?: Bootstrap | undefined }): void {
  const fileAgent = settings.bootstrap === 'docker-archive' || settings.bootstrap === 'localimage';
  if (!fileAgent) {
    if (settings.baseImage) checkPinned(settings.baseImage, '--base-image');
    return;
  }
  const what = settings.bootstrap === 'localimage' ? 'a .sif file' : 'a `docker save` tarball';
  if (!settings.baseImage) throw new InputError(`--bootstrap ${settings.bootstrap} needs --base-image naming ${what}`, { hint: `e.g. --bootstrap ${settings.bootstrap} --base-image ${settings.bootstrap === 'localimage' ? 'base.sif' : 'base.tar'}` });
  if (/\s/.test(settings.baseImage)) throw new InputError(`--base-image ${JSON.stringify(settings.baseImage)}: the path holds whitespace, which the def file's From: line cannot express`, { hint: 'move or rename the file' });
}

export function buildRecipe(input: RecipeInput): Recipe {
  const { preset, spec, source } = input;
  checkBaseImage(input);
  const baseImage = input.baseImage ?? preset.image;
  const envName = spec.name ?? 'env';
  const labels: [string, string][] = [];
  const files: Recipe['files'] = [];
  let envPrefix: string;
  let install: Recipe['install'] = { env: {}, steps: [] };

  if (source.kind === 'env-file') {
    refusePlaintextSecrets(spec, source);
    envPrefix = preset.envPrefix;
    for (const f of [source.envFile, source.lock, source.pipLock]) if (f) files.push({ source: f.source, dest: `${IMAGE_SIFPACK_DIR}/${f.name}` });
    const env: Record<string, string> = {};
    if (preset.installer === 'micromamba') env.MAMBA_ROOT_PREFIX = '/opt/conda';
    if (preset.cuda) env.CONDA_OVERRIDE_CUDA = preset.cuda;
    if (preset.pipExtraIndexUrl) env.PIP_EXTRA_INDEX_URL = preset.pipExtraIndexUrl;
    // micromamba and conda run the env's pip: section as `python -m pip install -r FILE`
    // (mamba-org/mamba libmamba/src/api/install.cpp), without --no-cache-dir: every
    // wheel (torch included) would stay in /root/.cache/pip inside the image.
    env.PIP_NO_CACHE_DIR = '1';
    const git = vcsSchemes(pipLines(spec, source)).includes('git');
    if (git) env.PATH = `${BUILD_GIT_PREFIX}/bin:$PATH`;
    install = { env, steps: installSteps(preset, envPrefix, source, git) };
    labels.push(['sifpack.env-hash', envHash(spec)]);
    if (source.lock) labels.push(['sifpack.lock-hash', lockHash(source.lock.text)]);
  } else {
    if (/[\n\r]/.test(source.hostPath)) throw new InputError(`--from-prefix: the path holds a line break, which no label or definition file can carry`, { hint: 'rename the directory' });
    // Relocated to /opt/env (conda-pack style) so apptainer's default mounts of
    // $HOME, /tmp, /var/tmp and the working directory cannot hide it at run time.
    envPrefix = source.keepPath ? source.hostPath : IMAGE_ENV_PREFIX;
    files.push({ source: source.archive, dest: IMAGE_ENV_ARCHIVE });
    // The host path is part of the build: relocation rewrites it, so the same
    // records at another path are another build.
    labels.push(['sifpack.env-hash', envHash(spec)], ['sifpack.prefix-hash', source.recordsDigest], ['sifpack.prefix-path', source.hostPath]);
    // Where it went: a relocated image and a --keep-prefix-path one are different builds.
    labels.push(['sifpack.env-prefix', envPrefix]);
  }
  labels.push(
    ['sifpack.env-name', envName],
    ['sifpack.preset', preset.name],
    ['sifpack.base-image', baseImage],
    ['sifpack.template-version', TEMPLATE_VERSION],
    ['sifpack.version', input.sifpackVersion],
  );
  labels.push(['sifpack.build-hash', buildHash({ labels, preset, baseImage })]);

  const environment: [string, string][] = [
    ['PATH', `${envPrefix}/bin:$PATH`],
    ['CONDA_PREFIX', envPrefix],
    ['CONDA_DEFAULT_ENV', envName],
    // ~/.local on the host must not shadow the image's packages.
    ['PYTHONNOUSERSITE', '1'],
    ...Object.entries(spec.variables),
  ];
  const t = testImports(spec);
  return {
    preset,
    baseImage,
    bootstrap: input.bootstrap ?? 'docker',
    envName,
    envPrefix,
    source,
    files,
    install,
    environment,
    labels,
    testImports: t.imports,
    testGuessed: t.guessed,
    testSkipped: t.skipped,
    packages: [...spec.dependencies, ...spec.pip.map((p) => `pip: ${p}`)],
    notes: preset.notes,
  };
}
