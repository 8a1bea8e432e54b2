/**
 * The `# sifpack-image:` line a job script carries when its image was pulled
 * from a registry (sbatch --image oras://...): rendered by the sbatch
 * renderer, read back by submit for the ledger.
 */
import { describe, expect, it } from 'vitest';
import { pulledImageLine, readScriptFacts } from '../../src/model/sbatch-script.js';
import { buildJob } from '../../src/model/slurm-job.js';
import { resolveSettings } from '../../src/config/load.js';
import { renderSbatch } from '../../src/render/sbatch.js';

const D = `sha256:${'ab'.repeat(32)}`;
const M = `sha256:${'cd'.repeat(32)}`;
const pulled = { source: 'oras://ghcr.io/lab/x:1', reference: `oras://ghcr.io/lab/x@${M}`, digest: D };

describe('the pulled-image line', () => {
  it('round trip: rendered into the script, read back by readScriptFacts', () => {
    const { settings, sources } = resolveSettings({ flags: { image: '/shared/x_sha256.abababababab.sif' }, env: {}, cwd: '/w' });
    const job = { ...buildJob({ settings, sources, script: 'a.py', args: [], cwd: '/w' }), pulledFrom: pulled };
    const text = renderSbatch(job, { version: '0' }).text;
    expect(text.split('\n').slice(1, 5)).toEqual([
      '# Runs a.py in /shared/x_sha256.abababababab.sif on Slurm; written by sifpack 0.',
      '# The image was pulled once, on the login node, when this script was written;',
      '# every task runs that local file and none pulls (source, pinned reference, sha256):',
      `# sifpack-image: oras://ghcr.io/lab/x:1 oras://ghcr.io/lab/x@${M} ${D}`,
    ]);
    expect(readScriptFacts(text)).toMatchObject({ image: '/shared/x_sha256.abababababab.sif', pulled });
  });

  it('refuses values that would break the line (they cannot come from parseOrasRef, but the renderer does not trust that)', () => {
    expect(() => pulledImageLine({ ...pulled, source: 'oras://h.io/x:1\nrm -rf /' })).toThrow(/not a valid image line/);
    expect(() => pulledImageLine({ ...pulled, digest: 'sha256:zz' })).toThrow(/not a valid image line/);
  });

  it('a script without the line has no pulled image', () => {
    expect(readScriptFacts('#!/bin/bash\nsrun apptainer exec /x.sif python a.py\n').pulled).toBeUndefined();
  });
});
