/**
 * The run ledger under concurrency, against the real one-node Slurm: 50
 * `sifpack submit` processes started at once (separate node processes, as 50
 * shells in a loop would) append 50 complete lines: no torn, merged or lost
 * record. Each line goes out in one write() on an O_APPEND descriptor, which
 * the kernel serialises on a local filesystem. The jobs are submitted held and
 * cancelled afterwards, so the test leaves the cluster as it found it.
 */
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ledger } from '../../src/runtime/ledger.js';
import { sifpack } from '../e2e/cli.js';
import { service, tempDir } from '../helpers.js';

const N = 50;
let dir: string;
let env: NodeJS.ProcessEnv;
const ids: string[] = [];

beforeAll(async () => {
  dir = await tempDir('sifpack-ledger-');
  env = { SLURM_CONF: service('SLURM_CONF'), HOME: dir };
  // A hand-written job script (submit takes any), held so nothing runs.
  await fs.writeFile(path.join(dir, 'held.sbatch'), `#!/bin/bash\n#SBATCH --hold\n#SBATCH --job-name=ledger-race\n#SBATCH --output=/dev/null\n#SBATCH --partition=${service('SIFPACK_TEST_PARTITION')}\ntrue\n`);
});
afterAll(async () => {
  if (ids.length) execFileSync('scancel', ids, { env: { ...process.env, SLURM_CONF: service('SLURM_CONF') } });
  await fs.rm(dir, { recursive: true, force: true });
});

describe('ledger: concurrent submits', () => {
  it(`${N} concurrent sifpack submit processes leave ${N} complete ledger lines`, async () => {
    const runs = await Promise.all(Array.from({ length: N }, () => sifpack(['submit', 'held.sbatch'], { cwd: dir, env })));
    for (const r of runs) {
      expect(r.stderr).not.toMatch(/error/);
      expect(r.code).toBe(0);
      ids.push(r.stdout.trim());
    }
    expect(new Set(ids).size).toBe(N);
    const text = await fs.readFile(path.join(dir, '.sifpack', 'runs.jsonl'), 'utf8');
    const lines = text.split('\n');
    expect(lines.pop()).toBe(''); // ends with a newline
    expect(lines).toHaveLength(N);
    const recorded = lines.map((l) => (JSON.parse(l) as { jobId: string }).jobId);
    expect(recorded.sort()).toEqual([...ids].sort());
    expect((await new Ledger(dir).runs()).length).toBe(N);
  }, 180_000);
});
