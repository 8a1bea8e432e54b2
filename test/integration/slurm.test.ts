/**
 * submit / status / logs against a real one-node Slurm (slurmctld + slurmd
 * from Debian's slurm-wlm, started by test/services/start.sh). The jobs run
 * scripts rendered by `sifpack sbatch` through real srun and the real
 * Apptainer 1.4.5 (as root on the node), in a SIF sifpack converted from the
 * Debian+python3 test image.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { Ledger } from '../../src/runtime/ledger.js';
import { DataType } from '../../src/sif/layout.js';
import { SifWriter } from '../../src/sif/writer.js';
import { HOSTILE } from '../fixtures/hostile.js';
import { type Project, makeProject, submit, waitFor, writeJob } from './slurm-harness.js';

let p: Project;
beforeAll(async () => {
  p = await makeProject({ real: true });
}, 400_000);
afterAll(async () => {
  await fs.rm(p.dir, { recursive: true, force: true });
});

// Each job starts a real apptainer: seconds on a quiet machine, tens of them on a loaded one.
describe('real Slurm: submit, status, logs', { timeout: 120_000 }, () => {
  it('a plain job: its Python output lands in the expected file; status says completed; the ledger has the run', async () => {
    await writeJob(p, 'plain.sbatch', []);
    const id = await submit(p, 'plain.sbatch');
    const st = await waitFor(p, id);
    expect(st).toMatchObject({ state: 'COMPLETED', explanation: 'completed (exit code 0)' });
    expect(await fs.readFile(path.join(p.dir, `dump_${id}.out`), 'utf8')).toContain('hello from the job');
    const logs = await p.cli(['logs', id]);
    expect(logs.code).toBe(0);
    expect(logs.stdout).toContain('hello from the job');
    const runs = await new Ledger(p.dir).runs();
    const run = runs.find((r) => r.jobId === id)!;
    expect(run).toMatchObject({ sbatch: path.join(p.dir, 'plain.sbatch'), image: path.join(p.dir, 'analysis.sif'), cluster: null, output: '%x_%j.out' });
    expect(run.sbatchSha256).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(run.imageSha256).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(run.final).toMatchObject({ state: 'COMPLETED' });
  });

  it('the ledger records the env hash from the image labels (a real SIF) and the image sha256', async () => {
    await fs.mkdir(path.join(p.dir, 'root/etc'), { recursive: true });
    await fs.writeFile(path.join(p.dir, 'root/etc/os'), 'x\n');
    execFileSync('mksquashfs', [path.join(p.dir, 'root'), path.join(p.dir, 'root.sqfs'), '-noappend', '-quiet']);
    const w = await SifWriter.create(path.join(p.dir, 'labelled.sif'));
    w.addObject(DataType.GenericJSON, Buffer.from(JSON.stringify({ data: { attributes: { labels: { 'sifpack.env-hash': 'sha256:feedface' } } }, type: 'container' })), { name: 'inspect-metadata.json' });
    await w.writePartition(createReadStream(path.join(p.dir, 'root.sqfs')), { arch: 'amd64' });
    await w.finish();
    const r = await p.cli(['sbatch', 'dump.py', '--image', 'labelled.sif', '--script-out', 'labelled.sbatch']);
    expect(r.code).toBe(0);
    const id = await submit(p, 'labelled.sbatch');
    const run = (await new Ledger(p.dir).runs()).find((x) => x.jobId === id)!;
    expect(run.envHash).toBe('sha256:feedface');
    const { createHash } = await import('node:crypto');
    expect(run.imageSha256).toBe(`sha256:${createHash('sha256').update(await fs.readFile(path.join(p.dir, 'labelled.sif'))).digest('hex')}`);
    await waitFor(p, id);
  });

  it('--json prints { jobId, cluster }', async () => {
    await writeJob(p, 'json.sbatch', []);
    const r = await p.cli(['submit', 'json.sbatch', '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ jobId: expect.stringMatching(/^\d+$/), cluster: null });
    await waitFor(p, JSON.parse(r.stdout).jobId);
  });

  it('an array job: each task sees its own SLURM_ARRAY_TASK_ID; status summarises; logs --task', async () => {
    await writeJob(p, 'array.sbatch', ['--array', '0-3']);
    const id = await submit(p, 'array.sbatch');
    const st = await waitFor(p, id);
    expect(st.explanation).toBe('4 completed');
    for (const t of [0, 1, 2, 3]) {
      const dump = JSON.parse(await fs.readFile(path.join(p.dir, `dump_${t}.json`), 'utf8')) as { task: string };
      expect(dump.task).toBe(String(t));
    }
    const logs = await p.cli(['logs', id, '--task', '2']);
    expect(logs.stdout).toContain('hello from the job');
    const noTask = await p.cli(['logs', id]);
    expect(noTask.code).toBe(2);
    expect(noTask.stderr).toContain(`job ${id} is an array: say which task with --task N`);
  });

  it('an array where some tasks fail: "N completed, M failed: tasks ..."', async () => {
    await fs.writeFile(path.join(p.dir, 'fail-some.py'), 'import os, sys\nsys.exit(1 if os.environ["SLURM_ARRAY_TASK_ID"] in ("1", "3") else 0)\n');
    const r = await p.cli(['sbatch', 'fail-some.py', '--image', 'analysis.sif', '--array', '0-4', '--script-out', 'fail-some.sbatch']);
    expect(r.code).toBe(0);
    const id = await submit(p, 'fail-some.sbatch');
    const st = await waitFor(p, id);
    expect(st.explanation).toBe('3 completed, 2 failed: tasks 1, 3');
  });

  it('a script that exits 3: status says so', async () => {
    await writeJob(p, 'exit3.sbatch', ['--env', 'EXIT_WITH=3']);
    const id = await submit(p, 'exit3.sbatch');
    const st = await waitFor(p, id);
    expect(st).toMatchObject({ state: 'FAILED', explanation: 'exited with code 3' });
    const text = await p.cli(['status', id]);
    expect(text.stdout).toMatch(new RegExp(`^${id}\\s+dump\\s+FAILED\\s+exited with code 3$`, 'm'));
  });

  // The first job sleeps long enough that the second is still waiting when it is first
  // polled, even on a loaded machine (each CLI call and apptainer start takes seconds there).
  it('afterok: the second job starts only after the first succeeded', { timeout: 90_000 }, async () => {
    await writeJob(p, 'first.sbatch', ['--env', 'SLEEP=20', '--job-name', 'first']);
    await writeJob(p, 'second.sbatch', ['--job-name', 'second']);
    const a = await submit(p, 'first.sbatch');
    const b = await submit(p, 'second.sbatch', ['--dependency', `afterok:${a}`]);
    const waiting = await waitFor(p, b, (s) => s.phase === 'waiting' || s.phase === 'done', 20);
    expect(waiting.explanation).toBe('waiting: Dependency');
    await waitFor(p, b);
    const endA = (await fs.stat(path.join(p.dir, `first_${a}.out`))).mtimeMs;
    const outB = await fs.readFile(path.join(p.dir, `second_${b}.out`), 'utf8');
    expect(outB).toContain('hello from the job');
    expect((await fs.stat(path.join(p.dir, `second_${b}.out`))).mtimeMs).toBeGreaterThanOrEqual(endA);
  });

  it('afterok on a failed job: the second never runs, and status says why', async () => {
    await writeJob(p, 'bad.sbatch', ['--env', 'EXIT_WITH=1', '--job-name', 'bad']);
    await writeJob(p, 'never.sbatch', ['--job-name', 'never']);
    const a = await submit(p, 'bad.sbatch');
    const b = await submit(p, 'never.sbatch', ['--dependency', `afterok:${a}`]);
    await waitFor(p, a);
    const st = await waitFor(p, b, (s) => s.explanation.includes('DependencyNeverSatisfied'), 30);
    expect(st.explanation).toMatch(/will never start/);
    await expect(fs.stat(path.join(p.dir, `never_${b}.out`))).rejects.toThrow();
  });

  it('arguments with spaces, quotes and $ arrive unchanged in sys.argv', async () => {
    const r = await p.cli(['sbatch', 'dump.py', '--image', 'analysis.sif', '--script-out', 'hostile.sbatch', '--', ...HOSTILE]);
    expect(r.code).toBe(0);
    const id = await submit(p, 'hostile.sbatch');
    await waitFor(p, id);
    const dump = JSON.parse(await fs.readFile(path.join(p.dir, 'dump.json'), 'utf8')) as { argv: string[]; job: string };
    expect(dump.argv).toEqual(HOSTILE);
    expect(dump.job).toBe(id);
  });

  it('the job really ran in the image, through the real apptainer (APPTAINER_CONTAINER names the SIF)', async () => {
    await writeJob(p, 'inside.sbatch', []);
    const id = await submit(p, 'inside.sbatch');
    expect(await waitFor(p, id)).toMatchObject({ state: 'COMPLETED' });
    const dump = JSON.parse(await fs.readFile(path.join(p.dir, 'dump.json'), 'utf8')) as { container: string };
    expect(dump.container).toBe(path.join(p.dir, 'analysis.sif'));
  });

  it('--env values with quotes, $, backticks and backslashes arrive unchanged (apptainer evaluates APPTAINERENV_ values)', async () => {
    const values = HOSTILE.filter((v) => !v.includes('\n'));
    const flags = values.flatMap((v, i) => ['--env', `SIFPACK_T_${i}=${v}`]);
    await writeJob(p, 'envs.sbatch', flags);
    const id = await submit(p, 'envs.sbatch');
    expect(await waitFor(p, id)).toMatchObject({ state: 'COMPLETED' });
    const dump = JSON.parse(await fs.readFile(path.join(p.dir, 'dump.json'), 'utf8')) as { env: Record<string, string> };
    expect(dump.env).toEqual(Object.fromEntries(values.map((v, i) => [`SIFPACK_T_${i}`, v])));
  });

  it('a job name with $ and backticks reaches the container as Slurm has it (SLURM_JOB_NAME)', async () => {
    await fs.writeFile(path.join(p.dir, 'name.py'), 'import os\nprint("name=[" + os.environ["SLURM_JOB_NAME"] + "]")\n');
    const r = await p.cli(['sbatch', 'name.py', '--image', 'analysis.sif', '--job-name', 'a$HOME`id`\\b', '--script-out', 'name.sbatch']);
    expect(r.code).toBe(0);
    const id = await submit(p, 'name.sbatch');
    await waitFor(p, id);
    const out = (await fs.readdir(p.dir)).find((f) => f.endsWith(`_${id}.out`))!;
    expect(await fs.readFile(path.join(p.dir, out), 'utf8')).toContain('name=[a$HOME`id`\\b]');
  });

  it('--bind: a host directory is readable at the path asked for', async () => {
    await fs.mkdir(path.join(p.dir, 'data in'));
    await fs.writeFile(path.join(p.dir, 'data in', 'x.txt'), 'bound\n');
    await fs.writeFile(path.join(p.dir, 'bind.py'), 'print("read:", open("/data/x.txt").read().strip())\n');
    const r = await p.cli(['sbatch', 'bind.py', '--image', 'analysis.sif', '--bind', `${path.join(p.dir, 'data in')}:/data:ro`, '--script-out', 'bind.sbatch', '--job-name', 'bind']);
    expect(r.code).toBe(0);
    const id = await submit(p, 'bind.sbatch');
    expect(await waitFor(p, id)).toMatchObject({ state: 'COMPLETED' });
    expect(await fs.readFile(path.join(p.dir, `bind_${id}.out`), 'utf8')).toContain('read: bound');
  });

  it('logs -f follows the output until the job ends; status --watch returns once it finished', async () => {
    await writeJob(p, 'follow.sbatch', ['--env', 'SLEEP=3', '--job-name', 'follow']);
    const id = await submit(p, 'follow.sbatch');
    const [logs, watch] = await Promise.all([p.cli(['logs', id, '-f', '--interval', '0.5']), p.cli(['status', id, '--watch', '--interval', '1'])]);
    expect(logs.code).toBe(0);
    expect(logs.stdout).toContain('hello from the job');
    expect(watch.code).toBe(0);
    expect(watch.stdout.trim().split('\n').at(-1)).toMatch(new RegExp(`^${id}\\s+follow\\s+COMPLETED\\s+completed \\(exit code 0\\)$`));
  });

  it("status without ids: the ledger's unfinished runs first, then those finished in the last day; finals it learns are recorded", async () => {
    const ledger = new Ledger(p.dir);
    const open = (await ledger.runs()).filter((r) => !r.final).map((r) => r.jobId);
    const r = await p.cli(['status', '--json']);
    expect(r.code).toBe(0);
    const listed = JSON.parse(r.stdout) as { jobId: string; phase: string }[];
    expect(listed.length).toBeGreaterThan(0);
    expect(listed.slice(0, open.length).map((s) => s.jobId)).toEqual(open);
    // What status learned is recorded: every listed job that ended now has its final line.
    const ended = listed.filter((s) => s.phase === 'done' || s.phase === 'failed').map((s) => s.jobId);
    const finals = new Set((await ledger.runs()).filter((x) => x.final).map((x) => x.jobId));
    for (const id of ended) expect(finals.has(id), `job ${id} ended but has no final line`).toBe(true);
  });
});

describe('real Slurm: bad input and faults', () => {
  it('an unknown job id: exit 2', async () => {
    const r = await p.cli(['status', '999999']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('job 999999 is not known to Slurm');
  });

  it('a malformed --dependency: exit 2, nothing submitted', async () => {
    await writeJob(p, 'dep.sbatch', []);
    const before = (await new Ledger(p.dir).entries()).length;
    const r = await p.cli(['submit', 'dep.sbatch', '--dependency', 'after-ok:12']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--dependency "after-ok:12" is not valid');
    expect((await new Ledger(p.dir).entries()).length).toBe(before);
  });

  it('sbatch rejecting the script (a partition that does not exist): its message verbatim, exit 1, ledger unchanged', async () => {
    const r0 = await p.cli(['sbatch', 'dump.py', '--image', 'analysis.sif', '--partition', 'nosuchpartition', '--script-out', 'badpart.sbatch']);
    expect(r0.code).toBe(0);
    const before = (await new Ledger(p.dir).entries()).length;
    const r = await p.cli(['submit', 'badpart.sbatch']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('sbatch: error: invalid partition specified: nosuchpartition');
    expect((await new Ledger(p.dir).entries()).length).toBe(before);
  });

  it('the controller down: Slurm\'s error shown, exit 1, ledger unchanged', async () => {
    const conf = await fs.readFile(p.env.SLURM_CONF!, 'utf8');
    const dead = path.join(p.dir, 'dead-slurm.conf');
    await fs.writeFile(dead, conf.replace(/^SlurmctldPort=\d+$/m, 'SlurmctldPort=9'));
    await fs.writeFile(path.join(p.dir, 'dead.sbatch'), '#!/bin/bash\necho hi\n');
    const before = (await new Ledger(p.dir).entries()).length;
    const r = await p.cli(['submit', 'dead.sbatch'], { SLURM_CONF: dead });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/cannot submit .*dead\.sbatch: the Slurm controller .* did not answer/);
    expect((await new Ledger(p.dir).entries()).length).toBe(before);
  }, 60_000);

  it('sbatch not on PATH: the login-node hint, exit 1', async () => {
    await fs.writeFile(path.join(p.dir, 'x.sbatch'), '#!/bin/bash\necho hi\n');
    const r = await p.cli(['submit', 'x.sbatch'], { PATH: '/usr/local/bin' });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('sbatch not found: run this on a login node, or load Slurm (`module load slurm`)');
  });

  it('--sbatch-path runs a site wrapper instead', async () => {
    const wrapper = path.join(p.dir, 'site-sbatch');
    await fs.writeFile(wrapper, `#!/bin/bash\necho "$@" > ${path.join(p.dir, 'wrapper.args')}\nexec sbatch "$@"\n`, { mode: 0o755 });
    await writeJob(p, 'wrapped.sbatch', []);
    const id = await submit(p, 'wrapped.sbatch', ['--sbatch-path', wrapper]);
    expect(await fs.readFile(path.join(p.dir, 'wrapper.args'), 'utf8')).toBe(`--parsable ${path.join(p.dir, 'wrapped.sbatch')}\n`);
    await waitFor(p, id);
  });
});
