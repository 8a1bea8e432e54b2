/**
 * `sifpack build`: one recipe, built by whatever the user has — apptainer or
 * singularity on the cluster, a Docker engine on a workstation — and never
 * rebuilt when an image with the same content hash is already there.
 */
import { createWriteStream, promises as fs } from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { EXIT, InputError, RuntimeFailure, SifpackError } from '../errors.js';
import { IMAGE_ENV_ARCHIVE, type Recipe } from '../model/recipe.js';
import { APPTAINER_BUILD_RUN, ApptainerBuildFailure, type RuntimeInfo, buildWithApptainer, detectRuntime, importantLines, withScratch } from '../runtime/apptainer.js';
import { type ContextDir, type ContextFile, type PrefixTransform, type RelocationReport, emptyRelocationReport, packContext } from '../runtime/build-context.js';
import type { DockerEngine } from '../runtime/docker.js';
import { imageLabels } from '../runtime/image-labels.js';
import type { ProcessRunner } from '../runtime/process.js';
import { renderDef } from '../render/def.js';
import { COPY_WARNING, HOOKS_WARNING, renderDockerfile } from '../render/dockerfile.js';
import { makeStateDir, refuseOverwrite, tempPathFor } from '../util/atomic-write.js';
import { cachedSha256 } from '../util/hash-cache.js';
import { convertImage } from './convert.js';

export type BuilderChoice = 'auto' | 'apptainer' | 'singularity' | 'docker';

export interface BuildRequest {
  /** The recipe; absent when a hand-edited definition file is built as it is. */
  recipe?: Recipe;
  /** A hand-edited definition file to build instead of rendering one (apptainer only; no cache). */
  defFile?: string;
  /** The image's name: the env's, or the def file's. */
  name: string;
  output: string;
  builder: BuilderChoice;
  tag?: string;
  dockerArchive?: string;
  fakeroot?: boolean;
  tmpdir?: string;
  force: boolean;
  /** The Docker build's network mode (`none` on engines without a bridge). */
  dockerNetwork?: string;
  cwd: string;
  env: NodeJS.ProcessEnv;
  sifpackVersion: string;
  signal?: AbortSignal;
  onLine: (line: string) => void;
  onInfo: (message: string) => void;
}

export interface BuildResult {
  image: string;
  sha256: string;
  hash: string;
  builder: 'apptainer' | 'singularity' | 'docker';
  cached: boolean;
  seconds: number;
  tag?: string;
  warnings: string[];
}

export function labelOf(recipe: Recipe, key: string): string {
  return recipe.labels.find(([k]) => k === key)?.[1] ?? '';
}

/** Which builder to use, and why (said to the user). */
export async function chooseBuilder(
  choice: BuilderChoice,
  runner: ProcessRunner,
  engine: () => Promise<DockerEngine | undefined>,
  env: NodeJS.ProcessEnv,
): Promise<{ kind: 'apptainer'; runtime: RuntimeInfo; why: string } | { kind: 'docker'; engine: DockerEngine; why: string }> {
  if (choice === 'apptainer' || choice === 'singularity') {
    const rt = await detectRuntime(runner, choice, env);
    if (!rt) throw new RuntimeFailure(`${choice} not found on PATH`, { hint: `load it (\`module load ${choice}\`), or use --builder docker on a machine with Docker` });
    return { kind: 'apptainer', runtime: rt, why: `${rt.flavour} ${rt.version} (asked for)` };
  }
  if (choice === 'auto') {
    const rt = await detectRuntime(runner, 'auto', env);
    if (rt) return { kind: 'apptainer', runtime: rt, why: `${rt.flavour} ${rt.version} found on PATH` };
  }
  const e = await engine();
  if (!e) {
    throw new RuntimeFailure(choice === 'docker' ? 'no Docker engine answers' : 'nothing to build with: no apptainer or singularity on PATH, and no Docker engine answers', {
      hint: 'on a cluster: `module load apptainer`; on a workstation: start Docker (or set DOCKER_HOST, e.g. to Podman\'s socket)',
    });
  }
  return { kind: 'docker', engine: e, why: choice === 'docker' ? `Docker engine at ${env.DOCKER_HOST ?? 'the default socket'} (asked for)` : `no apptainer or singularity on PATH; Docker engine at ${env.DOCKER_HOST ?? 'the default socket'}` };
}

/** The build hash an existing SIF carries, if any. */
export async function existingHash(file: string, runner: ProcessRunner): Promise<string | undefined> {
  return (await existingLabels(file, runner))?.['sifpack.build-hash'];
}

/** The labels an existing SIF carries, if it is one. */
async function existingLabels(file: string, runner: ProcessRunner): Promise<Record<string, string> | undefined> {
  const there = await fs.stat(file).then((s) => s.isFile(), () => false);
  if (!there) return undefined;
  try {
    return (await imageLabels(file, runner)).labels;
  } catch {
    return undefined; // not a SIF we can read: rebuild (with --force)
  }
}

/**
 * What built an image, from its labels: a SIF made from a Docker image
 * (sifpack's converter, or apptainer's docker-daemon bootstrap after a Docker
 * build) says bootstrap docker-daemon from the built image's tag; a def file
 * built by apptainer with `--bootstrap docker-daemon` says the same
 * bootstrap but from the base image itself. apptainer and singularity name
 * themselves in org.label-schema.usage.*.version.
 */
export function builderFromLabels(labels: Record<string, string>): BuildResult['builder'] {
  if (labels['sifpack.converted-by']) return 'docker';
  const from = labels['org.label-schema.usage.singularity.deffile.from'];
  if (labels['org.label-schema.usage.singularity.deffile.bootstrap'] === 'docker-daemon' && from !== labels['sifpack.base-image']) return 'docker';
  if (labels['org.label-schema.usage.apptainer.version']) return 'apptainer';
  if (labels['org.label-schema.usage.singularity.version']) return 'singularity';
  return 'apptainer';
}

/**
 * The recipe as a Docker build sees it: the env file and locks sit at the
 * context's top under their in-image names, the prefix under `prefix/`.
 */
export function forDockerContext(recipe: Recipe): Recipe {
  if (recipe.source.kind !== 'env-file') return recipe;
  return { ...recipe, files: recipe.files.map((f) => ({ ...f, source: path.posix.basename(f.dest) })) };
}

/** How the packer moves a --from-prefix env: from its host path to the recipe's, leaving out what the checks skipped. */
export function prefixTransform(recipe: Recipe): PrefixTransform | undefined {
  const src = recipe.source;
  if (src.kind !== 'prefix') return undefined;
  return { from: src.hostPath, to: recipe.envPrefix, fileModes: new Map(src.fileModes), skip: new Set(src.skip), report: emptyRelocationReport() };
}

/** One line saying what the relocation did, and warnings for what it could not do. */
export function describeRelocation(t: PrefixTransform): { info: string; warnings: string[] } {
  const r: RelocationReport = t.report;
  const warnings: string[] = [];
  const list = (xs: string[]) => xs.slice(0, 10).join(', ') + (xs.length > 10 ? `, … (${xs.length} in all)` : '');
  if (r.opaque.length) warnings.push(`${r.opaque.length} file(s) hold the old prefix ${t.from} but are neither text, ELF nor .pyc, so they were copied unchanged: ${list(r.opaque)}`);
  if (r.scrubbed.length) warnings.push(`channel credentials (tokens, user:password) were taken out of ${list(r.scrubbed)} in the image; the env on disk keeps them`);
  if (r.dropped.length) warnings.push(`${r.dropped.length} .pyc file(s) could not be rewritten and were left out (Python compiles their sources at import): ${list(r.dropped)}`);
  const info =
    t.from === t.to
      ? `env kept at ${t.to} (--keep-prefix-path): modes a+rX, owned by root`
      : `relocated ${t.from} -> ${t.to}: ${r.text} text, ${r.binary} binary (NUL-padded), ${r.pyc} .pyc file(s), ${r.links} symlink(s), ${r.records} pip RECORD(s) rewritten`;
  return { info, warnings };
}

/** Writes the --from-prefix tarball a definition file's %files ships (relocated, a+rX, root-owned), atomically. */
export async function writePrefixArchive(recipe: Recipe, target: string, force: boolean): Promise<PrefixTransform> {
  const t = prefixTransform(recipe);
  if (!t) throw new Error('writePrefixArchive: not a --from-prefix recipe');
  await writeArchive(packContext([], [{ name: '.', source: t.from, prefix: t }]), target, force);
  return t;
}

/** The Docker build context: Dockerfile, the env file and locks, or the prefix under `prefix/`. */
export function dockerContext(recipe: Recipe, dockerfile: string): { files: ContextFile[]; dirs: ContextDir[]; prefix?: PrefixTransform } {
  const files: ContextFile[] = [{ name: 'Dockerfile', data: dockerfile }];
  const dirs: ContextDir[] = [];
  const src = recipe.source;
  if (src.kind === 'env-file') {
    for (const f of [src.envFile, src.lock, src.pipLock]) if (f) files.push({ name: f.name, data: f.text });
    return { files, dirs };
  }
  const prefix = prefixTransform(recipe)!;
  dirs.push({ name: 'prefix', source: src.hostPath, prefix });
  return { files, dirs, prefix };
}

/** The recipe for a def file kept under .sifpack/build: %files from absolute paths. */
function forDefIn(recipe: Recipe, cwd: string): Recipe {
  return {
    ...recipe,
    files: recipe.files.map((f) => {
      const source = path.isAbsolute(f.source) ? f.source : path.resolve(cwd, f.source);
      if (/\s/.test(source)) throw new InputError(`${source}: the path holds whitespace, which a %files line cannot express`, { hint: 'build from a directory whose path has no spaces, or use --builder docker' });
      return { ...f, source };
    }),
  };
}

async function writeArchive(stream: Readable, target: string, force: boolean): Promise<void> {
  await refuseOverwrite(target, { force, forceFlag: '--force' });
  const tmp = tempPathFor(target);
  try {
    await pipeline(stream, createWriteStream(tmp, { flags: 'wx' }));
    await fs.rename(tmp, target);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
}

/**
 * A `Bootstrap: docker` build that failed while pulling the base image, when
 * the local Docker engine has that image: say to take it from there. The
 * default stays `docker` (a registry): a def file that says docker-daemon
 * cannot be rebuilt on a cluster without Docker, and the same command should
 * write the same def file on every machine.
 */
async function withLocalImageHint(err: unknown, recipe: Recipe | undefined, engine: () => Promise<DockerEngine | undefined>, env: NodeJS.ProcessEnv): Promise<unknown> {
  if (!(err instanceof ApptainerBuildFailure) || err.hadRootfs || recipe?.bootstrap !== 'docker') return err;
  const e = await engine().catch(() => undefined);
  const local = e ? await e.inspectImage(recipe.baseImage).catch(() => undefined) : undefined;
  if (!local) return err;
  return new RuntimeFailure(`${err.message}: it could not pull the base image docker://${recipe.baseImage}`, {
    details: err.details,
    hint: `${recipe.baseImage} is in the local Docker engine (${env.DOCKER_HOST ?? 'the default socket'}): build from it with --bootstrap docker-daemon (or bootstrap: docker-daemon in sifpack.yml)\n${err.hint ?? ''}`.trim(),
  });
}

export async function buildImage(req: BuildRequest, runner: ProcessRunner, engine: () => Promise<DockerEngine | undefined>): Promise<BuildResult> {
  const started = Date.now();
  const { recipe } = req;
  if (!recipe && !req.defFile) throw new Error('buildImage: a recipe or a definition file is needed');
  const hash = recipe ? labelOf(recipe, 'sifpack.build-hash') : '';
  const warnings: string[] = [];
  const interrupted = () => new SifpackError('build interrupted; nothing written', EXIT.interrupted);

  // Cache: an output SIF that already carries this hash is this build.
  if (!req.force && recipe && !req.defFile) {
    const existing = await existingLabels(req.output, runner);
    const have = existing?.['sifpack.build-hash'];
    if (existing?.['sifpack.build-hash'] === hash) {
      return { image: req.output, sha256: await cachedSha256(req.output, req.cwd), hash, builder: builderFromLabels(existing), cached: true, seconds: (Date.now() - started) / 1000, warnings };
    }
    if (await fs.stat(req.output).then(() => true, () => false)) {
      throw new InputError(`${req.output} exists and was built from something else${have ? ` (build hash ${have.slice(7, 19)}…, this one ${hash.slice(7, 19)}…)` : ''}`, { hint: 'pass --force to replace it, or -o another path' });
    }
  } else if (!req.force) {
    await refuseOverwrite(req.output);
  }

  const picked = await chooseBuilder(req.builder, runner, engine, req.env);
  req.onInfo(`builder: ${picked.why}`);

  if (picked.kind === 'apptainer') {
    let defFile = req.defFile;
    let archive: string | undefined;
    try {
      if (!defFile && recipe) {
        // The def file goes where its %files paths were computed from, under .sifpack/.
        const dir = path.join(req.cwd, '.sifpack', 'build');
        await makeStateDir(dir);
        defFile = path.join(dir, `${req.name}.def`);
        let defRecipe = forDefIn(recipe, req.cwd);
        if (recipe.source.kind === 'prefix') {
          // The prefix goes in as one tarball next to the def, relocated on the way.
          archive = path.join(dir, `${req.name}-env.tar`);
          if (/\s/.test(archive)) throw new InputError(`${archive}: the path holds whitespace, which a %files line cannot express`, { hint: 'build from a directory whose path has no spaces, or use --builder docker' });
          req.onInfo(`packing ${recipe.source.hostPath} into ${path.relative(req.cwd, archive)}`);
          const t = await writePrefixArchive(recipe, archive, true);
          const d = describeRelocation(t);
          req.onInfo(d.info);
          warnings.push(...d.warnings);
          defRecipe = { ...defRecipe, files: defRecipe.files.map((f) => (f.dest === IMAGE_ENV_ARCHIVE ? { ...f, source: archive! } : f)) };
        }
        const { text } = renderDef(defRecipe, { version: req.sifpackVersion, defName: path.basename(defFile) });
        await fs.writeFile(defFile, text, { mode: 0o644 });
      }
      const logFile = path.join(req.cwd, '.sifpack', 'build', `${path.basename(req.output)}.log`);
      await makeStateDir(path.dirname(logFile));
      const res = await buildWithApptainer(runner, {
        runtime: picked.runtime,
        defFile: defFile!,
        output: req.output,
        ...(req.fakeroot !== undefined ? { fakeroot: req.fakeroot } : {}),
        ...(req.tmpdir ? { tmpdir: req.tmpdir } : {}),
        env: req.env,
        onLine: req.onLine,
        logFile,
        ...(req.signal ? { signal: req.signal } : {}),
      });
      warnings.push(...res.warnings);
      return { image: req.output, sha256: await cachedSha256(req.output, req.cwd), hash, builder: picked.runtime.flavour, cached: false, seconds: (Date.now() - started) / 1000, warnings };
    } catch (err) {
      throw await withLocalImageHint(err, recipe, engine, req.env);
    } finally {
      // The tarball is as big as the env: it is in the image now (or the build failed).
      if (archive) await fs.rm(archive, { force: true });
    }
  }

  if (!recipe) throw new InputError(`${req.defFile}: a definition file needs apptainer or singularity to build`, { hint: 'give environment.yml (or --from-prefix) to build through Docker' });
  const docker = picked.engine;
  const tag = req.tag ?? `sifpack/${req.name.toLowerCase().replace(/[^a-z0-9._-]/g, '-')}:${hash.slice(7, 19)}`;
  const existing = req.force ? undefined : await docker.inspectImage(tag);
  const dockerRecipe = forDockerContext(recipe);
  if (existing && existing.config.Labels?.['sifpack.build-hash'] === hash) {
    req.onInfo(`Docker image ${tag} already has this build hash: not rebuilding it`);
  } else {
    const dockerfile = renderDockerfile(dockerRecipe, { version: req.sifpackVersion });
    // The context packed here is the relocated one the COPY warning asks for, and the
    // SIF runs the hooks: that warning concerns only a Docker image taken elsewhere (below).
    warnings.push(...dockerfile.warnings.filter((w) => w !== COPY_WARNING && w !== HOOKS_WARNING));
    const ctx = dockerContext(dockerRecipe, dockerfile.text);
    req.onInfo(`building ${tag} with the Docker engine`);
    let packError: unknown;
    const stream = packContext(ctx.files, ctx.dirs);
    stream.on('error', (err) => {
      packError = err;
    });
    await docker.build(stream, {
      tag,
      labels: {}, // the Dockerfile's LABEL carries them: no second set of layers
      onLine: req.onLine,
      ...(req.dockerNetwork ? { network: req.dockerNetwork } : {}),
      ...(req.signal ? { signal: req.signal } : {}),
    }).catch((err: unknown) => {
      if (req.signal?.aborted) throw interrupted();
      // A refusal while packing (a binary that cannot take the new prefix) says more than the engine's broken pipe.
      if (packError instanceof SifpackError) throw packError;
      throw err;
    });
    if (packError) throw packError;
    if (ctx.prefix) {
      const d = describeRelocation(ctx.prefix);
      req.onInfo(d.info);
      warnings.push(...d.warnings);
    }
  }
  if (req.dockerArchive) {
    warnings.push(HOOKS_WARNING);
    req.onInfo(`saving ${tag} to ${req.dockerArchive} (docker save format)`);
    await writeArchive(await docker.save(tag), path.resolve(req.cwd, req.dockerArchive), req.force);
  }
  // The SIF: apptainer's own conversion when it is here, else sifpack's converter.
  const rt = await detectRuntime(runner, 'auto', req.env);
  if (rt) {
    req.onInfo(`converting with ${rt.flavour} build ${path.basename(req.output)} docker-daemon://${tag}${req.tmpdir ? ` (scratch in --tmpdir ${req.tmpdir})` : ''}`);
    const tmp = `${tempPathFor(req.output)}.sif`;
    const lines: string[] = [];
    const onLine = (l: string) => {
      lines.push(l);
      req.onLine(l);
    };
    const res = await runner.stream(rt.binary, ['build', tmp, `docker-daemon://${tag}`], { env: withScratch(rt, req.env, req.tmpdir), ...APPTAINER_BUILD_RUN, onLine, ...(req.signal ? { signal: req.signal } : {}) });
    if (res.code !== 0 || req.signal?.aborted) {
      await fs.rm(tmp, { force: true });
      if (req.signal?.aborted) throw interrupted();
      throw new RuntimeFailure(`${rt.flavour} build from docker-daemon://${tag} failed (exit ${res.code})`, { details: importantLines(lines) });
    }
    await fs.rename(tmp, req.output);
  } else {
    // The engine builds in its own data root; sifpack's converter streams into the output and needs
    // scratch only when its squashfs tool cannot write at an offset (tar2sqfs).
    req.onInfo(`converting ${tag} to ${path.basename(req.output)} with sifpack's converter (no apptainer here)`);
    await convertImage(docker, runner, {
      image: tag,
      output: req.output,
      compression: 'gzip',
      force: true,
      sifpackVersion: req.sifpackVersion,
      labels: Object.fromEntries(recipe.labels),
      ...(req.tmpdir ? { tmpdir: req.tmpdir } : {}),
      ...(req.signal ? { signal: req.signal } : {}),
    });
  }
  return { image: req.output, sha256: await cachedSha256(req.output, req.cwd), hash, builder: 'docker', cached: false, seconds: (Date.now() - started) / 1000, tag, warnings };
}
