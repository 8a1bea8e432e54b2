import { describe, expect, it } from 'vitest';
import { type JobInfo, explainState, isFinished, summariseArray } from '../../src/model/job-state.js';
import { parseParsable, parseSacct, parseScontrolJobs, parseScontrolLine } from '../../src/runtime/slurm-parse.js';

const job = (state: string, extra: Partial<JobInfo> = {}): JobInfo => ({ jobId: '1', state, ...extra });

describe('explainState: plain words for Slurm states', () => {
  it.each([
    [job('COMPLETED', { exitCode: '0:0' }), 'completed (exit code 0)'],
    [job('FAILED', { exitCode: '3:0' }), 'exited with code 3'],
    [job('FAILED', { exitCode: '0:9' }), 'killed by signal 9'],
    [job('OUT_OF_MEMORY', { exitCode: '0:125' }), 'ran out of memory (raise --mem)'],
    [job('TIMEOUT', { timeLimit: '00:01:00' }), 'hit its 00:01:00 time limit (raise --time)'],
    [job('CANCELLED by 0'), 'cancelled (by 0)'],
    [job('CANCELLED'), 'cancelled'],
    [job('PENDING', { reason: 'Resources' }), 'waiting: Resources'],
    [job('PENDING', { reason: 'Dependency' }), 'waiting: Dependency'],
    [job('PENDING', { reason: 'Priority' }), 'waiting: Priority'],
    [job('RUNNING', { runTime: '00:00:07' }), 'running for 00:00:07'],
  ])('%j → %s', (info, words) => {
    expect(explainState(info)).toBe(words);
  });

  it('a job whose afterok dependency failed says it will never start', () => {
    expect(explainState(job('PENDING', { reason: 'DependencyNeverSatisfied' }))).toMatch(/will never start/);
  });

  it('knows which states are final', () => {
    expect(isFinished(job('COMPLETED'))).toBe(true);
    expect(isFinished(job('TIMEOUT'))).toBe(true);
    expect(isFinished(job('PENDING'))).toBe(false);
    expect(isFinished(job('RUNNING'))).toBe(false);
  });
});

describe('summariseArray', () => {
  it('counts and names the failed tasks in numeric order', () => {
    const tasks = Array.from({ length: 12 }, (_, i) => job(i === 3 || i === 7 ? 'FAILED' : 'COMPLETED', { arrayTaskId: String(i), exitCode: i === 3 || i === 7 ? '1:0' : '0:0' }));
    expect(summariseArray(tasks)).toBe('10 completed, 2 failed: tasks 3, 7');
  });
  it('puts running and waiting first', () => {
    expect(summariseArray([job('RUNNING', { arrayTaskId: '0' }), job('PENDING', { arrayTaskId: '1' }), job('COMPLETED', { arrayTaskId: '2' })])).toBe('1 running, 1 waiting, 1 completed');
  });
});

describe('Slurm output readers', () => {
  it('scontrol -o: values with spaces stay whole', () => {
    const r = parseScontrolLine('JobId=12 JobName=my job JobState=FAILED Reason=NonZeroExitCode ExitCode=3:0 Command=/home/u/my dir/run.sbatch WorkDir=/home/u/my dir StdOut=/home/u/my dir/x_12.out Power=');
    expect(r).toMatchObject({ JobId: '12', JobName: 'my job', JobState: 'FAILED', ExitCode: '3:0', Command: '/home/u/my dir/run.sbatch', WorkDir: '/home/u/my dir', StdOut: '/home/u/my dir/x_12.out', Power: '' });
  });

  it('scontrol -o: array tasks, one line each, nulls dropped', () => {
    const jobs = parseScontrolJobs(['JobId=21 ArrayJobId=20 ArrayTaskId=1 JobName=sweep JobState=COMPLETED Reason=None Dependency=(null) ExitCode=0:0', 'JobId=20 ArrayJobId=20 ArrayTaskId=0 JobName=sweep JobState=FAILED Reason=NonZeroExitCode Dependency=(null) ExitCode=1:0', ''].join('\n'));
    expect(jobs).toEqual([
      { jobId: '21', arrayJobId: '20', arrayTaskId: '1', name: 'sweep', state: 'COMPLETED', reason: 'None', exitCode: '0:0' },
      { jobId: '20', arrayJobId: '20', arrayTaskId: '0', name: 'sweep', state: 'FAILED', reason: 'NonZeroExitCode', exitCode: '1:0' },
    ]);
  });

  it('sbatch --parsable: id, or id;cluster', () => {
    expect(parseParsable('42\n')).toEqual({ jobId: '42' });
    expect(parseParsable('42;lumi\n')).toEqual({ jobId: '42', cluster: 'lumi' });
    expect(parseParsable('Submitted batch job 42\n')).toBeUndefined();
  });

  it('sacct -P: steps left out, array tasks split', () => {
    const jobs = parseSacct(['30|train|TIMEOUT|0:0|00:01:00|00:01:12|None', '30.batch|batch|CANCELLED|0:15|||', '31_2|sweep|COMPLETED|0:0|00:10:00|00:00:03|None', ''].join('\n'));
    expect(jobs).toEqual([
      { jobId: '30', name: 'train', state: 'TIMEOUT', exitCode: '0:0', timeLimit: '00:01:00', runTime: '00:01:12' },
      { jobId: '31_2', arrayJobId: '31', arrayTaskId: '2', name: 'sweep', state: 'COMPLETED', exitCode: '0:0', timeLimit: '00:10:00', runTime: '00:00:03' },
    ]);
  });
});

describe('readScriptFacts', async () => {
  const { readScriptFacts } = await import('../../src/model/sbatch-script.js');
  const { renderSbatch } = await import('../../src/render/sbatch.js');
  const { buildJob } = await import('../../src/model/slurm-job.js');
  const { resolveSettings } = await import('../../src/config/load.js');
  it('reads back what the renderer wrote, backslashes and quotes included', () => {
    const { settings, sources } = resolveSettings({ flags: { image: '/imgs/my image.sif', jobName: "a 'q' \\ b", output: 'out dir/%x_%j.out' }, cwd: '/w' });
    const text = renderSbatch(buildJob({ settings, sources, script: 'x.py', args: [], cwd: '/w' }), { version: 't' }).text;
    const facts = readScriptFacts(text);
    expect(facts.directives['job-name']).toBe("a 'q' \\ b");
    expect(facts.directives.output).toBe('out dir/%x_%j.out');
    expect(facts.image).toBe('/imgs/my image.sif');
  });
  it('reads short options and a hand-written script', () => {
    const facts = readScriptFacts('#!/bin/bash\n#SBATCH -J myjob\n#SBATCH -o logs/%j.txt\nsingularity exec /data/img.sif python run.py\n');
    expect(facts).toEqual({ directives: { 'job-name': 'myjob', output: 'logs/%j.txt' }, image: '/data/img.sif' });
  });
});
