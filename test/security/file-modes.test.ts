/**
 * Modes of what sifpack creates, under the most permissive umask (000, as a
 * careless shared-group setup has): outputs are 0644, job scripts 0755, and
 * the .sifpack/ state directory and its ledger are never group- or
 * world-writable, so nobody else can rewrite the record of what ran.
 */
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI } from '../e2e/cli.js';
import { ROOT, tempDir } from '../helpers.js';

const exec = promisify(execFile);
let dir: string;
const mode = async (f: string) => (await fs.stat(path.join(dir, f))).mode & 0o7777;

/** Runs the CLI under `umask 000`. */
const underUmask0 = (args: string[]) => exec('sh', ['-c', 'umask 000; exec "$@"', 'sh', process.execPath, CLI, ...args], { cwd: dir, env: { PATH: process.env.PATH, HOME: dir } });

beforeAll(async () => {
  dir = await tempDir('sifpack-modes-');
  // A stand-in sbatch (submit takes --sbatch-path): prints a job id as `sbatch --parsable` does.
  await fs.writeFile(path.join(dir, 'fake-sbatch'), '#!/bin/sh\necho 4242\n', { mode: 0o755 });
  await fs.writeFile(path.join(dir, 'job.sbatch'), '#!/bin/bash\ntrue\n', { mode: 0o755 });
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

describe('file modes under umask 000', () => {
  it('export and def outputs are 0644, job scripts 0755; .sifpack/ is 0755 and its ledger 0644', async () => {
    await underUmask0(['export', '-p', path.join(ROOT, 'examples/pandas-analysis/envs/analysis'), '-o', 'environment.yml', '--lock', 'environment.lock']);
    await underUmask0(['def', 'environment.yml', '-o', 'analysis.def']);
    await underUmask0(['sbatch', 'analyze.py', '--image', 'analysis.sif', '--script-out', 'rendered.sbatch']);
    await underUmask0(['submit', 'job.sbatch', '--sbatch-path', path.join(dir, 'fake-sbatch')]);
    expect((await mode('environment.yml')).toString(8)).toBe('644');
    expect((await mode('environment.lock')).toString(8)).toBe('644');
    expect((await mode('analysis.def')).toString(8)).toBe('644');
    expect((await mode('rendered.sbatch')).toString(8)).toBe('755');
    expect((await mode('.sifpack')).toString(8)).toBe('755');
    expect((await mode('.sifpack/runs.jsonl')).toString(8)).toBe('644');
  });
});
