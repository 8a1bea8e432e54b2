/**
 * Settings: one table says every setting's name, type, default and meaning.
 * The same name is the flag (`--cpus-per-task`), the sifpack.yml key
 * (`cpus-per-task:`) and the environment variable (`SIFPACK_CPUS_PER_TASK`),
 * so users learn one word per setting.
 */

export type SettingType =
  | { kind: 'string' }
  | { kind: 'path' }
  | { kind: 'bool' }
  | { kind: 'int'; min: number }
  | { kind: 'enum'; values: readonly string[] }
  | { kind: 'list' }
  | { kind: 'paths' }
  | { kind: 'map' };

export interface SettingSpec {
  /** kebab-case: the flag and sifpack.yml key. */
  key: string;
  type: SettingType;
  default?: unknown;
  description: string;
}

const str = { kind: 'string' } as const;
const pth = { kind: 'path' } as const;
const bool = { kind: 'bool' } as const;
const list = { kind: 'list' } as const;
const en = (...values: string[]) => ({ kind: 'enum', values }) as const;

export const SETTINGS: readonly SettingSpec[] = [
  // export
  { key: 'via', type: en('auto', 'prefix', 'conda', 'mamba', 'micromamba'), default: 'auto', description: 'how to read the environment: its prefix directly, or through a conda tool' },
  { key: 'no-builds', type: bool, default: false, description: 'leave build strings out of exported specs' },
  { key: 'from-history', type: bool, default: false, description: 'export only the specs the user asked for, pinned to the installed versions' },
  { key: 'allow-local', type: bool, default: false, description: 'skip (and list) editable and local-path pip installs instead of failing' },
  // def / build
  { key: 'base', type: str, default: 'micromamba', description: 'base preset from defs/ (or a --defs directory)' },
  { key: 'base-image', type: str, description: "override the preset's base image (a site mirror or a local image)" },
  { key: 'defs', type: { kind: 'paths' }, default: [], description: 'extra directories of base presets' },
  { key: 'format', type: en('apptainer', 'docker'), default: 'apptainer', description: 'definition file format' },
  { key: 'builder', type: en('auto', 'apptainer', 'singularity', 'docker'), default: 'auto', description: 'what builds the image' },
  { key: 'fakeroot', type: bool, description: 'build with --fakeroot (default: when not root)' },
  { key: 'tmpdir', type: pth, description: 'scratch space for builds (APPTAINER_TMPDIR)' },
  { key: 'docker-network', type: str, description: "network for Docker build steps (default: the engine's; `none` on engines without a bridge)" },
  // sbatch
  { key: 'image', type: pth, description: 'the .sif image jobs run in' },
  { key: 'runtime', type: en('apptainer', 'singularity'), default: 'apptainer', description: 'container runtime on the compute nodes' },
  { key: 'job-name', type: str, description: 'Slurm job name' },
  { key: 'time', type: str, description: 'time limit (MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS)' },
  { key: 'mem', type: str, description: 'memory per node (e.g. 500M, 4G)' },
  { key: 'cpus-per-task', type: { kind: 'int', min: 1 }, description: 'CPUs per task' },
  { key: 'gpus', type: { kind: 'int', min: 0 }, description: 'GPUs per node' },
  { key: 'gpu-request', type: en('gres', 'gpus'), default: 'gres', description: 'how the site wants GPUs asked for: --gres=gpu:N or --gpus=N' },
  { key: 'gpu-vendor', type: en('nvidia', 'amd'), default: 'nvidia', description: 'GPU vendor: --nv (nvidia) or --rocm (amd)' },
  { key: 'partition', type: str, description: 'Slurm partition' },
  { key: 'account', type: str, description: 'Slurm account to charge' },
  { key: 'qos', type: str, description: 'Slurm quality of service' },
  { key: 'output', type: str, description: 'job output file pattern' },
  { key: 'chdir', type: pth, description: 'working directory of the job' },
  { key: 'bind', type: list, default: [], description: 'bind mounts SRC[:DST[:ro]] added to the container' },
  { key: 'env', type: { kind: 'map' }, default: {}, description: 'environment variables K=V passed into the container' },
  { key: 'module', type: list, default: [], description: 'modules to load before the container runs' },
  { key: 'cleanenv', type: bool, default: true, description: "start the container with a clean environment (the host's variables do not leak in)" },
  // run
  { key: 'workdir', type: pth, description: 'where `run` keeps the files of each step (default: .sifpack/ENV_NAME)' },
  // slurm commands, for sites with wrappers
  { key: 'sbatch-path', type: str, default: 'sbatch', description: 'the sbatch command' },
  { key: 'sacct-path', type: str, default: 'sacct', description: 'the sacct command' },
  { key: 'scontrol-path', type: str, default: 'scontrol', description: 'the scontrol command' },
];

/** Resolved settings, camelCase, as commands use them. */
export interface Settings {
  via: 'auto' | 'prefix' | 'conda' | 'mamba' | 'micromamba';
  noBuilds: boolean;
  fromHistory: boolean;
  allowLocal: boolean;
  base: string;
  baseImage?: string;
  defs: string[];
  format: 'apptainer' | 'docker';
  builder: 'auto' | 'apptainer' | 'singularity' | 'docker';
  fakeroot?: boolean;
  tmpdir?: string;
  dockerNetwork?: string;
  image?: string;
  runtime: 'apptainer' | 'singularity';
  jobName?: string;
  time?: string;
  mem?: string;
  cpusPerTask?: number;
  gpus?: number;
  gpuRequest: 'gres' | 'gpus';
  gpuVendor: 'nvidia' | 'amd';
  partition?: string;
  account?: string;
  qos?: string;
  output?: string;
  chdir?: string;
  bind: string[];
  env: Record<string, string>;
  module: string[];
  cleanenv: boolean;
  workdir?: string;
  sbatchPath: string;
  sacctPath: string;
  scontrolPath: string;
}

export type SettingKey = keyof Settings;

/** `cpus-per-task` → `cpusPerTask` (the same rule commander uses for flags). */
export function camel(key: string): string {
  return key.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** `cpus-per-task` → `SIFPACK_CPUS_PER_TASK`. */
export function envName(key: string): string {
  return `SIFPACK_${key.replace(/-/g, '_').toUpperCase()}`;
}

export function settingSpec(key: string): SettingSpec | undefined {
  return SETTINGS.find((s) => s.key === key);
}

/** Describes the allowed values of a setting, for error messages. */
export function describeType(t: SettingType): string {
  switch (t.kind) {
    case 'string':
      return 'a string';
    case 'path':
      return 'a path';
    case 'bool':
      return 'true or false';
    case 'int':
      return `a whole number >= ${t.min}`;
    case 'enum':
      return `one of ${t.values.join(', ')}`;
    case 'list':
      return 'a list of strings';
    case 'paths':
      return 'a list of paths';
    case 'map':
      return 'a mapping of NAME: value';
  }
}
