/**
 * Slurm through its commands, with argument arrays via the process runner.
 * The commands' paths come from settings (sbatch-path, ...) for sites that
 * wrap them.
 */
import { readFileSync } from 'node:fs';
import { InputError, RuntimeFailure } from '../errors.js';
import type { JobInfo } from '../model/job-state.js';
import type { ProcessResult, ProcessRunner } from './process.js';
import { SACCT_FIELDS, parseParsable, parseSacct, parseScontrolJobs } from './slurm-parse.js';

export interface SlurmPaths {
  sbatch: string;
  sacct: string;
  scontrol: string;
  scancel: string;
}

/** afterok:12[:13], afterany:..., afternotok, after, aftercorr, singleton; joined by , or ?. */
const DEP_ITEM = /^(?:singleton|(?:after|afterany|afterok|afternotok|aftercorr|afterburstbuffer)(?::\d+(?:_\d+)?(?:\+\d+)?)+)$/;

/** Validates a --dependency value, naming the valid forms on error. */
export function checkDependency(dep: string): string {
  const items = dep.split(/[,?]/);
  if (!dep || items.some((i) => !DEP_ITEM.test(i))) {
    throw new InputError(`--dependency ${JSON.stringify(dep)} is not valid`, {
      hint: 'use TYPE:JOBID[:JOBID...], e.g. afterok:123 or afterok:123:124; TYPE is after, afterok, afternotok, afterany, aftercorr; or singleton',
    });
  }
  return dep;
}

/**
 * Slurm's client errors as one plain sentence: which controller, what
 * failed, what to check. Undefined when the text is none of the known
 * client-side failures (then Slurm's own lines are shown as they are).
 */
export function explainClientError(stderr: string, env: NodeJS.ProcessEnv): string | undefined {
  const conf = env.SLURM_CONF ?? '/etc/slurm/slurm.conf';
  if (/DNS SRV lookup failed|Could not establish a configuration source/.test(stderr)) {
    return `Slurm is not configured here: there is no ${conf}${env.SLURM_CONF ? ' (SLURM_CONF)' : ''} and no DNS SRV record names a controller; run this on a login node of the cluster, load its Slurm module, or set SLURM_CONF to its slurm.conf`;
  }
  if (/s_p_parse_file: cannot stat file|Unable to process configuration file/.test(stderr)) {
    return `Slurm cannot read its configuration ${conf}; check that SLURM_CONF names the cluster's slurm.conf`;
  }
  const m = /Unable to contact slurm controller \(([^)]*)\)/.exec(stderr);
  if (m) {
    return `the Slurm controller${controllerOf(conf)} did not answer (${m[1]}); check that slurmctld is up, that ${conf} is this cluster's configuration, and that the network allows the connection`;
  }
  return undefined;
}

/** " HOST (port N)" from slurm.conf's SlurmctldHost/SlurmctldPort, or "" when unreadable. */
function controllerOf(conf: string): string {
  try {
    const text = readFileSync(conf, 'utf8');
    const host = /^\s*(?:SlurmctldHost|ControlMachine)\s*=\s*([^\s(#]+)/im.exec(text)?.[1];
    const port = /^\s*SlurmctldPort\s*=\s*(\S+)/im.exec(text)?.[1];
    return host ? ` ${host}${port ? ` (port ${port})` : ''}` : '';
  } catch {
    return '';
  }
}

export interface Submitted {
  jobId: string;
  cluster?: string;
}

const SLURM_MISSING = 'run this on a login node, or load Slurm (`module load slurm`)';

export class SlurmCli {
  constructor(
    private readonly runner: ProcessRunner,
    private readonly paths: SlurmPaths,
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {}

  private async run(cmd: keyof SlurmPaths, args: string[], cwd?: string): Promise<ProcessResult> {
    const bin = this.paths[cmd];
    try {
      return await this.runner.run(bin, args, { env: this.env, ...(cwd ? { cwd } : {}), notFoundHint: SLURM_MISSING });
    } catch (err) {
      if ((err as { tool?: string }).tool === bin) throw new RuntimeFailure(`${bin} not found: ${SLURM_MISSING}`, { cause: err });
      throw err;
    }
  }

  /** sbatch --parsable; Slurm's own message, verbatim, when it refuses. */
  async submit(file: string, opts: { dependency?: string; cwd?: string } = {}): Promise<Submitted> {
    const args = ['--parsable', ...(opts.dependency ? [`--dependency=${opts.dependency}`] : []), file];
    const res = await this.run('sbatch', args, opts.cwd);
    if (res.code !== 0) {
      const plain = explainClientError(res.stderr, this.env);
      if (plain) throw new RuntimeFailure(`cannot submit ${file}: ${plain}`);
      throw new RuntimeFailure(`sbatch refused ${file} (exit ${res.code})`, { details: res.stderr.trim().split('\n').filter(Boolean) });
    }
    const parsed = parseParsable(res.stdout);
    if (!parsed) throw new RuntimeFailure(`sbatch printed no job id: ${JSON.stringify(res.stdout.trim())}`);
    return parsed;
  }

  /**
   * What the controller knows of a job (all its array tasks), from
   * `scontrol show job -o`; undefined when it no longer knows the id.
   */
  async fromController(jobId: string): Promise<JobInfo[] | undefined> {
    const res = await this.run('scontrol', ['show', 'job', '-o', jobId]);
    if (res.code !== 0) {
      if (/Invalid job id/i.test(res.stderr)) return undefined;
      const plain = explainClientError(res.stderr, this.env);
      if (plain) throw new RuntimeFailure(`cannot ask about job ${jobId}: ${plain}`);
      throw new RuntimeFailure(`scontrol show job ${jobId} failed (exit ${res.code})`, { details: res.stderr.trim().split('\n').filter(Boolean) });
    }
    return parseScontrolJobs(res.stdout);
  }

  /** From accounting (sacct), or undefined when accounting is off or does not know the job. */
  async fromAccounting(jobId: string): Promise<JobInfo[] | undefined> {
    let res: ProcessResult;
    try {
      res = await this.run('sacct', ['-n', '-P', '-X', '-j', jobId, '-o', SACCT_FIELDS.join(',')]);
    } catch {
      return undefined; // no sacct on this site
    }
    if (res.code !== 0) return undefined; // "Slurm accounting storage is disabled"
    const jobs = parseSacct(res.stdout);
    return jobs.length ? jobs : undefined;
  }

  /** scancel JOBID...; Slurm's own message, verbatim, when it refuses. */
  async cancel(jobIds: string[]): Promise<void> {
    const res = await this.run('scancel', jobIds);
    const plain = res.code !== 0 ? explainClientError(res.stderr, this.env) : undefined;
    if (plain) throw new RuntimeFailure(`cannot cancel ${jobIds.join(' ')}: ${plain}`);
    if (res.code !== 0) throw new RuntimeFailure(`scancel ${jobIds.join(' ')} failed (exit ${res.code})`, { details: res.stderr.trim().split('\n').filter(Boolean) });
  }

  /** The controller first (live and recently finished), then accounting. */
  async jobs(jobId: string): Promise<JobInfo[] | undefined> {
    return (await this.fromController(jobId)) ?? (await this.fromAccounting(jobId));
  }
}
