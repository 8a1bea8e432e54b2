/**
 * `--image oras://HOST/REPO:TAG` for jobs, on the real one-node Slurm and the
 * real apptainer: the image is pulled once on the login node (here) into
 * image-dir, the job script runs that local file, and the ledger records the
 * reference and digest. A private docker-registry (registry-harness.ts) lets
 * the test count, from its access log, how often the SIF's blob was fetched:
 * a 4-task array is one fetch, a second use of the same digest none.
 */
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { promises as fs, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ledger } from '../../src/runtime/ledger.js';
import { service, tempDir } from '../helpers.js';
import { PrivateRegistry } from './registry-harness.js';
import { type Project, makeProject, submit, waitFor } from './slurm-harness.js';

let p: Project;
let reg: PrivateRegistry;
let regDir: string;
let ref: string;
let digest: string;
const sha256 = (file: string) => `sha256:${createHash('sha256').update(readFileSync(file)).digest('hex')}`;
const exists = (f: string) => fs.stat(f).then(() => true, () => false);

/** How many times the registry answered a GET for the SIF's blob (its access log). */
async function blobGets(): Promise<number> {
  const log = await fs.readFile(path.join(regDir, 'registry.log'), 'utf8');
  return log.split('\n').filter((l) => l.includes(`"GET /v2/issue13-jobs/analysis/blobs/${digest}`)).length;
}

beforeAll(async () => {
  p = await makeProject({ real: true });
  regDir = await tempDir('sifpack-job-reg-');
  reg = new PrivateRegistry(regDir);
  await reg.start();
  ref = `oras://${reg.host}/issue13-jobs/analysis:1`;
  digest = sha256(path.join(p.dir, 'analysis.sif'));
  const r = await p.cli(['push', 'analysis.sif', ref, '-q']);
  expect(r.code, r.stderr).toBe(0);
}, 400_000);
afterAll(async () => {
  await reg?.stop();
  await fs.rm(regDir, { recursive: true, force: true });
  await fs.rm(p.dir, { recursive: true, force: true });
});

describe('--image oras:// on real Slurm', { timeout: 240_000 }, () => {
  let pulledFile: string;

  it('sbatch pulls once into image-dir; a 4-task array runs the local file, one blob fetch; the ledger has reference and digest', async () => {
    const before = await blobGets();
    expect(before).toBe(0);
    await fs.mkdir(path.join(p.dir, 'jobs'));
    const w = await p.cli(['sbatch', 'dump.py', 'task', '--image', ref, '--array', '0-3', '--partition', service('SIFPACK_TEST_PARTITION'), '--script-out', 'jobs/array.sbatch']);
    expect(w.code, w.stderr).toBe(0);
    pulledFile = path.join(p.dir, 'jobs', `analysis_sha256.${digest.slice(7, 19)}.sif`);
    execFileSync('cmp', [path.join(p.dir, 'analysis.sif'), pulledFile]);
    const script = await fs.readFile(path.join(p.dir, 'jobs', 'array.sbatch'), 'utf8');
    expect(script).toMatch(new RegExp(`^# sifpack-image: ${ref} oras://${reg.host}/issue13-jobs/analysis@sha256:[0-9a-f]{64} ${digest}$`, 'm'));
    // nothing but that comment names the registry: no task can pull
    expect(script.split('\n').filter((l) => l.includes('oras://') && !l.startsWith('#'))).toEqual([]);
    expect(script).toContain(pulledFile);
    expect(await blobGets()).toBe(1);

    const id = await submit(p, 'jobs/array.sbatch');
    const st = await waitFor(p, id, undefined, 180);
    expect(st.state, st.explanation).toBe('COMPLETED');
    for (const task of [0, 1, 2, 3]) {
      const dump = JSON.parse(await fs.readFile(path.join(p.dir, `dump_${task}.json`), 'utf8'));
      expect(dump.task).toBe(String(task));
      expect(dump.container).toBe(pulledFile); // the real apptainer ran the pulled file
    }
    // four tasks ran; the registry served the blob once, before submission
    expect(await blobGets()).toBe(1);
    const run = (await new Ledger(p.dir).runs()).find((r) => r.jobId === id)!;
    expect(run).toMatchObject({ image: pulledFile, imageSha256: digest, imageSource: ref });
    expect(run.imageRef).toMatch(new RegExp(`^oras://${reg.host}/issue13-jobs/analysis@sha256:[0-9a-f]{64}$`));
  });

  it('a second script for the same digest reuses the file: nothing fetched, nothing linked', async () => {
    const ino = (await fs.stat(pulledFile)).ino;
    const w = await p.cli(['sbatch', 'dump.py', '--image', ref, '--script-out', 'jobs/again.sbatch', '--json']);
    expect(w.code, w.stderr).toBe(0);
    expect(w.stderr).toContain('already there');
    expect(JSON.parse(w.stdout).job).toMatchObject({ image: pulledFile, pulledFrom: { source: ref, digest } });
    expect((await fs.stat(pulledFile)).ino).toBe(ino);
    expect(await blobGets()).toBe(1);
  });

  it('image-dir as a setting (SIFPACK_IMAGE_DIR): another directory is filled from the blob cache, not the registry', async () => {
    const shared = path.join(p.dir, 'shared-images');
    const w = await p.cli(['sbatch', 'dump.py', '--image', ref, '--script-out', 'jobs/shared.sbatch'], { SIFPACK_IMAGE_DIR: shared });
    expect(w.code, w.stderr).toBe(0);
    const file = path.join(shared, path.basename(pulledFile));
    execFileSync('cmp', [path.join(p.dir, 'analysis.sif'), file]);
    expect(await fs.readFile(path.join(p.dir, 'jobs', 'shared.sbatch'), 'utf8')).toContain(file);
    expect(await blobGets()).toBe(1);
  });

  it('submit pulls a missing image again (pinned digest) before sbatch, and refuses a changed one', async () => {
    const shared = path.join(p.dir, 'shared-images', path.basename(pulledFile));
    await fs.rm(shared);
    const id = await submit(p, 'jobs/shared.sbatch');
    execFileSync('cmp', [path.join(p.dir, 'analysis.sif'), shared]);
    const st = await waitFor(p, id, undefined, 180);
    expect(st.state, st.explanation).toBe('COMPLETED');
    // a different file at that path: nothing submitted
    await fs.rm(shared);
    await fs.writeFile(shared, 'not the image\n');
    const jobsBefore = (await new Ledger(p.dir).runs()).length;
    const r = await p.cli(['submit', 'jobs/shared.sbatch']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`was written for oras://${reg.host}/issue13-jobs/analysis@sha256:`);
    expect(r.stderr).toContain('nothing submitted');
    expect((await new Ledger(p.dir).runs()).length).toBe(jobsBefore);
  });

  it('an unknown tag is exit 2 and an unreachable registry exit 1, before anything is written', async () => {
    const missing = await p.cli(['sbatch', 'dump.py', '--image', `oras://${reg.host}/issue13-jobs/analysis:nope`, '--script-out', 'jobs/missing.sbatch']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain(`${reg.host}/issue13-jobs/analysis:nope not found in the registry`);
    expect(await exists(path.join(p.dir, 'jobs', 'missing.sbatch'))).toBe(false);
    const down = await p.cli(['sbatch', 'dump.py', '--image', 'oras://127.0.0.1:9/issue13-jobs/analysis:1', '--script-out', 'jobs/down.sbatch']);
    expect(down.code).toBe(1);
    expect(down.stderr).toContain('cannot reach the registry 127.0.0.1:9');
    expect(await exists(path.join(p.dir, 'jobs', 'down.sbatch'))).toBe(false);
    const runDown = await p.cli(['run', 'dump.py', '--image', 'oras://127.0.0.1:9/issue13-jobs/analysis:1']);
    expect(runDown.code).toBe(1);
    expect(runDown.stderr).toContain('cannot reach the registry 127.0.0.1:9');
  });

  it('run --image oras://: pulled into its workdir, submitted, run in the real apptainer', async () => {
    const r = await p.cli(['run', 'dump.py', 'from-run', '--image', ref, '--partition', service('SIFPACK_TEST_PARTITION'), '--json']);
    expect(r.code, r.stderr).toBe(0);
    const res = JSON.parse(r.stdout) as { jobId?: string; steps: { step: string; outcome: string; detail: string }[] };
    expect(res.steps.find((s) => s.step === 'build')).toMatchObject({ outcome: 'ran', detail: expect.stringContaining(`pulled oras://${reg.host}/issue13-jobs/analysis@sha256:`) });
    const file = path.join(p.dir, '.sifpack', 'analysis', path.basename(pulledFile));
    execFileSync('cmp', [path.join(p.dir, 'analysis.sif'), file]);
    const st = await waitFor(p, res.jobId!, undefined, 180);
    expect(st.state, st.explanation).toBe('COMPLETED');
    const dump = JSON.parse(await fs.readFile(path.join(p.dir, 'dump.json'), 'utf8'));
    expect(dump).toMatchObject({ argv: ['from-run'], container: file });
    expect(await blobGets()).toBe(1);
  });
});
