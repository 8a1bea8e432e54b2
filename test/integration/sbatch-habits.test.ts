/**
 * Habits people bring from Slurm, checked against the real sbatch 22.05 of
 * the test cluster (test/services): short flags mean what sbatch's mean,
 * --time and --mem accept and refuse what sbatch accepts and refuses, and an
 * output directory that does not exist (which makes Slurm fail the job with
 * no output at all) is created by `sifpack submit`.
 */
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildProgram } from '../../src/cli.js';
import { checkMem, checkTime } from '../../src/model/slurm-job.js';
import { service } from '../helpers.js';
import { type Project, makeProject, waitFor } from './slurm-harness.js';

const run = promisify(execFile);

let p: Project;
beforeAll(async () => {
  p = await makeProject();
  await fs.writeFile(path.join(p.dir, 'probe.sh'), '#!/bin/bash\ntrue\n');
});
afterAll(async () => {
  await fs.rm(p.dir, { recursive: true, force: true });
});

/** Runs the real sbatch; resolves with its stderr whatever the exit code. */
async function sbatch(args: string[]): Promise<{ code: number; stderr: string; stdout: string }> {
  try {
    const r = await run('sbatch', args, { cwd: p.dir, env: { ...process.env, SLURM_CONF: service('SLURM_CONF') } });
    return { code: 0, stderr: r.stderr, stdout: r.stdout };
  } catch (err) {
    const e = err as { code: number; stderr: string; stdout: string };
    return { code: e.code, stderr: e.stderr, stdout: e.stdout };
  }
}

/** Does sbatch's own parser take `--NAME=value`? (--test-only: nothing is queued.) */
async function sbatchParses(name: 'time' | 'mem', value: string): Promise<boolean> {
  const r = await sbatch(['--test-only', '-p', service('SIFPACK_TEST_PARTITION'), `--${name}=${value}`, 'probe.sh']);
  if (new RegExp(`Invalid --${name} specification`).test(r.stderr)) return false;
  // Parsed; a size too big for the one test node is refused later, for another reason.
  expect(r.stderr).toMatch(/to start at|Requested node configuration is not available/);
  return true;
}

const ours = (check: (v: string, w: string) => string, v: string) => {
  try {
    check(v, '--x');
    return true;
  } catch {
    return false;
  }
};

describe('sifpack sbatch short flags mean what they mean in Slurm\'s sbatch', () => {
  it('every short flag sifpack sbatch has is the same option in `sbatch --help`, and Slurm\'s usual ones are there', async () => {
    const help = (await sbatch(['--help'])).stdout;
    // "  -t, --time=minutes   time limit" and "  -B  --extra-node-info=S[:C[:T]]"
    const slurm = new Map([...help.matchAll(/^\s+-([A-Za-z]),?\s+--([a-z-]+)/gm)].map((m) => [m[1]!, m[2]!]));
    expect(slurm.get('o')).toBe('output');
    expect(slurm.size).toBeGreaterThan(30);
    const cmd = buildProgram({ stdout: process.stdout, stderr: process.stderr, env: {}, cwd: p.dir, runner: undefined as never }).commands.find((c) => c.name() === 'sbatch')!;
    const mine = cmd.options.filter((o) => o.short).map((o) => [o.short!.slice(1), o.long!.slice(2)] as const);
    for (const [short, long] of mine) {
      if (slurm.has(short)) expect(`-${short} --${long}`).toBe(`-${short} --${slurm.get(short)}`);
    }
    // Where sifpack has a long option sbatch gives a short flag, sifpack gives the same one.
    // Except --gpus: sbatch's -G counts GPUs for the whole job, ours per node (--gres=gpu:N).
    const longs = new Map(cmd.options.map((o) => [o.long!.slice(2), o.short?.slice(1)]));
    for (const [short, long] of slurm) {
      if (longs.has(long) && long !== 'gpus') expect(`--${long} -${longs.get(long)}`).toBe(`--${long} -${short}`);
    }
    for (const f of ['o', 'e', 'J', 't', 'c', 'p', 'A', 'a', 'D', 'N', 'n', 'q', 'C']) expect(mine.map(([s]) => s)).toContain(f);
    for (const l of ['mail-type', 'mail-user', 'exclusive', 'constraint', 'reservation']) expect(longs.has(l)).toBe(true);
  });
});

describe('--time and --mem: accepted and refused exactly as sbatch 22.05 does', () => {
  const TIMES = ['0', '90', '1:30', '01:30:00', '2-0', '2-00', '2-00:30', '2-00:30:00', '1:999', '1-999', '00:60', '25:00:00', 'INFINITE', 'UNLIMITED', 'infinite', 'Unlimited', '-1', '2-',
    '1h', '1:2:3:4', '1-2-3', '1.5', '1:', ':1', '-', '1--1', 'inf', ' 10', '10 ', '+10', '0x10', '1:1-1', '1-1:1:1:1', 'abc'];
  const MEMS = ['4GB', '4096', '4G', '0', '4g', '4gb', '4K', '4KB', '4M', '4MB', '4Mb', '500M', '4', '0G', '00', '+4G', '-0', '1T', '4tb',
    '4.5G', '4GiB', 'G', '-1', '1P', '4b', '4 G', '0x10', '4G ', 'lots'];

  it.each(TIMES)('--time %j', async (t) => {
    expect(ours(checkTime, t)).toBe(await sbatchParses('time', t));
  });

  it.each(MEMS)('--mem %j (and what sifpack writes for it parses too)', async (m) => {
    const accepted = await sbatchParses('mem', m);
    expect(ours(checkMem, m)).toBe(accepted);
    if (accepted) expect(await sbatchParses('mem', checkMem(m, '--mem'))).toBe(true);
  });
});

describe('an --output directory that does not exist', () => {
  it('plain sbatch fails such a job without output; sifpack submit creates the directory and the job writes there', async () => {
    // The control: what happens without sifpack.
    await fs.writeFile(path.join(p.dir, 'bare.sh'), '#!/bin/bash\n#SBATCH --output=nodir/%j.out\necho hi\n');
    const bare = await sbatch(['--parsable', '-p', service('SIFPACK_TEST_PARTITION'), 'bare.sh']);
    expect(bare.code).toBe(0);
    const bareState = await waitFor(p, bare.stdout.trim().split(';')[0]!);
    expect(bareState.state).toBe('FAILED');
    await expect(fs.stat(path.join(p.dir, 'nodir'))).rejects.toThrow(/ENOENT/);

    const r = await p.cli(['sbatch', 'dump.py', '--image', 'analysis.sif', '-p', service('SIFPACK_TEST_PARTITION'), '-o', 'logs/%x_%j.out', '--script-out', 'logs.sbatch']);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('--output logs/%x_%j.out: logs/ does not exist; `sifpack submit` creates it');
    const sub = await p.cli(['submit', 'logs.sbatch']);
    expect(sub.code).toBe(0);
    expect(sub.stderr).toContain("created logs/ for the job's --output logs/%x_%j.out");
    const id = sub.stdout.trim();
    expect(await waitFor(p, id)).toMatchObject({ state: 'COMPLETED' });
    expect(await fs.readFile(path.join(p.dir, 'logs', `dump_${id}.out`), 'utf8')).toContain('hello from the job');
  }, 240_000);

});
