/**
 * Property-based tests of the one shell-quoting function and of the job
 * script template: for random strings (any Unicode, quotes, $, backticks,
 * backslashes, newlines; no NUL, which no argv can hold), what real bash
 * reads back is exactly the string. Bounded runs; SIFPACK_FUZZ_SECONDS for
 * longer ones by hand.
 */
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveSettings } from '../../src/config/load.js';
import { buildJob } from '../../src/model/slurm-job.js';
import { renderSbatch } from '../../src/render/sbatch.js';
import { shellQuote } from '../../src/render/shell-quote.js';
import { ROOT, tempDir } from '../helpers.js';
import { fuzzSeconds } from './in-process.js';

const run = promisify(execFile);
const DOUBLES = path.join(ROOT, 'test/doubles/bin');
const noNul = (s: string) => !s.includes('\0');
// Strings weighted towards what breaks quoting.
const nasty = fc.oneof(
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.string({ unit: fc.constantFrom("'", '"', '$', '`', '\\', '\n', ' ', '\t', '!', '*', '~', ';', '&', '|', '(', ')', '<', '>', '#', '=', '{', '}', 'a', 'é', '🚀'), maxLength: 30 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
).filter(noNul);

let dir: string;
beforeAll(async () => {
  dir = await tempDir('sifpack-quote-');
  await fs.writeFile(path.join(dir, 'dump.py'), 'import json, sys\nopen("dump.json", "w", encoding="utf-8", errors="surrogateescape").write(json.dumps(sys.argv[1:]))\n');
  await fs.writeFile(path.join(dir, 'image.sif'), 'stand-in: the apptainer double only checks it exists');
});
afterAll(async () => {
  // A double's last record can still land while the tree is removed (ENOTEMPTY once in a full run): fs.rm retries that.
  await fs.rm(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
});

describe('quoting, checked by real bash', () => {
  it('shellQuote: bash reads back every string exactly (batches of 200 per bash)', async () => {
    const end = Date.now() + fuzzSeconds(5) * 1000;
    let checked = 0;
    for (let seed = 1; Date.now() < end; seed++) {
      const values = fc.sample(nasty, { numRuns: 200, seed });
      const script = `printf '%s\\0' ${values.map(shellQuote).join(' ')}\n`;
      const { stdout } = await run('bash', ['-c', script], { encoding: 'buffer', maxBuffer: 1 << 24 });
      const back = (stdout as unknown as Buffer).toString('utf8').split('\0').slice(0, -1);
      expect(back).toEqual(values);
      checked += values.length;
    }
    expect(checked).toBeGreaterThanOrEqual(200);
  }, 60_000);

  it('job script: random argv reaches the Python script unchanged through sbatch, srun and apptainer (doubles)', async () => {
    const { settings, sources } = resolveSettings({ flags: { image: 'image.sif' }, cwd: dir });
    await fc.assert(
      fc.asyncProperty(fc.array(nasty, { maxLength: 6 }), async (args) => {
        const job = buildJob({ settings, sources, script: 'dump.py', args, cwd: dir });
        const file = path.join(dir, 'job.sbatch');
        await fs.writeFile(file, renderSbatch(job, { version: 'test' }).text, { mode: 0o755 });
        await run('bash', ['-n', file]);
        await fs.rm(path.join(dir, 'dump.json'), { force: true });
        await run('bash', [file], { cwd: dir, env: { PATH: `${DOUBLES}:${process.env.PATH}`, HOME: dir, SIFPACK_RECORD: dir } });
        const got = JSON.parse(await fs.readFile(path.join(dir, 'dump.json'), 'utf8')) as string[];
        // Python decodes argv with surrogateescape; invalid UTF-8 from 'binary' strings compares as its repair.
        expect(got.map((s) => Buffer.from(s, 'utf8').toString('utf8'))).toEqual(args.map((s) => Buffer.from(s, 'utf8').toString('utf8')));
      }),
      { interruptAfterTimeLimit: fuzzSeconds(10) * 1000, numRuns: 1_000_000 },
    );
  }, 60_000);
});
