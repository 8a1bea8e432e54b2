/** Slurm client failures (captured from the real 22.05 clients, test/fixtures/slurm/) read as one plain sentence. */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { explainClientError } from '../../src/runtime/slurm.js';
import { ROOT, tempDir } from '../helpers.js';

const captured = (f: string) => fs.readFile(path.join(ROOT, 'test/fixtures/slurm', f), 'utf8');

describe('Slurm client errors in plain words', () => {
  it('no configuration at all (the DNS SRV lookup): says Slurm is not configured and what to do', async () => {
    const text = await captured('sbatch-no-config-dns-srv.txt');
    expect(text).toContain('DNS SRV lookup failed');
    const s = explainClientError(text, {})!;
    expect(s).toBe('Slurm is not configured here: there is no /etc/slurm/slurm.conf and no DNS SRV record names a controller; run this on a login node of the cluster, load its Slurm module, or set SLURM_CONF to its slurm.conf');
    expect(s.split('\n')).toHaveLength(1);
  });

  it('a controller that does not answer: names it (host and port from slurm.conf) for sbatch, scontrol and scancel alike', async () => {
    const dir = await tempDir();
    const conf = path.join(dir, 'slurm.conf');
    await fs.writeFile(conf, 'ClusterName=c\nSlurmctldHost=ctl1(10.0.0.1)\nSlurmctldPort=6817\n');
    for (const f of ['sbatch-controller-down.txt', 'scontrol-controller-down.txt', 'scancel-controller-down.txt']) {
      const s = explainClientError(await captured(f), { SLURM_CONF: conf });
      expect(s).toBe(`the Slurm controller ctl1 (port 6817) did not answer (connect failure); check that slurmctld is up, that ${conf} is this cluster's configuration, and that the network allows the connection`);
    }
    await fs.rm(dir, { recursive: true });
  });

  it('anything else is left to Slurm\'s own words', async () => {
    expect(explainClientError(await captured('scontrol-invalid-id.txt'), {})).toBeUndefined();
  });
});
