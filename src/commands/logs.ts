/** `sifpack logs`: print (or follow) a job's output file. */
import type { Command } from 'commander';
import { createReadStream, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { InputError, RuntimeFailure } from '../errors.js';
import { type JobInfo, isFinished } from '../model/job-state.js';
import { expandOutputPattern } from '../model/sbatch-script.js';
import { Ledger } from '../runtime/ledger.js';
import type { CliContext } from './context.js';
import { addSettings, settingsFor } from './setting-options.js';
import { SLURM_QUERY_COMMANDS, slurmFor } from './slurm-context.js';

interface LogsFlags {
  task?: string;
  follow?: boolean;
  interval?: string;
}

export function register(program: Command, ctx: CliContext): void {
  const cmd = program
    .command('logs')
    .summary("print or follow a job's output file")
    .description(
      "Print a job's output file. The file is found from Slurm (scontrol's StdOut) while\n" +
        'the controller knows the job, else from the run ledger (the script\'s --output\n' +
        'pattern and working directory). Array jobs need --task.',
    )
    .argument('<JOBID>', 'the job id');
  addSettings(cmd, SLURM_QUERY_COMMANDS);
  cmd
    .option('--task <N>', 'the array task whose output to show')
    .option('-f, --follow', 'keep printing new output until the job finishes')
    .option('--interval <SECONDS>', 'seconds between checks with --follow', '1')
    .addHelpText(
      'after',
      `
Examples:
  sifpack logs 4242
  sifpack logs 4300 --task 7
  sifpack logs 4242 -f`,
    )
    .action(async (id: string, flags: LogsFlags, cmd: Command) => run(id, flags, cmd, ctx));
}

/** The output path of the job (or the chosen array task). */
async function outputPath(id: string, task: string | undefined, jobs: JobInfo[] | undefined, ctx: CliContext): Promise<string> {
  if (jobs && jobs.length > 0) {
    const tasks = jobs.filter((j) => j.arrayTaskId !== undefined);
    let job = jobs[0]!;
    if (tasks.length > 0 || task !== undefined) {
      if (task === undefined) {
        throw new InputError(`job ${id} is an array: say which task with --task N`, { hint: `tasks: ${tasks.map((t) => t.arrayTaskId).join(', ')}` });
      }
      const hit = tasks.find((t) => t.arrayTaskId === task);
      if (!hit) throw new InputError(`job ${id} has no task ${task}`, { hint: `tasks: ${tasks.map((t) => t.arrayTaskId).join(', ') || 'none'}` });
      job = hit;
    }
    if (job.stdout) {
      return path.resolve(job.workDir ?? ctx.cwd, expandOutputPattern(job.stdout, { jobId: job.jobId, ...(job.arrayJobId ? { arrayJobId: job.arrayJobId } : {}), ...(job.arrayTaskId ? { arrayTaskId: job.arrayTaskId } : {}), ...(job.name ? { jobName: job.name } : {}), user: os.userInfo().username }));
    }
  }
  const rec = (await new Ledger(ctx.cwd, (m) => ctx.stderr.write(`sifpack: warning: ${m}\n`)).runs()).find((r) => r.jobId === id);
  if (!rec) throw new InputError(`job ${id} is not known to Slurm or to .sifpack/runs.jsonl here`, { hint: 'run this in the directory you submitted from, or check the id' });
  const pattern = rec.output ?? (task !== undefined ? 'slurm-%A_%a.out' : 'slurm-%j.out');
  const name = path.basename(rec.sbatch).replace(/\.(sbatch|sh|slurm)$/, '');
  return path.resolve(rec.workDir, expandOutputPattern(pattern, { jobId: id, arrayJobId: id, ...(task !== undefined ? { arrayTaskId: task } : {}), jobName: name, user: os.userInfo().username }));
}

export async function run(id: string, flags: LogsFlags, cmd: Command, ctx: CliContext): Promise<void> {
  if (!/^\d+$/.test(id)) throw new InputError(`${JSON.stringify(id)} is not a job id`, { hint: 'job ids are numbers, e.g. 4242; for an array task use --task' });
  if (flags.task !== undefined && !/^\d+$/.test(flags.task)) throw new InputError(`--task ${flags.task}: expected a task index like 7`);
  const interval = Number(flags.interval ?? '1');
  if (!Number.isFinite(interval) || interval <= 0) throw new InputError(`--interval ${flags.interval}: expected a number of seconds > 0`);
  const { settings } = await settingsFor(cmd, ctx, SLURM_QUERY_COMMANDS);
  const slurm = slurmFor(settings, ctx);
  const jobs = await slurm.jobs(id);
  const file = await outputPath(id, flags.task, jobs, ctx);

  let offset = 0;
  const pump = async (): Promise<boolean> => {
    const st = await fs.stat(file).catch(() => undefined);
    if (!st) return false;
    if (st.size > offset) {
      await new Promise<void>((resolve, reject) => {
        createReadStream(file, { start: offset, end: st.size - 1 })
          .on('data', (b) => ctx.stdout.write(b))
          .on('error', reject)
          .on('end', resolve);
      });
      offset = st.size;
    }
    return true;
  };

  const exists = await pump();
  if (!flags.follow) {
    if (!exists) {
      const waiting = jobs?.some((j) => !isFinished(j));
      throw new RuntimeFailure(`${file} does not exist${waiting ? ' yet: the job has not started writing' : ''}`, { hint: waiting ? 'follow it with `sifpack logs ID -f`' : 'the job may have run with another --output, or the file was removed' });
    }
    return;
  }
  for (;;) {
    const now = await slurm.jobs(id);
    const done = !now || now.filter((j) => flags.task === undefined || j.arrayTaskId === flags.task).every(isFinished);
    await pump();
    if (done) return;
    await new Promise((r) => setTimeout(r, interval * 1000));
  }
}
