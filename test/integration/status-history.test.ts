/**
 * Status history and control against the real one-node Slurm: a failed job
 * stays visible after the first `status`, --all/--since read the ledger,
 * a job Slurm has dropped still shows its last known state, `cancel` runs
 * the real scancel and records it, and `status --watch` exits 1 when a
 * watched job did not complete.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobStatus } from '../../src/commands/status.js';
import { Ledger } from '../../src/runtime/ledger.js';
import { type Project, makeProject, submit, waitFor, writeJob } from './slurm-harness.js';

let p: Project;
beforeAll(async () => {
  p = await makeProject();
  await writeJob(p, 'job.sbatch', []);
  await writeJob(p, 'fail.sbatch', ['--env', 'EXIT_WITH=3']);
  await writeJob(p, 'slow.sbatch', ['--env', 'SLEEP=120']);
});
afterAll(async () => {
  await p.cli(['cancel', '--all']);
  await fs.rm(p.dir, { recursive: true, force: true });
});

const statusJson = async (args: string[]) => {
  const r = await p.cli(['status', ...args, '--json']);
  expect(r.stderr).not.toContain('internal error');
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout) as JobStatus[];
};

describe('status history and control on real Slurm', () => {
  it('a failed job is still shown by a plain `status` after its final state was recorded, and --watch exits 1 for it', async () => {
    const id = await submit(p, 'fail.sbatch');
    const st = await waitFor(p, id);
    expect(st.state).toBe('FAILED');
    for (let i = 0; i < 2; i++) {
      const r = await p.cli(['status']);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^${id}\\s.*FAILED.*exited with code 3`, 'm'));
    }
    const watch = await p.cli(['status', id, '--watch', '--interval', '1']);
    expect(watch.code).toBe(1);
    expect(watch.stdout).toContain('FAILED');
    expect(watch.stderr).toMatch(new RegExp(`sifpack: error: 1 of 1 watched job\\(s\\) did not complete: ${id} FAILED`));
  }, 120_000);

  it('--watch exits 0 when every watched job completed', async () => {
    const id = await submit(p, 'job.sbatch');
    const r = await p.cli(['status', id, '--watch', '--interval', '1']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('COMPLETED');
  }, 120_000);

  it('--all lists every ledger job, --since filters by submission time, a bad --since is exit 2', async () => {
    const runs = await new Ledger(p.dir).runs();
    expect(runs.length).toBeGreaterThanOrEqual(2);
    expect((await statusJson(['--all'])).map((s) => s.jobId).sort()).toEqual(runs.map((r) => r.jobId).sort());
    expect((await statusJson(['--since', '1h'])).length).toBe(runs.length);
    expect((await statusJson(['--since', '2000-01-01'])).length).toBe(runs.length);
    const future = new Date(Date.now() + 86400e3).toISOString().slice(0, 10);
    expect(await statusJson(['--since', future])).toEqual([]);
    const bad = await p.cli(['status', '--since', 'yesterdayish']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--since "yesterdayish": not a duration or a date');
  }, 60_000);

  it('a job Slurm no longer knows shows the last state the ledger kept', async () => {
    // An id far beyond what this cluster has handed out: Slurm has no record of it.
    const ghost = '987654';
    const ledger = new Ledger(p.dir);
    await ledger.append({ type: 'submit', jobId: ghost, cluster: null, sbatch: 'x', sbatchSha256: 'sha256:0', image: null, imageSha256: null, envHash: null, output: null, workDir: p.dir, submittedAt: new Date().toISOString() });
    await ledger.append({ type: 'final', jobId: ghost, state: 'OUT_OF_MEMORY', explanation: 'ran out of memory', at: new Date().toISOString() });
    const [st] = await statusJson([ghost]);
    expect(st).toMatchObject({ jobId: ghost, state: 'OUT_OF_MEMORY', source: 'ledger' });
    expect(st!.explanation).toContain('last known state');
    expect((await statusJson([])).map((s) => s.jobId)).toContain(ghost);
  }, 60_000);

  it('cancel JOBID runs scancel and records it; the job ends CANCELLED; cancel --all takes the rest', async () => {
    const a = await submit(p, 'slow.sbatch');
    const b = await submit(p, 'slow.sbatch');
    const r = await p.cli(['cancel', a]);
    expect(r.stderr).not.toMatch(/error/);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(a);
    expect((await new Ledger(p.dir).runs()).find((x) => x.jobId === a)?.cancelledAt).toBeTruthy();
    expect((await waitFor(p, a)).state).toBe('CANCELLED');
    const all = await p.cli(['cancel', '--all', '--json']);
    expect(all.code).toBe(0);
    expect((JSON.parse(all.stdout) as { cancelled: string[] }).cancelled).toContain(b);
    expect((await waitFor(p, b)).state).toBe('CANCELLED');
    const none = await p.cli(['cancel']);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('which jobs?');
  }, 180_000);
});
