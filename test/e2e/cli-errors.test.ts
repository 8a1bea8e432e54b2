/**
 * commander's own errors look like ours (`sifpack: error:` + `hint:`), with
 * --json an error is also one JSON object on stdout, a bare `sifpack` prints
 * the help as a result, and a dead Slurm controller is one plain sentence.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { sifpack } from './cli.js';
import { service, tempDir } from '../helpers.js';

describe('errors from the command line itself', () => {
  it('an unknown option: sifpack: error: and a hint, exit 2', async () => {
    const r = await sifpack(['export', '--frobnicate']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe("sifpack: error: unknown option '--frobnicate'\nhint: see `sifpack export --help`\n");
    expect(r.stdout).toBe('');
  });

  it('a misspelt command keeps commander\'s suggestion, as a hint', async () => {
    const r = await sifpack(['inspekt', 'x.sif']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe("sifpack: error: unknown command 'inspekt'\nhint: did you mean inspect? (`sifpack --help` lists them all)\n");
  });

  it('with --json a parse error is also {"error":{code,message,hint}} on stdout', async () => {
    const r = await sifpack(['inspect', '--json']);
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stdout)).toEqual({ error: { code: 'missing_argument', message: "missing required argument 'IMAGE'", hint: 'see `sifpack inspect --help`' } });
    expect(r.stderr).toContain("sifpack: error: missing required argument 'IMAGE'");
  });

  it('with --json our own errors are a JSON object on stdout too', async () => {
    const r = await sifpack(['inspect', '/nonexistent/x.sif', '--json']);
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stdout)).toEqual({ error: { code: 'input', message: 'IMAGE /nonexistent/x.sif: no such file: the directory /nonexistent does not exist', hint: 'give a .sif image or a sandbox directory' } });
  });

  it('a bare `sifpack` prints the help on stdout and exits 0', async () => {
    const r = await sifpack([]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Usage: sifpack \[options\] \[command\]/);
    expect(r.stderr).toBe('');
  });

  it('a Slurm controller that does not answer: one plain sentence naming it (real sbatch)', async () => {
    const dir = await tempDir();
    const conf = path.join(dir, 'slurm.conf');
    // Nobody listens on port 1 of loopback: the real client fails to connect at once.
    await fs.writeFile(conf, 'ClusterName=dead\nSlurmctldHost=localhost\nSlurmctldPort=1\nNodeName=localhost CPUs=1\nPartitionName=p Nodes=localhost Default=YES\nAuthType=auth/none\nCredType=cred/none\n');
    await fs.writeFile(path.join(dir, 'j.sbatch'), '#!/bin/bash\ntrue\n');
    const r = await sifpack(['submit', 'j.sbatch'], { cwd: dir, env: { SLURM_CONF: conf } });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`sifpack: error: cannot submit ${path.join(dir, 'j.sbatch')}: the Slurm controller localhost (port 1) did not answer (connect failure); check that slurmctld is up, that ${conf} is this cluster's configuration, and that the network allows the connection\n`);
    await fs.rm(dir, { recursive: true });
  }, 90_000);
});

describe('convert without -o', () => {
  it('writes NAME_TAG.sif in the working directory (real engine)', async () => {
    const dir = await tempDir();
    expect(service('SIFPACK_TEST_BUSYBOX_IMAGE')).toBe('sifpack-test/busybox:1');
    const r = await sifpack(['convert', 'sifpack-test/busybox:1'], { cwd: dir, env: { DOCKER_HOST: service('DOCKER_HOST') } });
    expect(r.stderr).not.toContain('error');
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(path.join(dir, 'busybox_1.sif'));
    expect((await fs.stat(path.join(dir, 'busybox_1.sif'))).size).toBeGreaterThan(100_000);
    await fs.rm(dir, { recursive: true });
  }, 120_000);
});

describe('convert progress', () => {
  it('a 200+ MiB image: timestamped lines with bytes, %, rate and ETA on a log (real engine)', async () => {
    const dir = await tempDir();
    const r = await sifpack(['convert', service('SIFPACK_TEST_BASE_IMAGE'), '-o', 'big.sif'], { cwd: dir, env: { DOCKER_HOST: service('DOCKER_HOST') } });
    expect(r.code).toBe(0);
    const lines = r.stderr.split('\n').filter((l) => /^\[\d\d:\d\d:\d\d\] converting /.test(l));
    expect(lines.length).toBeGreaterThanOrEqual(2);
    expect(lines.at(-1)).toMatch(/converting \d+\.\d\/\d+\.\d MiB  100%  \d+\.\d MiB\/s  ETA 0s$/);
    expect(Number(/\/(\d+\.\d) MiB/.exec(lines.at(-1)!)![1])).toBeGreaterThan(100);
    await fs.rm(dir, { recursive: true });
  }, 180_000);
});
