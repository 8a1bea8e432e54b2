/**
 * `sifpack doctor`: what this machine can do, asked of the real tools with a
 * short timeout each (a dead Slurm controller or a hung Docker socket cannot
 * stall it), and whether that is enough for `sifpack run` here.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type ResolvedSettings, loadConfig, resolveSettings } from '../config/load.js';
import { SifpackError } from '../errors.js';
import { parseVersion } from '../runtime/apptainer.js';
import { dockerClient, pingEngine } from '../runtime/docker.js';
import type { ProcessResult, ProcessRunner } from '../runtime/process.js';
import { GiB, formatBytes, probeScratch } from '../runtime/scratch.js';

export type CheckStatus = 'ok' | 'warning' | 'missing';

export interface DoctorRow {
  area: 'settings' | 'runtime' | 'docker' | 'conda' | 'slurm' | 'squashfs' | 'registry';
  check: string;
  status: CheckStatus;
  detail: string;
  /** One line saying what to do; absent when all is well. */
  fix?: string;
  /** Whether `sifpack run` needs this row to be usable here. */
  neededForRun: boolean;
}

export interface DoctorInput {
  runner: ProcessRunner;
  env: NodeJS.ProcessEnv;
  cwd: string;
  config?: string;
  profile?: string;
  /** Per-probe time limit (default 5 s). */
  timeoutMs?: number;
  uid?: number;
  user?: string;
}

export interface DoctorReport {
  rows: DoctorRow[];
  /** True when every row `run` needs is usable (not missing). */
  readyForRun: boolean;
  /** What run would build with here. */
  builder: 'apptainer' | 'singularity' | 'docker' | 'none';
  /** How long the probes took (they run side by side). */
  seconds: number;
}

/** Builds need this much scratch space; apptainer builds refuse less (runtime/apptainer.ts). */
const MIN_SCRATCH = 2 * GiB;
const ROOMY_SCRATCH = 10 * GiB;

type Row = Omit<DoctorRow, 'neededForRun'>;

async function runQuick(runner: ProcessRunner, bin: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<ProcessResult | undefined> {
  try {
    return await runner.run(bin, args, { env, timeoutMs });
  } catch {
    return undefined;
  }
}

const firstLine = (r: ProcessResult | undefined) => (r ? (r.stdout || r.stderr).trim().split('\n')[0] ?? '' : '');

async function settingsRow(input: DoctorInput): Promise<{ row: Row; resolved?: ResolvedSettings }> {
  try {
    const config = await loadConfig(input.config, input.cwd);
    const resolved = resolveSettings({ ...(config ? { config } : {}), ...(input.profile !== undefined ? { profile: input.profile } : {}), env: input.env, cwd: input.cwd });
    const where = config ? config.path : 'no sifpack.yml here: defaults and SIFPACK_* only';
    return { row: { area: 'settings', check: 'sifpack.yml / profile', status: 'ok', detail: `${where}${resolved.profile ? `, profile ${resolved.profile}` : ''}` }, resolved };
  } catch (err) {
    if (!(err instanceof SifpackError)) throw err;
    return { row: { area: 'settings', check: 'sifpack.yml / profile', status: 'missing', detail: err.message, fix: err.hint ?? 'fix the settings file named above' } };
  }
}

/** apptainer or singularity: version, and whether it runs setuid or through user namespaces. */
async function runtimeRows(input: DoctorInput, timeoutMs: number, settings?: ResolvedSettings): Promise<{ rows: Row[]; flavour?: 'apptainer' | 'singularity' }> {
  const { runner, env } = input;
  let found: { bin: string; flavour: 'apptainer' | 'singularity'; version: string } | undefined;
  let broken: string | undefined;
  for (const name of ['apptainer', 'singularity'] as const) {
    const bin = await runner.which(name, env);
    if (!bin) continue;
    const res = await runQuick(runner, bin, ['--version'], env, timeoutMs);
    const v = res && res.code === 0 ? parseVersion(res.stdout || res.stderr) : undefined;
    if (v) {
      found = { bin, ...v };
      break;
    }
    broken = `${bin} --version ${res?.timedOut ? `gave no answer within ${timeoutMs / 1000}s` : `did not say what it is: ${JSON.stringify(firstLine(res))}`}`;
  }
  const rows: Row[] = [];
  if (!found) {
    rows.push({ area: 'runtime', check: 'apptainer / singularity', status: 'missing', detail: broken ?? 'neither apptainer nor singularity on PATH', fix: 'on a cluster `module load apptainer`; elsewhere install apptainer, or build through Docker (--builder docker)' });
    return { rows };
  }
  // A setuid starter means the site installed it privileged; otherwise it runs in user namespaces.
  const cfg = await runQuick(runner, found.bin, ['buildcfg'], env, timeoutMs);
  const libexec = /^LIBEXECDIR=(.*)$/m.exec(cfg?.stdout ?? '')?.[1];
  const suid = libexec ? await fs.stat(path.join(libexec, found.flavour, 'bin', 'starter-suid')).then((s) => (s.mode & 0o4000) !== 0, () => false) : false;
  rows.push({ area: 'runtime', check: 'apptainer / singularity', status: 'ok', detail: `${found.flavour} ${found.version} (${found.bin}), ${suid ? 'setuid starter' : 'user namespaces (no setuid starter)'}` });

  // --fakeroot: root needs none; others need subuid/subgid ranges and user namespaces.
  const uid = input.uid ?? process.getuid?.() ?? 0;
  const maxNs = Number((await fs.readFile('/proc/sys/user/max_user_namespaces', 'utf8').catch(() => '')).trim() || NaN);
  if (uid === 0) {
    rows.push({ area: 'runtime', check: 'fakeroot', status: 'ok', detail: 'running as root: builds need no --fakeroot' });
  } else {
    const user = input.user ?? os.userInfo().username;
    const has = async (file: string) => (await fs.readFile(file, 'utf8').catch(() => '')).split('\n').some((l) => l.split(':')[0] === user || l.split(':')[0] === String(uid));
    const [sub, subg] = [await has('/etc/subuid'), await has('/etc/subgid')];
    const problems = [!sub && `no ${user} entry in /etc/subuid`, !subg && `no ${user} entry in /etc/subgid`, !(maxNs > 0) && `user namespaces are off (/proc/sys/user/max_user_namespaces = ${Number.isNaN(maxNs) ? 'unreadable' : maxNs})`].filter(Boolean);
    rows.push(
      problems.length === 0
        ? { area: 'runtime', check: 'fakeroot', status: 'ok', detail: `subuid/subgid entries for ${user}, user namespaces on (max ${maxNs})` }
        : { area: 'runtime', check: 'fakeroot', status: suid ? 'warning' : 'missing', detail: problems.join('; '), fix: 'ask the admins for subuid/subgid ranges (`apptainer config fakeroot --add USER`), or build on a machine with Docker' },
    );
  }

  // Scratch: builds unpack the whole image under APPTAINER_TMPDIR (or --tmpdir).
  const v = found.flavour === 'apptainer' ? 'APPTAINER' : 'SINGULARITY';
  const tmpdir = path.resolve(settings?.settings.tmpdir ?? env[`${v}_TMPDIR`] ?? os.tmpdir());
  const fixTmp = `point ${v}_TMPDIR (or --tmpdir) at roomy, exec-allowed scratch, e.g. /scratch/$USER/tmp`;
  const scratch = await probeScratch(tmpdir).catch(() => undefined);
  if (!scratch) rows.push({ area: 'runtime', check: 'build tmpdir', status: 'missing', detail: `${tmpdir}: no such directory`, fix: fixTmp });
  else if (scratch.noexec) rows.push({ area: 'runtime', check: 'build tmpdir', status: 'missing', detail: `${tmpdir} is mounted noexec: %post cannot run from there`, fix: fixTmp });
  else if (scratch.freeBytes < MIN_SCRATCH) rows.push({ area: 'runtime', check: 'build tmpdir', status: 'missing', detail: `${tmpdir}: only ${formatBytes(scratch.freeBytes)} free; builds need ${formatBytes(MIN_SCRATCH)}`, fix: fixTmp });
  else if (scratch.freeBytes < ROOMY_SCRATCH) rows.push({ area: 'runtime', check: 'build tmpdir', status: 'warning', detail: `${tmpdir}: ${formatBytes(scratch.freeBytes)} free; big envs (CUDA, pytorch) need more`, fix: fixTmp });
  else rows.push({ area: 'runtime', check: 'build tmpdir', status: 'ok', detail: `${tmpdir}: ${formatBytes(scratch.freeBytes)} free, exec allowed` });

  const cache = env[`${v}_CACHEDIR`] ?? path.join(env.HOME ?? os.homedir(), `.${found.flavour}`, 'cache');
  let probeDir = cache;
  while (!(await fs.stat(probeDir).then(() => true, () => false)) && path.dirname(probeDir) !== probeDir) probeDir = path.dirname(probeDir);
  const cacheFree = (await probeScratch(probeDir).catch(() => undefined))?.freeBytes;
  rows.push(
    cacheFree !== undefined && cacheFree < MIN_SCRATCH
      ? { area: 'runtime', check: 'cache dir', status: 'warning', detail: `${cache}: only ${formatBytes(cacheFree)} free`, fix: `set ${v}_CACHEDIR to scratch space (home directories are often on quota)` }
      : { area: 'runtime', check: 'cache dir', status: 'ok', detail: `${cache}${cacheFree !== undefined ? `: ${formatBytes(cacheFree)} free` : ''}` },
  );
  return { rows, flavour: found.flavour };
}

async function dockerRow(input: DoctorInput, timeoutMs: number): Promise<Row> {
  const where = input.env.DOCKER_HOST || 'the default socket /var/run/docker.sock';
  try {
    const v = await pingEngine(dockerClient(input.env), timeoutMs);
    return { area: 'docker', check: 'Docker engine', status: 'ok', detail: `${where}: Docker ${v.version} (API ${v.apiVersion}), ${v.arch}` };
  } catch (err) {
    return { area: 'docker', check: 'Docker engine', status: 'missing', detail: `${where}: ${(err as Error).message}`, fix: "start Docker, or set DOCKER_HOST to a running engine's socket (Podman: unix://$XDG_RUNTIME_DIR/podman/podman.sock)" };
  }
}

async function condaRow(input: DoctorInput, timeoutMs: number): Promise<Row> {
  const found: string[] = [];
  for (const tool of ['conda', 'mamba', 'micromamba']) {
    const bin = await input.runner.which(tool, input.env);
    if (!bin) continue;
    const res = await runQuick(input.runner, bin, ['--version'], input.env, timeoutMs);
    found.push(`${tool} ${firstLine(res).replace(/^(conda|mamba|micromamba)\s+/, '') || '(version unknown)'}`);
  }
  return found.length
    ? { area: 'conda', check: 'conda / mamba / micromamba', status: 'ok', detail: `${found.join(', ')}; export reads prefixes directly anyway` }
    : { area: 'conda', check: 'conda / mamba / micromamba', status: 'ok', detail: 'none on PATH: not needed, export reads the prefix (-p, or -n looked up in the usual places)' };
}

async function slurmRows(input: DoctorInput, timeoutMs: number, settings?: ResolvedSettings): Promise<Row[]> {
  const { runner, env } = input;
  const s = settings?.settings;
  const sbatch = await runner.which(s?.sbatchPath ?? 'sbatch', env);
  const scontrol = await runner.which(s?.scontrolPath ?? 'scontrol', env);
  const rows: Row[] = [];
  const fixPath = 'run this on a login node, or `module load slurm`';
  rows.push(sbatch ? { area: 'slurm', check: 'sbatch', status: 'ok', detail: sbatch } : { area: 'slurm', check: 'sbatch', status: 'missing', detail: `${s?.sbatchPath ?? 'sbatch'} not on PATH`, fix: fixPath });
  if (!scontrol) {
    rows.push({ area: 'slurm', check: 'controller (scontrol ping)', status: 'missing', detail: `${s?.scontrolPath ?? 'scontrol'} not on PATH`, fix: fixPath });
    return rows;
  }
  const ping = await runQuick(runner, scontrol, ['ping'], env, timeoutMs);
  const text = (ping?.stdout ?? '') + (ping?.stderr ?? '');
  const up = /\bis UP\b/.test(text);
  if (up) rows.push({ area: 'slurm', check: 'controller (scontrol ping)', status: 'ok', detail: firstLine(ping) });
  else {
    const why = ping?.timedOut ? `no answer within ${timeoutMs / 1000}s` : /\bis DOWN\b/.test(text) ? text.trim().split('\n').find((l) => /is DOWN/.test(l))! : firstLine(ping) || 'no answer';
    rows.push({ area: 'slurm', check: 'controller (scontrol ping)', status: 'missing', detail: why, fix: 'the Slurm controller is not answering: check SLURM_CONF, or ask the admins; `sifpack run --plan` writes the files meanwhile' });
    return rows;
  }
  const parts = await runQuick(runner, scontrol, ['show', 'partition', '-o'], env, timeoutMs);
  const lines = (parts?.stdout ?? '').split('\n').filter((l) => l.startsWith('PartitionName='));
  const def = lines.find((l) => /\bDefault=YES\b/.test(l));
  const name = (l: string) => /^PartitionName=(\S+)/.exec(l)![1]!;
  if (s?.partition) rows.push({ area: 'slurm', check: 'partition', status: lines.some((l) => name(l) === s.partition) ? 'ok' : 'warning', detail: `${s.partition} (from settings)${lines.length && !lines.some((l) => name(l) === s.partition) ? `; not among ${lines.map(name).join(', ')}` : ''}` });
  else if (def) rows.push({ area: 'slurm', check: 'partition', status: 'ok', detail: `default partition ${name(def)}` });
  else rows.push({ area: 'slurm', check: 'partition', status: 'warning', detail: `no default partition${lines.length ? ` (partitions: ${lines.map(name).join(', ')})` : ''}`, fix: 'pass --partition NAME, or set partition: in sifpack.yml' });
  return rows;
}

async function squashfsRow(input: DoctorInput, timeoutMs: number): Promise<Row> {
  const found: string[] = [];
  for (const [tool, args] of [['mksquashfs', ['-version']], ['tar2sqfs', ['--version']]] as const) {
    const bin = await input.runner.which(tool, input.env);
    if (!bin) continue;
    const res = await runQuick(input.runner, bin, [...args], input.env, timeoutMs);
    found.push(firstLine(res) || tool);
  }
  return found.length
    ? { area: 'squashfs', check: 'mksquashfs / tar2sqfs', status: 'ok', detail: found.join('; ') }
    : { area: 'squashfs', check: 'mksquashfs / tar2sqfs', status: 'missing', detail: 'neither on PATH: `convert` (and Docker builds without apptainer) cannot make a SIF', fix: '`apt install squashfs-tools` (4.5 or newer) or squashfs-tools-ng' };
}

/** Where registry credentials would come from: the files and variables, and the hosts they name, never the secrets. */
async function registryRow(input: DoctorInput): Promise<Row> {
  const { env } = input;
  const home = env.HOME ?? os.homedir();
  const found: string[] = [];
  for (const v of ['APPTAINER_DOCKER_USERNAME', 'SINGULARITY_DOCKER_USERNAME']) if (env[v]) found.push(`${v} (${v.replace('USERNAME', 'PASSWORD')} ${env[v.replace('USERNAME', 'PASSWORD')] ? 'set' : 'not set'})`);
  const files = [
    path.join(home, '.apptainer', 'docker-config.json'),
    path.join(home, '.singularity', 'docker-config.json'),
    path.join(env.DOCKER_CONFIG ?? path.join(home, '.docker'), 'config.json'),
    env.REGISTRY_AUTH_FILE ?? (env.XDG_RUNTIME_DIR ? path.join(env.XDG_RUNTIME_DIR, 'containers', 'auth.json') : undefined),
  ].filter((f): f is string => !!f);
  for (const f of files) {
    const text = await fs.readFile(f, 'utf8').catch(() => undefined);
    if (text === undefined) continue;
    try {
      const j = JSON.parse(text) as { auths?: Record<string, unknown>; credsStore?: string; credHelpers?: Record<string, string> };
      const hosts = [...Object.keys(j.auths ?? {}), ...Object.keys(j.credHelpers ?? {})];
      const store = j.credsStore ? `, secrets in the ${j.credsStore} credential store` : '';
      if (hosts.length || store) found.push(`${f}: ${hosts.join(', ') || 'all hosts'}${store}`);
    } catch {
      found.push(`${f}: not valid JSON`);
    }
  }
  return found.length
    ? { area: 'registry', check: 'registry credentials', status: 'ok', detail: found.join('; ') }
    : { area: 'registry', check: 'registry credentials', status: 'warning', detail: 'none found (needed only for private registries)', fix: '`apptainer registry login oras://HOST` or `docker login HOST` when you need one' };
}

export async function runDoctor(input: DoctorInput): Promise<DoctorReport> {
  const started = Date.now();
  const timeoutMs = input.timeoutMs ?? 5000;
  const { row: settings, resolved } = await settingsRow(input);
  // The probes are independent: ask them all at once so the slowest sets the time.
  const [runtime, docker, conda, slurm, squash, registry] = await Promise.all([
    runtimeRows(input, timeoutMs, resolved),
    dockerRow(input, timeoutMs),
    condaRow(input, timeoutMs),
    slurmRows(input, timeoutMs, resolved),
    squashfsRow(input, timeoutMs),
    registryRow(input),
  ]);

  // Which builder run would use, the way `build --builder auto` picks.
  const choice = resolved?.settings.builder ?? 'auto';
  const useRuntime = choice === 'apptainer' || choice === 'singularity' || (choice === 'auto' && runtime.flavour !== undefined);
  const useDocker = choice === 'docker' || (choice === 'auto' && runtime.flavour === undefined);
  const builder: DoctorReport['builder'] = useRuntime ? (runtime.flavour ?? 'none') : useDocker && docker.status === 'ok' ? 'docker' : 'none';
  const rows: DoctorRow[] = [
    { ...settings, neededForRun: true },
    ...runtime.rows.map((r) => ({ ...r, neededForRun: useRuntime })),
    { ...docker, neededForRun: useDocker },
    { ...conda, neededForRun: false },
    ...slurm.map((r) => ({ ...r, neededForRun: r.check !== 'partition' })),
    // Docker builds make the SIF with apptainer when it is here, else with mksquashfs.
    { ...squash, neededForRun: useDocker && runtime.flavour === undefined },
    { ...registry, neededForRun: false },
  ];
  return { rows, readyForRun: rows.every((r) => !r.neededForRun || r.status !== 'missing'), builder, seconds: (Date.now() - started) / 1000 };
}
