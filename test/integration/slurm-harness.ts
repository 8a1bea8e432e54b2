/**
 * Shared set-up for the real-Slurm tests: a project directory with a Python
 * script and a stand-in image, the CLI run with the apptainer/srun doubles on
 * PATH (sbatch exports the submitting environment, so the job finds them),
 * and polling until a job is finished.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';
import type { JobStatus } from '../../src/commands/status.js';
import { type CliRun, sifpack } from '../e2e/cli.js';
import { ROOT, service, tempDir } from '../helpers.js';

export const DUMP_SCRIPT = `import json, os, sys, time
task = os.environ.get("SLURM_ARRAY_TASK_ID")
name = f"dump_{task}.json" if task is not None else "dump.json"
with open(name, "w", encoding="utf-8") as f:
    json.dump({"argv": sys.argv[1:], "task": task, "job": os.environ.get("SLURM_JOB_ID")}, f)
print("hello from the job", *sys.argv[1:2])
code = int(os.environ.get("EXIT_WITH", "0"))
time.sleep(float(os.environ.get("SLEEP", "0")))
sys.exit(code)
`;

export interface Project {
  dir: string;
  env: NodeJS.ProcessEnv;
  cli: (args: string[], extraEnv?: NodeJS.ProcessEnv) => Promise<CliRun>;
}

export async function makeProject(): Promise<Project> {
  const slurmConf = service('SLURM_CONF');
  const dir = await tempDir('sifpack-slurm-');
  await fs.writeFile(path.join(dir, 'dump.py'), DUMP_SCRIPT);
  await fs.writeFile(path.join(dir, 'analysis.sif'), 'stand-in image: the apptainer double only checks that it exists\n');
  const env = {
    PATH: `${path.join(ROOT, 'test/doubles/bin')}:${process.env.PATH}`,
    HOME: dir,
    SLURM_CONF: slurmConf,
    SIFPACK_RECORD: dir,
  };
  return { dir, env, cli: (args, extraEnv = {}) => sifpack(args, { cwd: dir, env: { ...env, ...extraEnv } }) };
}

/** Renders a job script with `sifpack sbatch` and returns its file name. */
export async function writeJob(p: Project, file: string, args: string[]): Promise<string> {
  const r = await p.cli(['sbatch', 'dump.py', '--image', 'analysis.sif', '--partition', service('SIFPACK_TEST_PARTITION'), '--script-out', file, ...args]);
  expect(r.stderr).not.toMatch(/error/);
  expect(r.code).toBe(0);
  return file;
}

/** Submits and returns the job id. */
export async function submit(p: Project, file: string, extra: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<string> {
  const r = await p.cli(['submit', file, ...extra], env);
  expect(r.stderr).not.toMatch(/error/);
  expect(r.code).toBe(0);
  expect(r.stdout).toMatch(/^\d+\n$/);
  return r.stdout.trim();
}

/** Polls `sifpack status ID --json` until the job finished (or `until` says stop). */
export async function waitFor(p: Project, id: string, until: (s: JobStatus) => boolean = (s) => s.phase === 'done' || s.phase === 'failed', seconds = 90): Promise<JobStatus> {
  const end = Date.now() + seconds * 1000;
  for (;;) {
    const r = await p.cli(['status', id, '--json']);
    expect(r.code).toBe(0);
    const [st] = JSON.parse(r.stdout) as JobStatus[];
    if (until(st!)) return st!;
    if (Date.now() > end) throw new Error(`job ${id} still ${st!.state} (${st!.explanation}) after ${seconds}s`);
    await new Promise((res) => setTimeout(res, 500));
  }
}
