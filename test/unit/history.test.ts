import { promises as fs } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseHistory } from '../../src/env/history.js';
import { InputError } from '../../src/errors.js';
import { analysisEnv } from '../fixtures/prefix-builder.js';
import { CONDA_TESTDATA } from '../helpers.js';

describe('parseHistory', () => {
  it("reads conda 25's history from conda's own test env, including a bracket spec and --override-channels", async () => {
    const file = path.join(CONDA_TESTDATA, 'env_metadata/envpy313tosx_whl/conda-meta/history');
    const h = parseHistory(await fs.readFile(file, 'utf8'), file);
    expect([...h.requested.entries()]).toEqual([
      ['python_abi', 'python_abi[build=*_cp313t]'],
      ['python', 'python=3.13'],
      ['pip', 'pip'],
    ]);
    expect(h.channels).toEqual(['conda-forge']);
    expect(h.overrideChannels).toBe(true);
  });

  it('replays several transactions: a later removal drops the spec, a later update replaces it', () => {
    const text = analysisEnv().history!;
    const h = parseHistory(text, 'history');
    expect([...h.requested.entries()]).toEqual([
      ['python', 'python=3.11'],
      ['pandas', 'pandas'],
      ['pip', 'pip'],
      ['numpy', 'numpy=1.26'],
      ['matplotlib-base', 'matplotlib-base'],
      ['labtools', 'labtools::labtools'],
    ]);
    expect(h.channels).toEqual(['conda-forge']);
  });

  it("reads conda 4.0's old-format history: `install specs:` lines, and # cmd: lines where a transaction has none", async () => {
    const file = path.join(CONDA_TESTDATA, 'old-history/history');
    const h = parseHistory(await fs.readFile(file, 'utf8'), file);
    expect([...h.requested.entries()]).toEqual([
      ['conda', 'conda'],
      ['python', 'python 2.7*'],
      ['cas-mirror', 'cas-mirror'],
      ['grin', 'grin'],
      ['pyflakes', 'pyflakes'],
    ]);
  });

  it('applies an old-format remove after an install', () => {
    const text = ['==> 2016-01-01 00:00:00 <==', '# cmd: /opt/conda/bin/conda install -c bioconda samtools numpy', '+samtools-1.3-0', '==> 2016-01-02 00:00:00 <==', '# cmd: /opt/conda/bin/conda remove numpy', '-numpy-1.10-py27_0', ''].join('\n');
    const h = parseHistory(text, 'h');
    expect([...h.requested.keys()]).toEqual(['samtools']);
    expect(h.channels).toEqual(['bioconda']);
  });

  it('neutered specs override earlier ones', () => {
    const text = ["==> 2024-01-01 <==", "# cmd: conda install numpy", "# update specs: ['numpy']", "==> 2024-01-02 <==", "# cmd: conda install scipy", "# update specs: ['scipy']", "# neutered specs: ['numpy[version=\\'>=1.20,<2\\']']", ''].join('\n');
    const h = parseHistory(text, 'h');
    expect(h.requested.get('numpy')).toBe("numpy[version='>=1.20,<2']");
  });

  it('a specs line it cannot read is an input error naming file and line', () => {
    const text = ['==> 2024-01-01 <==', '# cmd: conda install numpy', "# update specs: ['numpy', scipy]", ''].join('\n');
    expect(() => parseHistory(text, '/env/conda-meta/history')).toThrowError(InputError);
    expect(() => parseHistory(text, '/env/conda-meta/history')).toThrow(/\/env\/conda-meta\/history:3/);
  });
});
