/**
 * The Slurm job: what `sifpack sbatch` writes, as validated data. Every
 * value is checked here, and a bad one names where it came from (a flag, a
 * variable, a sifpack.yml field) and the forms that are valid.
 */
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
  array?: string;
  output: string;
  chdir?: string;
  binds: Bind[];
  env: [string, string][];
  modules: string[];
  cleanenv: boolean;
}

const TIME_FORMS = 'MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS (e.g. 90, 01:30:00, 2-00)';
const TIME = /^(\d+|\d+:\d{1,2}|\d+:\d{1,2}:\d{1,2}|\d+-\d{1,2}|\d+-\d{1,2}:\d{1,2}|\d+-\d{1,2}:\d{1,2}:\d{1,2})$/;

/** Slurm's --time forms. */
export function checkTime(value: string, where: string): string {
  if (!TIME.test(value)) throw new InputError(`${where}: ${JSON.stringify(value)} is not a time limit`, { hint: `valid forms: ${TIME_FORMS}` });
  return value;
}

/** Slurm's --mem: a whole number with an optional K, M, G or T suffix (M when none). */
export function checkMem(value: string, where: string): string {
  const m = /^(\d+)([KMGTkmgt]?)$/.exec(value);
  if (!m) throw new InputError(`${where}: ${JSON.stringify(value)} is not a memory size`, { hint: 'valid forms: a whole number with K, M, G or T, e.g. 500M, 4G, 1T (no suffix means megabytes)' });
  return `${m[1]}${m[2]!.toUpperCase()}`;
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
export type JobSettings = Pick<Settings, 'image' | 'runtime' | 'jobName' | 'time' | 'mem' | 'cpusPerTask' | 'gpus' | 'gpuRequest' | 'gpuVendor' | 'partition' | 'account' | 'qos' | 'output' | 'chdir' | 'bind' | 'env' | 'module' | 'cleanenv'>;

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
  const line = (key: 'output' | 'chdir' | 'partition' | 'account' | 'qos', flag: string): string | undefined =>
    s[key] === undefined ? undefined : checkDirective(s[key]!, from(sources, key, flag));
  const [output, chdir, partition, account, qos] = [line('output', '--output'), line('chdir', '--chdir'), line('partition', '--partition'), line('account', '--account'), line('qos', '--qos')];
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
    ...(array ? { array } : {}),
    output: output ?? (array ? '%x_%A_%a.out' : '%x_%j.out'),
    ...(chdir ? { chdir } : {}),
    binds: s.bind.map((b) => parseBind(b, from(sources, 'bind', '--bind'))),
    env: Object.entries(s.env),
    modules: s.module,
    cleanenv: s.cleanenv,
  };
}
