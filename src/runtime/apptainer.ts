/**
 * Building with apptainer (or singularity): preflight, then
 * `apptainer build [--fakeroot] TMP.sif DEF` with its output streamed to
 * stderr and a log file, and an atomic rename into place. On failure the
 * lines that matter (FATAL, ERROR, the solver's errors) are surfaced, and no
 * partial image is left.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EXIT, InputError, RuntimeFailure, SifpackError } from '../errors.js';
import { tempPathFor } from '../util/atomic-write.js';
import { APPTAINER_CREDENTIALS, type ProcessRunner } from './process.js';
import { GiB, formatBytes, probeScratch } from './scratch.js';

export type ContainerRuntime = 'apptainer' | 'singularity';

export interface RuntimeInfo {
  binary: string;
  flavour: ContainerRuntime;
  /** "1.3.4" */
  version: string;
}

/** `apptainer version 1.3.4`, `singularity-ce version 4.1.0`, `singularity version 3.8.7-1.el8`. */
export function parseVersion(text: string): { flavour: ContainerRuntime; version: string } | undefined {
  const m = /^(apptainer|singularity(?:-ce)?) version (\d+\.\d+(?:\.\d+)?)/m.exec(text.trim());
  if (!m) return undefined;
  return { flavour: m[1] === 'apptainer' ? 'apptainer' : 'singularity', version: m[2]! };
}

function atLeast(version: string, major: number, minor: number): boolean {
  const [a = 0, b = 0] = version.split('.').map(Number);
  return a > major || (a === major && b >= minor);
}

/** Finds and identifies the runtime binary. */
export async function detectRuntime(runner: ProcessRunner, which: ContainerRuntime | 'auto', env: NodeJS.ProcessEnv): Promise<RuntimeInfo | undefined> {
  for (const name of which === 'auto' ? (['apptainer', 'singularity'] as const) : [which]) {
    const bin = await runner.which(name, env);
    if (!bin) continue;
    const res = await runner.run(bin, ['--version'], { env });
    const v = parseVersion(res.stdout || res.stderr);
    if (res.code === 0 && v) return { binary: bin, ...v };
    throw new RuntimeFailure(`${bin} --version did not say what it is: ${JSON.stringify((res.stdout || res.stderr).trim())}`);
  }
  return undefined;
}

/**
 * Whether to pass --fakeroot. Root needs none; apptainer >= 1.1 falls back
 * to fakeroot by itself when unprivileged; older apptainer and singularity
 * need it asked for.
 */
export function needFakeroot(rt: RuntimeInfo, uid: number, asked: boolean | undefined): boolean {
  if (asked !== undefined) return asked;
  if (uid === 0) return false;
  return !(rt.flavour === 'apptainer' && atLeast(rt.version, 1, 1));
}

/** The lines of a build log worth showing on failure. */
export function importantLines(lines: readonly string[]): string[] {
  const keep = lines.filter((l) => /^(FATAL|ERROR):|^\s*(error|critical)\s+libmamba|CondaError|PackagesNotFoundError|ResolvePackageNotFound|nothing provides|^E: |^fakeroot: /.test(l));
  return (keep.length ? keep : lines.filter((l) => l.trim()).slice(-5)).slice(-12);
}

/**
 * `apptainer build` failed. `hadRootfs` is false when it failed before it
 * had a root filesystem to work in — while getting the base image — which
 * lets the caller point at another place to take the image from.
 */
export class ApptainerBuildFailure extends RuntimeFailure {
  readonly hadRootfs: boolean;
  constructor(message: string, hadRootfs: boolean, extra: ConstructorParameters<typeof RuntimeFailure>[1]) {
    super(message, extra);
    this.hadRootfs = hadRootfs;
  }
}

/** apptainer prints this once the base image is unpacked (singularity says "Singularity"). */
const ROOTFS_READY = /^INFO:\s+Inserting (Apptainer|Singularity) configuration/;

export interface ApptainerBuildRequest {
  runtime: RuntimeInfo;
  defFile: string;
  output: string;
  fakeroot?: boolean;
  /** Scratch for the build (APPTAINER_TMPDIR); default: the variable, else the system temp dir. */
  tmpdir?: string;
  env: NodeJS.ProcessEnv;
  uid?: number;
  /** Each line of apptainer's output, for the progress display. */
  onLine: (line: string) => void;
  /** Where the full log goes. */
  logFile: string;
  signal?: AbortSignal;
  /** Below this much free scratch space the build is refused (default 2 GiB). */
  minFreeBytes?: number;
}

/**
 * How every `apptainer build` runs: it keeps the password variables it reads
 * (to pull a base image), and in a process group of its own, so Ctrl-C stops
 * %post too, not only apptainer.
 */
export const APPTAINER_BUILD_RUN = { passCredentials: APPTAINER_CREDENTIALS, processGroup: true } as const;

const prefixVar = (rt: RuntimeInfo) => (rt.flavour === 'apptainer' ? 'APPTAINER' : 'SINGULARITY');
/** The runtime's scratch variable: APPTAINER_TMPDIR (SINGULARITY_TMPDIR). */
const scratchVar = (rt: RuntimeInfo) => `${prefixVar(rt)}_TMPDIR`;

/** The environment with the runtime's scratch variable (APPTAINER_TMPDIR) set to `tmpdir`, when given. */
export function withScratch(rt: RuntimeInfo, env: NodeJS.ProcessEnv, tmpdir: string | undefined): NodeJS.ProcessEnv {
  return tmpdir ? { ...env, [scratchVar(rt)]: path.resolve(tmpdir) } : env;
}

/** The path itself, or its closest existing parent (the cache dir may not exist yet). */
async function nearestExisting(p: string): Promise<string> {
  let cur = path.resolve(p);
  while (!(await fs.stat(cur).then(() => true, () => false))) {
    const up = path.dirname(cur);
    if (up === cur) break;
    cur = up;
  }
  return cur;
}

/** Checks scratch space and returns the environment the build runs with. */
export async function preflight(req: ApptainerBuildRequest): Promise<{ env: NodeJS.ProcessEnv; args: string[]; warnings: string[] }> {
  const v = prefixVar(req.runtime);
  const tmpVar = scratchVar(req.runtime);
  const cacheVar = `${v}_CACHEDIR`;
  const tmpdir = path.resolve(req.tmpdir ?? req.env[tmpVar] ?? os.tmpdir());
  const warnings: string[] = [];
  const st = await fs.stat(tmpdir).catch(() => undefined);
  if (!st?.isDirectory()) {
    throw new InputError(`${req.tmpdir ? '--tmpdir' : tmpVar} ${tmpdir}: no such directory`, { hint: `create it, or point --tmpdir (${tmpVar}) at scratch space, e.g. /scratch/$USER/tmp` });
  }
  const probe = await probeScratch(tmpdir);
  if (probe.noexec) {
    throw new RuntimeFailure(`${tmpdir} is mounted noexec, and the build runs %post from there`, { hint: `set ${tmpVar} (or --tmpdir) to a directory on another filesystem, e.g. /scratch/$USER/tmp or $HOME/tmp` });
  }
  const min = req.minFreeBytes ?? 2 * GiB;
  if (probe.freeBytes < min) {
    throw new RuntimeFailure(`only ${formatBytes(probe.freeBytes)} free in ${tmpdir}; a build unpacks the whole image there`, { hint: `set ${tmpVar} (or --tmpdir) to a roomier filesystem` });
  }
  // The layer cache goes to --tmpdir too when it is given and the variable is
  // not set: home directories on clusters are small and often on quota.
  const cache = req.env[cacheVar] ?? (req.tmpdir ? path.join(tmpdir, `${req.runtime.flavour}-cache`) : path.join(req.env.HOME ?? os.homedir(), `.${req.runtime.flavour}`, 'cache'));
  const cacheProbe = await probeScratch(await nearestExisting(cache)).catch(() => undefined);
  if (cacheProbe && cacheProbe.freeBytes < min) {
    warnings.push(`only ${formatBytes(cacheProbe.freeBytes)} free for the layer cache ${cache}; set ${cacheVar} to scratch space if the build runs out of room`);
  }
  const fakeroot = needFakeroot(req.runtime, req.uid ?? process.getuid?.() ?? 0, req.fakeroot);
  const env = { ...req.env, [tmpVar]: tmpdir, [cacheVar]: cache };
  return { env, args: ['build', ...(fakeroot ? ['--fakeroot'] : [])], warnings };
}

/** Runs the build; the image appears at `output` only if it succeeded. */
export async function buildWithApptainer(runner: ProcessRunner, req: ApptainerBuildRequest): Promise<{ warnings: string[] }> {
  const { env, args, warnings } = await preflight(req);
  const tmpVar = scratchVar(req.runtime);
  // A scratch directory of this build's own inside the chosen one: apptainer's
  // build-temp-*/bundle-temp-* go there, and it is removed whatever happens
  // (apptainer's own clean-up on SIGTERM races its still-running %post).
  const scratch = await fs.mkdtemp(path.join(env[tmpVar]!, 'sifpack-build-'));
  const tmp = `${tempPathFor(req.output)}.sif`;
  const lines: string[] = [];
  let result: { code: number; signal: NodeJS.Signals | null };
  try {
    const log = await fs.open(req.logFile, 'w');
    try {
      result = await runner.stream(req.runtime.binary, [...args, tmp, req.defFile], {
        env: { ...env, [tmpVar]: scratch },
        ...APPTAINER_BUILD_RUN,
        cwd: path.dirname(req.defFile), // %files sources are relative to the def file
        onLine: (line) => {
          lines.push(line);
          void log.write(`${line}\n`);
          req.onLine(line);
        },
        ...(req.signal ? { signal: req.signal } : {}),
      });
    } catch (err) {
      await fs.rm(tmp, { force: true });
      throw err;
    } finally {
      await log.close();
    }
  } finally {
    // A fakeroot build can leave files owned by a subordinate uid, which the user cannot delete: say so, do not mask the build's outcome.
    await fs.rm(scratch, { recursive: true, force: true }).catch((e: Error) => warnings.push(`could not remove the build's scratch directory ${scratch}: ${e.message}`));
  }
  if (req.signal?.aborted) {
    await fs.rm(tmp, { force: true });
    throw new SifpackError('build interrupted; no image written', EXIT.interrupted, { hint: `partial output removed; log: ${req.logFile}` });
  }
  if (result.code !== 0) {
    await fs.rm(tmp, { force: true });
    throw new ApptainerBuildFailure(`${req.runtime.flavour} build failed (exit ${result.code}${result.signal ? `, ${result.signal}` : ''})`, lines.some((l) => ROOTFS_READY.test(l)), {
      details: importantLines(lines),
      hint: `the full log is ${req.logFile}`,
    });
  }
  const made = await fs.stat(tmp).catch(() => undefined);
  if (!made?.isFile() || made.size === 0) {
    await fs.rm(tmp, { force: true });
    throw new RuntimeFailure(`${req.runtime.flavour} build exited 0 but wrote no image`, { details: importantLines(lines), hint: `the full log is ${req.logFile}` });
  }
  await fs.rename(tmp, req.output);
  return { warnings };
}
