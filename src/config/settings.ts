/**
 * Settings: one table says every setting's name, type, default, flag and
 * meaning. The same name is the flag (`--cpus-per-task`), the sifpack.yml key
 * (`cpus-per-task:`) and the environment variable (`SIFPACK_CPUS_PER_TASK`),
 * so users learn one word per setting. A command lists the keys it takes
 * (`src/commands/setting-options.ts`) and gets its options, help and typed
 * values from here: adding a row and a key to a command's list is the whole
 * change for a new flag, config key and variable.
 *
 * Short flags live here too, so every short flag is visible in one screen.
 * In `sbatch` (and `run`) a short flag means what it means in Slurm's sbatch
 * (test/unit/settings-drift.test.ts checks against the real `sbatch --help`).
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
  /** One letter: `-t` for `--time`. */
  short?: string;
  /** The value's name in help: `--time <LIMIT>`. Not for booleans. */
  value?: string;
  /** Help, README and error hints all show this text. */
  description: string;
  /** For a boolean without a default (auto): help of its `--no-KEY` flag. */
  offDescription?: string;
}

const str = { kind: 'string' } as const;
const pth = { kind: 'path' } as const;
const bool = { kind: 'bool' } as const;
const list = { kind: 'list' } as const;
const en = <const V extends readonly string[]>(...values: V) => ({ kind: 'enum', values }) as const;
const int = <const N extends number>(min: N) => ({ kind: 'int', min }) as const;

const TABLE = [
  // export
  { key: 'via', type: en('auto', 'prefix', 'conda', 'mamba', 'micromamba'), default: 'auto', value: 'HOW', description: 'read the prefix directly, or ask a conda tool (auto: the prefix when readable)' },
  { key: 'no-builds', type: bool, default: false, description: 'leave build strings out (numpy=1.26.4 instead of numpy=1.26.4=py311h64a7726_0)' },
  { key: 'from-history', type: bool, default: false, description: 'only the specs you asked for (from conda-meta/history), pinned to the installed versions: the portable choice for laptop → cluster' },
  { key: 'allow-local', type: bool, default: false, description: 'leave out editable / local-path pip installs (listed) instead of failing; with --from-prefix also .pth entries outside the prefix, dangling symlinks and files you do not own' },
  // def / build
  { key: 'base', type: str, default: 'micromamba', value: 'PRESET', description: 'base preset: micromamba, miniforge, cuda, rocm, or one from --defs' },
  { key: 'base-image', type: str, value: 'IMAGE', description: "use this image instead of the preset's (a site mirror, a local image); must be pinned" },
  { key: 'defs', type: { kind: 'paths' }, default: [], value: 'DIR', description: 'extra directory of presets, one YAML file per preset' },
  { key: 'format', type: en('apptainer', 'docker'), default: 'apptainer', value: 'FORMAT', description: 'apptainer definition file or Dockerfile' },
  { key: 'bootstrap', type: en('docker', 'docker-daemon', 'docker-archive', 'localimage'), default: 'docker', value: 'AGENT', description: "where apptainer takes the def file's base image from: a registry (docker), the local Docker engine (docker-daemon), a docker save tarball (docker-archive) or a SIF (localimage), both named by --base-image" },
  { key: 'builder', type: en('auto', 'apptainer', 'singularity', 'docker'), default: 'auto', value: 'WHICH', description: 'what builds: auto tries apptainer, singularity, then Docker' },
  { key: 'fakeroot', type: bool, description: 'build with --fakeroot (default: when not root)', offDescription: 'never pass --fakeroot' },
  { key: 'tmpdir', type: pth, value: 'DIR', description: 'scratch space for the build (sets APPTAINER_TMPDIR; with --builder docker, for the conversion to SIF: the engine builds in its own data root)' },
  { key: 'docker-network', type: str, value: 'NAME', description: "network for Docker build steps (default: the engine's; `none` on engines without a bridge)" },
  // sbatch
  { key: 'image', type: pth, value: 'IMAGE.sif', description: 'the image the job runs in: a .sif file, or oras://HOST/REPO:TAG, pulled once into image-dir when the script is written' },
  { key: 'runtime', type: en('apptainer', 'singularity'), default: 'apptainer', value: 'NAME', description: 'container runtime on the compute nodes' },
  { key: 'job-name', type: str, short: 'J', value: 'NAME', description: 'job name (default: the script name)' },
  { key: 'time', type: str, short: 't', value: 'LIMIT', description: 'time limit: MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS, or UNLIMITED' },
  { key: 'mem', type: str, value: 'SIZE', description: 'memory per node: 500M, 4G, ...' },
  { key: 'cpus-per-task', type: int(1), short: 'c', value: 'N', description: 'CPUs per task' },
  { key: 'gpus', type: int(0), value: 'N', description: 'GPUs per node (adds --nv, or --rocm with gpu-vendor: amd)' },
  { key: 'gpu-request', type: en('gres', 'gpus'), default: 'gres', value: 'HOW', description: 'how the site asks for GPUs: --gres=gpu:N or --gpus=N' },
  { key: 'gpu-vendor', type: en('nvidia', 'amd'), default: 'nvidia', value: 'VENDOR', description: 'GPU vendor: --nv (nvidia) or --rocm (amd)' },
  { key: 'partition', type: str, short: 'p', value: 'NAME', description: 'Slurm partition' },
  { key: 'account', type: str, short: 'A', value: 'NAME', description: 'account to charge' },
  { key: 'qos', type: str, short: 'q', value: 'NAME', description: 'quality of service' },
  { key: 'reservation', type: str, value: 'NAME', description: 'run in this reservation' },
  { key: 'constraint', type: str, short: 'C', value: 'LIST', description: 'node features the job needs, e.g. avx512 or "a100&ib"' },
  { key: 'nodes', type: str, short: 'N', value: 'N[-MAX]', description: 'number of nodes' },
  { key: 'ntasks', type: int(1), short: 'n', value: 'N', description: 'number of tasks (srun starts the script once per task)' },
  { key: 'exclusive', type: bool, default: false, description: 'do not share the nodes with other jobs' },
  { key: 'output', type: str, short: 'o', value: 'PATTERN', description: "the job's output file (default %x_%j.out, arrays %x_%A_%a.out); submit creates its directory" },
  { key: 'error', type: str, short: 'e', value: 'PATTERN', description: "the job's error file (default: with the output)" },
  { key: 'open-mode', type: en('append', 'truncate'), default: 'append', value: 'MODE', description: "sbatch --open-mode: append keeps the output of a job that was requeued (a node failure) instead of truncating it" },
  { key: 'mail-type', type: str, value: 'TYPES', description: 'mail on these events: NONE, BEGIN, END, FAIL, REQUEUE, ALL, TIME_LIMIT, TIME_LIMIT_90, ... (comma-separated)' },
  { key: 'mail-user', type: str, value: 'ADDRESS', description: 'who gets the mail (default: the submitting user)' },
  { key: 'chdir', type: pth, short: 'D', value: 'DIR', description: 'working directory of the job' },
  { key: 'bind', type: list, default: [], value: 'SRC[:DST[:ro]]', description: 'bind a host path into the container' },
  { key: 'env', type: { kind: 'map' }, default: {}, value: 'NAME=VALUE', description: 'set a variable in the container' },
  { key: 'module', type: list, default: [], value: 'NAME', description: 'module to load before the container runs' },
  { key: 'module-init', type: pth, value: 'FILE', description: "the site's module init for bash, sourced when `module` is not a function (a batch shell is not a login shell); common places are tried without it" },
  { key: 'cleanenv', type: bool, default: true, description: "start the container with a clean environment (the host's variables do not leak in)", offDescription: "let the host's environment into the container" },
  // push / pull
  { key: 'plain-http', type: bool, default: false, description: 'plain HTTP instead of HTTPS (automatic for localhost and 127.0.0.1)' },
  { key: 'cache-dir', type: pth, value: 'DIR', description: 'cache of pulled images, by digest (default: $XDG_CACHE_HOME/sifpack or ~/.cache/sifpack)' },
  { key: 'image-dir', type: pth, value: 'DIR', description: 'shared directory where --image oras://... is pulled for jobs, once, on the login node (default: next to the job script)' },
  // run
  { key: 'workdir', type: pth, value: 'DIR', description: 'where `run` keeps the files of each step (default: .sifpack/ENV_NAME)' },
  // slurm commands, for sites with wrappers
  { key: 'sbatch-path', type: str, default: 'sbatch', value: 'CMD', description: 'the sbatch command (for sites that wrap it)' },
  { key: 'sacct-path', type: str, default: 'sacct', value: 'CMD', description: 'the sacct command (for sites that wrap it)' },
  { key: 'scontrol-path', type: str, default: 'scontrol', value: 'CMD', description: 'the scontrol command (for sites that wrap it)' },
  { key: 'scancel-path', type: str, default: 'scancel', value: 'CMD', description: 'the scancel command (for sites that wrap it)' },
] as const satisfies readonly SettingSpec[];

/** Every setting, in the table's order (help and README follow it). */
export const SETTINGS: readonly SettingSpec[] = TABLE;

/** A setting's name as the table spells it: `cpus-per-task`. */
export type SettingName = (typeof TABLE)[number]['key'];

/** `cpus-per-task` → `cpusPerTask`, at the type level. */
export type Camel<S extends string> = S extends `${infer H}-${infer T}` ? `${H}${Capitalize<Camel<T>>}` : S;

type Row = (typeof TABLE)[number];
type ValueOf<T> = T extends { kind: 'string' | 'path' }
  ? string
  : T extends { kind: 'bool' }
    ? boolean
    : T extends { kind: 'int' }
      ? number
      : T extends { kind: 'enum'; values: readonly (infer V)[] }
        ? V
        : T extends { kind: 'list' | 'paths' }
          ? string[]
          : T extends { kind: 'map' }
            ? Record<string, string>
            : never;

/**
 * Resolved settings, camelCase, as commands use them; derived from the table
 * (a setting with a default is always present, one without may be undefined).
 */
export type Settings = { [R in Row as R extends { default: unknown } ? Camel<R['key']> : never]: ValueOf<R['type']> } & {
  [R in Row as R extends { default: unknown } ? never : Camel<R['key']>]?: ValueOf<R['type']>;
};

export type SettingKey = keyof Settings;

/** `cpus-per-task` → `cpusPerTask` (the same rule commander uses for flags). */
export function camel<S extends string>(key: S): Camel<S> {
  return key.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase()) as Camel<S>;
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
