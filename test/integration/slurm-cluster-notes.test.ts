/**
 * Issue 11 against the real one-node Slurm (22.05), with real srun: only
 * the apptainer double is on PATH (test/doubles/bin/apptainer, which runs
 * the command on the host's python3 the way --cleanenv would).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../helpers.js';
import { type Project, makeProject, submit, waitFor } from './slurm-harness.js';
import { service } from '../helpers.js';

const RANK = `import json, os
names = ("SLURM_PROCID", "SLURM_LOCALID", "SLURM_JOB_ID", "SEED", "OMP_NUM_THREADS")
with open(f"rank_{os.environ.get('SLURM_PROCID')}.json", "w", encoding="utf-8") as f:
    json.dump({k: os.environ.get(k) for k in names}, f)
`;

let p: Project;
let appBin: string;
beforeAll(async () => {
  p = await makeProject();
  await fs.writeFile(path.join(p.dir, 'rank.py'), RANK);
  // Only apptainer is a double here: srun is Slurm's own.
  appBin = path.join(p.dir, 'apptainer-bin');
  await fs.mkdir(appBin);
  await fs.symlink(path.join(ROOT, 'test/doubles/bin/apptainer'), path.join(appBin, 'apptainer'));
});
afterAll(async () => {
  await fs.rm(p.dir, { recursive: true, force: true });
});

const ranks = async (n: number) => Promise.all([...Array(n).keys()].map(async (i) => JSON.parse(await fs.readFile(path.join(p.dir, `rank_${i}.json`), 'utf8')) as Record<string, string | null>));

describe('real Slurm with real srun: per-task values, --export=NONE', () => {
  it('--ntasks 2: each task sees its own SLURM_PROCID and SLURM_LOCALID inside --cleanenv', async () => {
    const env = { PATH: `${appBin}:${process.env.PATH}` };
    const r = await p.cli(['sbatch', 'rank.py', '--image', 'analysis.sif', '--partition', service('SIFPACK_TEST_PARTITION'), '--ntasks', '2', '--cpus-per-task', '1', '--script-out', 'ranks.sbatch'], env);
    expect(r.code).toBe(0);
    const id = await submit(p, 'ranks.sbatch', [], env);
    expect((await waitFor(p, id)).state).toBe('COMPLETED');
    const [a, b] = await ranks(2);
    expect([a!.SLURM_PROCID, b!.SLURM_PROCID]).toEqual(['0', '1']);
    expect([a!.SLURM_LOCALID, b!.SLURM_LOCALID]).toEqual(['0', '1']);
    expect(a!.SLURM_JOB_ID).toBe(id);
    expect(a!.OMP_NUM_THREADS).toBe('1');
  });

  it('--export=NONE: the module init is sourced, and APPTAINERENV_* values reach the container in every task', async () => {
    for (const f of ['rank_0.json', 'rank_1.json']) await fs.rm(path.join(p.dir, f), { force: true });
    // What a site's module system does: `module load apptainer` puts it on PATH.
    // Under --export=NONE nothing of the submitting shell reaches the job, so
    // the job finds this only through the module init it sources.
    const init = path.join(p.dir, 'module-init.sh');
    await fs.writeFile(init, `module() { if [ "$1" = load ] && [ "$2" = apptainer ]; then export PATH=${appBin}:"$PATH" SIFPACK_RECORD=${p.dir}; else return 1; fi; }\n`);
    const r = await p.cli(['sbatch', 'rank.py', '--image', 'analysis.sif', '--partition', service('SIFPACK_TEST_PARTITION'), '--ntasks', '2', '--module', 'apptainer', '--module-init', init, '--env', 'SEED=42', '--script-out', 'none.sbatch']);
    expect(r.code).toBe(0);
    // SBATCH_EXPORT is sbatch's variable for --export.
    const id = await submit(p, 'none.sbatch', [], { SBATCH_EXPORT: 'NONE' });
    const st = await waitFor(p, id);
    expect(st.state, await fs.readFile(path.join(p.dir, `rank_${id}.out`), 'utf8').catch(() => 'no output')).toBe('COMPLETED');
    const [a, b] = await ranks(2);
    expect(a).toMatchObject({ SLURM_PROCID: '0', SEED: '42', SLURM_JOB_ID: id });
    expect(b).toMatchObject({ SLURM_PROCID: '1', SEED: '42', SLURM_JOB_ID: id });
  });
});
