/** The readers and status folding against output captured from a real slurmctld 22.05 (test/fixtures/slurm/). */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { toStatus } from '../../src/commands/status.js';
import { explainState } from '../../src/model/job-state.js';
import { parseScontrolJobs } from '../../src/runtime/slurm-parse.js';
import { ROOT } from '../helpers.js';

const captured = (f: string) => fs.readFile(path.join(ROOT, 'test/fixtures/slurm', f), 'utf8');

describe('captured slurmctld 22.05 output', () => {
  it('a job that exited 3', async () => {
    const [job] = parseScontrolJobs(await captured('scontrol-failed-exit3.txt'));
    expect(job).toMatchObject({ jobId: '2', name: 'failer', state: 'FAILED', exitCode: '3:0', stdout: '/tmp/sl/failer_2.out', workDir: '/tmp/sl' });
    expect(explainState(job!)).toBe('exited with code 3');
  });

  it('an array of 4 tasks where task 2 failed', async () => {
    const jobs = parseScontrolJobs(await captured('scontrol-array-one-failed.txt'));
    expect(jobs.map((j) => [j.arrayTaskId, j.state])).toEqual([['3', 'COMPLETED'], ['2', 'FAILED'], ['1', 'COMPLETED'], ['0', 'COMPLETED']]);
    const st = toStatus('3', jobs);
    expect(st.explanation).toBe('3 completed, 1 failed: task 2');
    expect(st.phase).toBe('failed');
    expect(st.tasks!.find((t) => t.taskId === '2')!.explanation).toBe('exited with code 1');
  });

  it('a job whose afterok dependency failed', async () => {
    const [job] = parseScontrolJobs(await captured('scontrol-dependency-never-satisfied.txt'));
    expect(job).toMatchObject({ state: 'PENDING', reason: 'DependencyNeverSatisfied', dependency: 'afterok:2(failed)' });
    expect(explainState(job!)).toMatch(/^waiting: DependencyNeverSatisfied \(an afterok job it depends on failed; this job will never start/);
  });

  it('what scontrol and sacct say when they cannot help', async () => {
    expect(await captured('scontrol-invalid-id.txt')).toMatch(/Invalid job id specified/);
    expect(await captured('sacct-disabled.txt')).toMatch(/accounting storage is disabled/);
  });
});
