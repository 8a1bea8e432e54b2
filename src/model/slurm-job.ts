/**
 * The Slurm job: what `sifpack sbatch` writes, as validated data. Every
 * value is checked here, and a bad one names where it came from (a flag, a
 * variable, a sifpack.yml field) and the forms that are valid.
 */
import type { PulledImage } from './sbatch-script.js';
import path from 'node:path';
import type { Sources } from '../config/load.js';
import type { Settings } from '../config/settings.js';
import { InputError } from '../errors.js';

export interface Bind {
  src: string;
  dst: string;
  readOnly: boolean;
}

export interface SlurmJob {
  /** The Python script, as the job's working directory will see it. */
  script: string;
  args: string[];
  /** Absolute path of the .sif image. */
  image: string;
  /** When the image was pulled from a registry for this job (sbatch --image oras://...). */
  pulledFrom?: PulledImage;
  runtime: 'apptainer' | 'singularity';
  jobName: string;
  time?: string;
  mem?: string;
  cpusPerTask?: number;
  gpus?: number;
  gpuRequest: 'gres' | 'gpus';
  gpuVendor: 'nvidia' | 'amd';
  partition?: string;
  account?: string;
  qos?: string;
  reservation?: string;
  constraint?: string;
  nodes?: string;
  ntasks?: number;
  exclusive: boolean;
  array?: string;
  output: string;
  error?: string;
  mailType?: string;
  mailUser?: string;
  chdir?: string;
  binds: Bind[];
  env: [string, string][];
  modules: string[];
  /** The site's module init for bash, sourced when `module` is not a function. */
  moduleInit?: string;
  cleanenv: boolean;
  /** sbatch --open-mode: append keeps a requeued job's earlier output. */
  openMode: 'append' | 'truncate';
}

const TIME_FORMS = 'MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS (e.g. 90, 01:30:00, 2-00), or UNLIMITED';

/**
 * Slurm's --time, checked the way sbatch 22.05 checks it (time_str2secs and
 * _is_valid_timespec in SchedMD/slurm src/common/parse_time.c): -1, INFINITE
 * or UNLIMITED in any case; else only digits, at most one "-" and two ":",
 * no "-" after a ":", and enough numbers around the separators. The value is
 * passed on as typed, so sbatch reads what the user wrote.
 */
export function checkTime(value: string, where: string): string {
  const bad = (): never => {
    throw new InputError(`${where}: ${JSON.stringify(value)} is not a time limit`, { hint: `valid forms: ${TIME_FORMS}` });
  };
  if (/^(-1|infinite|unlimited)$/i.test(value)) return value;
  if (!/^[0-9:-]+$/.test(value)) bad();
  const numbers = value.split(/[-:]/).filter(Boolean).length;
  const dashes = value.split('-').length - 1;
  const colons = value.split(':').length - 1;
  if (numbers === 0 || dashes > 1 || colons > 2) bad();
  if (dashes && value.indexOf(':') >= 0 && value.indexOf(':') < value.indexOf('-')) bad();
  if (colons > 0 && numbers < colons + (dashes ? 2 : 1)) bad();
  return value;
}

/**
 * Slurm's --mem (str_to_mbytes): a whole number >= 0, then nothing (MB), K,
 * M, G or T, each with an optional B, in any case; 4GB is 4G. Written back as
 * NUMBER[K|M|G|T].
 */
export function checkMem(value: string, where: string): string {
  const m = /^\s*([+-]?)(\d+)(?:([KMGT])B?)?$/i.exec(value);
  if (!m || (m[1] === '-' && /[1-9]/.test(m[2]!))) {
    throw new InputError(`${where}: ${JSON.stringify(value)} is not a memory size`, { hint: 'valid forms: a whole number with K, M, G or T (optionally KB ... TB), e.g. 500M, 4G, 4GB, 1T; no suffix means megabytes; 0 means all of a node' });
  }
  return `${BigInt(m[2]!)}${(m[3] ?? '').toUpperCase()}`;
}

const MAIL_TYPES = ['NONE', 'BEGIN', 'END', 'FAIL', 'REQUEUE', 'ALL', 'INVALID_DEPEND', 'STAGE_OUT', 'TIME_LIMIT', 'TIME_LIMIT_90', 'TIME_LIMIT_80', 'TIME_LIMIT_50', 'ARRAY_TASKS'];

/** Slurm's --mail-type: event names, comma-separated, in any case. */
export function checkMailType(value: string, where: string): string {
  const unknown = value.split(',').filter((t) => !MAIL_TYPES.includes(t.toUpperCase()));
  if (unknown.length > 0 || value === '') throw new InputError(`${where}: ${JSON.stringify(value)} is not a mail type list${unknown.length ? ` (${unknown.map((u) => JSON.stringify(u)).join(', ')} unknown)` : ''}`, { hint: `valid types: ${MAIL_TYPES.join(', ')}, comma-separated` });
  return value;
}

/** Slurm's --nodes: a count, or MIN-MAX. */
export function checkNodes(value: string, where: string): string {
  if (!/^\d+(-\d+)?$/.test(value)) throw new InputError(`${where}: ${JSON.stringify(value)} is not a node count`, { hint: 'valid forms: 2, or 2-4 (at least 2, at most 4)' });
  return value;
}

/** Slurm's --array: indexes, ranges, steps, joined by commas, with an optional %limit. */
export function checkArray(value: string, where: string): string {
  const bad = (why: string): never => {
    throw new InputError(`${where}: ${JSON.stringify(value)} is not an array spec: ${why}`, { hint: 'valid forms: 0-99, 1,3,5, 0-99%10 (at most 10 at once), 0-15:4 (step 4)' });
  };
  const [list, limit, ...more] = value.split('%');
  if (more.length) bad('more than one %');
  if (limit !== undefined && !/^[1-9]\d*$/.test(limit)) bad('the %limit must be a whole number >= 1');
  if (!list) bad('no indexes');
  for (const item of list!.split(',')) {
    const m = /^(\d+)(?:-(\d+)(?::(\d+))?)?$/.exec(item);
    if (!m) bad(`${JSON.stringify(item)} is not N, N-M or N-M:STEP`);
    if (m![2] !== undefined && Number(m![2]) < Number(m![1])) bad(`${item} runs backwards`);
    if (m![3] !== undefined && Number(m![3]) < 1) bad(`${item} has step 0`);
  }
  return value;
}

/** SRC[:DST[:ro|rw]], absolute paths, as apptainer's --bind takes them. */
export function parseBind(value: string, where: string): Bind {
  const bad = (why: string): never => {
    throw new InputError(`${where}: ${JSON.stringify(value)} is not a bind: ${why}`, { hint: 'valid forms: /scratch, /data:/data, /data:/input:ro (absolute paths; ro or rw)' });
  };
  const parts = value.split(':');
  if (parts.length > 3) bad('too many ":"');
  const [src, dst = src, opt] = parts as [string, string?, string?];
  if (!src.startsWith('/')) bad('SRC must be an absolute path');
  if (!dst!.startsWith('/')) bad('DST must be an absolute path');
  if (opt !== undefined && opt !== 'ro' && opt !== 'rw') bad(`"${opt}" is not ro or rw`);
  // apptainer reads `-B a,b` as two binds, so a comma cannot be part of a path.
  if (value.includes(',')) bad('apptainer splits binds at ",", so a path cannot hold one; pass each bind on its own');
  if (/[\n\r]/.test(value)) bad('a path cannot hold a line break here');
  return { src, dst: dst!, readOnly: opt === 'ro' };
}

/**
 * A value that goes on an `#SBATCH` line. sbatch reads those one line at a
 * time, so a line break would end the directive and the rest would run as
 * shell: refuse it.
 */
export function checkDirective(value: string, where: string): string {
  if (/[\n\r\0]/.test(value)) {
    throw new InputError(`${where}: ${JSON.stringify(value)} cannot hold a line break: it goes on an #SBATCH line`, { hint: 'give the value on one line' });
  }
  return value;
}

/** Where a setting came from, for messages: the flag, variable or file field. */
function from(sources: Sources, key: keyof Settings, flag: string): string {
  return sources[key] ?? flag;
}

/** The settings a job is made of. */
export type JobSettings = Pick<
  Settings,
  | 'image' | 'runtime' | 'jobName' | 'time' | 'mem' | 'cpusPerTask' | 'gpus' | 'gpuRequest' | 'gpuVendor' | 'partition' | 'account' | 'qos'
  | 'reservation' | 'constraint' | 'nodes' | 'ntasks' | 'exclusive' | 'output' | 'error' | 'mailType' | 'mailUser' | 'chdir' | 'bind' | 'env' | 'module' | 'moduleInit' | 'cleanenv' | 'openMode'
>;

export interface JobInput {
  settings: JobSettings;
  sources: Sources;
  script: string;
  args: string[];
  array?: string;
  cwd: string;
}

/** Builds and validates the job. Pure: the caller checks files on disk. */
export function buildJob(input: JobInput): SlurmJob {
  const { settings: s, sources } = input;
  if (!s.image) throw new InputError('no image: pass --image IMAGE.sif (or set image: in sifpack.yml)', { hint: 'build one with `sifpack build`' });
  if (!input.script) throw new InputError('no script given', { hint: 'sifpack sbatch SCRIPT.py [ARGS...] --image IMAGE.sif' });
  const array = input.array !== undefined ? checkArray(input.array, '--array') : undefined;
  const jobName = checkDirective(s.jobName ?? path.basename(input.script).replace(/\.py$/, ''), s.jobName !== undefined ? from(sources, 'jobName', '--job-name') : 'the job name (from SCRIPT; set one with --job-name)');
  type LineKey = 'output' | 'error' | 'chdir' | 'partition' | 'account' | 'qos' | 'reservation' | 'constraint' | 'mailUser' | 'mailType' | 'nodes';
  const line = (key: LineKey, flag: string): string | undefined => (s[key] === undefined ? undefined : checkDirective(s[key]!, from(sources, key, flag)));
  const [output, error, chdir, partition, account, qos, reservation, constraint, mailUser] = (
    [['output', '--output'], ['error', '--error'], ['chdir', '--chdir'], ['partition', '--partition'], ['account', '--account'], ['qos', '--qos'], ['reservation', '--reservation'], ['constraint', '--constraint'], ['mailUser', '--mail-user']] as const
  ).map(([k, f]) => line(k, f));
  const mailType = s.mailType !== undefined ? checkMailType(s.mailType, from(sources, 'mailType', '--mail-type')) : undefined;
  const nodes = s.nodes !== undefined ? checkNodes(s.nodes, from(sources, 'nodes', '--nodes')) : undefined;
  return {
    script: input.script,
    args: input.args,
    image: path.resolve(input.cwd, s.image),
    runtime: s.runtime,
    jobName,
    ...(s.time !== undefined ? { time: checkTime(s.time, from(sources, 'time', '--time')) } : {}),
    ...(s.mem !== undefined ? { mem: checkMem(s.mem, from(sources, 'mem', '--mem')) } : {}),
    ...(s.cpusPerTask !== undefined ? { cpusPerTask: s.cpusPerTask } : {}),
    ...(s.gpus ? { gpus: s.gpus } : {}),
    gpuRequest: s.gpuRequest,
    gpuVendor: s.gpuVendor,
    ...(partition ? { partition } : {}),
    ...(account ? { account } : {}),
    ...(qos ? { qos } : {}),
    ...(reservation ? { reservation } : {}),
    ...(constraint ? { constraint } : {}),
    ...(nodes ? { nodes } : {}),
    ...(s.ntasks !== undefined ? { ntasks: s.ntasks } : {}),
    exclusive: s.exclusive,
    ...(array ? { array } : {}),
    output: output ?? (array ? '%x_%A_%a.out' : '%x_%j.out'),
    ...(error ? { error } : {}),
    ...(mailType ? { mailType } : {}),
    ...(mailUser ? { mailUser } : {}),
    ...(chdir ? { chdir } : {}),
    binds: s.bind.map((b) => parseBind(b, from(sources, 'bind', '--bind'))),
    env: Object.entries(s.env),
    modules: s.module,
    ...(s.moduleInit !== undefined ? { moduleInit: checkDirective(s.moduleInit, from(sources, 'moduleInit', '--module-init')) } : {}),
    cleanenv: s.cleanenv,
    openMode: s.openMode,
  };
}

/**
 * The GPU stack an image was built for, from the labels sifpack writes: its
 * base image (the cuda preset's is a CUDA image; a ROCm base says rocm).
 */
export function imageGpuStack(labels: Record<string, string> | undefined): 'nvidia' | 'amd' | undefined {
  const base = `${labels?.['sifpack.base-image'] ?? ''} ${labels?.['sifpack.preset'] ?? ''}`;
  if (/\brocm/i.test(base)) return 'amd';
  if (/\bcuda/i.test(base) || /-cuda/i.test(base)) return 'nvidia';
  return undefined;
}

/** A GPU job whose vendor is not the one the image's libraries were built for: said, not refused. */
export function gpuVendorMismatch(job: Pick<SlurmJob, 'gpus' | 'gpuVendor' | 'image'>, labels: Record<string, string> | undefined): string | undefined {
  if (!job.gpus) return undefined;
  const stack = imageGpuStack(labels);
  if (!stack || stack === job.gpuVendor) return undefined;
  const built = stack === 'nvidia' ? 'CUDA' : 'ROCm';
  const flag = job.gpuVendor === 'amd' ? '--rocm' : '--nv';
  return `gpu-vendor ${job.gpuVendor} (${flag}), but ${job.image} was built for ${built} (sifpack.base-image ${labels?.['sifpack.base-image'] ?? '?'}, preset ${labels?.['sifpack.preset'] ?? '?'}): its GPU libraries will not find the cluster's GPUs; build it with a ${job.gpuVendor === 'amd' ? 'ROCm' : 'CUDA'} base (--base / --base-image) or set gpu-vendor: ${stack}`;
}
