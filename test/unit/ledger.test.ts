import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Ledger, type SubmitEntry } from '../../src/runtime/ledger.js';
import { tempDir } from '../helpers.js';

const submit = (jobId: string): SubmitEntry => ({
  type: 'submit', jobId, cluster: null, sbatch: '/w/job.sbatch', sbatchSha256: 'sha256:aa', image: null, imageSha256: null, envHash: null, output: null, workDir: '/w', submittedAt: '2026-11-25T00:00:00.000Z',
});

let dir: string;
beforeEach(async () => {
  dir = await tempDir();
});
afterEach(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

describe('run ledger', () => {
  it('appends one line per entry and folds final states into runs', async () => {
    const l = new Ledger(dir);
    await l.append(submit('1'));
    await l.append(submit('2'));
    await l.append({ type: 'final', jobId: '1', state: 'FAILED', explanation: 'exited with code 3', at: '2026-11-25T00:01:00.000Z' });
    const text = await fs.readFile(l.file, 'utf8');
    expect(text.split('\n').filter(Boolean)).toHaveLength(3);
    const runs = await l.runs();
    expect(runs.map((r) => [r.jobId, r.final?.explanation ?? null])).toEqual([['1', 'exited with code 3'], ['2', null]]);
  });

  it('a torn last line (a crash mid-append) is skipped, and the next entry starts on its own line', async () => {
    const l = new Ledger(dir);
    await l.append(submit('1'));
    await fs.appendFile(l.file, '{"type":"submit","jobId":"2","clus');
    await l.append(submit('3'));
    const before = (await fs.readFile(l.file, 'utf8')).split('\n');
    expect(before[0]).toBe(JSON.stringify(submit('1')));
    expect((await l.runs()).map((r) => r.jobId)).toEqual(['1', '3']);
  });

  it('earlier lines are never rewritten: the file only grows', async () => {
    const l = new Ledger(dir);
    await l.append(submit('1'));
    const first = await fs.readFile(l.file, 'utf8');
    await l.append({ type: 'final', jobId: '1', state: 'COMPLETED', explanation: 'completed (exit code 0)', at: 'x' });
    expect((await fs.readFile(l.file, 'utf8')).startsWith(first)).toBe(true);
  });

  it('a torn last line, a line of garbage and a record from a newer version are each reported by line, and the next append still lands on its own line', async () => {
    const heard: string[] = [];
    const l = new Ledger(dir, (m) => heard.push(m));
    await l.append(submit('1'));
    await fs.appendFile(l.file, 'garbage that is not JSON\n{"type":"checkpoint","jobId":"1","v":9}\n[1,2]\n');
    await l.append(submit('2'));
    await fs.appendFile(l.file, '{"type":"final","jobId":"2","st');
    expect((await l.runs()).map((r) => r.jobId)).toEqual(['1', '2']);
    expect(heard).toEqual([
      `${l.file} line 2: not a JSON record; skipped`,
      `${l.file} line 3: a 'checkpoint' record, which this sifpack version does not know (written by a newer one?); skipped`,
      `${l.file} line 4: not a ledger record; skipped`,
      `${l.file} line 6: torn (an interrupted write); skipped`,
    ]);
    await l.append(submit('3'));
    const lines = (await fs.readFile(l.file, 'utf8')).split('\n');
    expect(lines.at(-2)).toBe(JSON.stringify(submit('3')));
    heard.length = 0;
    expect((await l.runs()).map((r) => r.jobId)).toEqual(['1', '2', '3']);
    expect(heard).toHaveLength(4); // the torn line is now in the middle: reported as garbage
    expect(heard[3]).toBe(`${l.file} line 6: not a JSON record; skipped`);
  });

  it('no ledger yet reads as empty', async () => {
    expect(await new Ledger(path.join(dir, 'nothing-here')).runs()).toEqual([]);
  });
});
