/**
 * `sifpack doctor` against the real services and against broken ones made
 * here: a Slurm controller of our own (own slurm.conf, ports and state in a
 * temp dir; the shared one is never touched) that is stopped mid-test, a
 * DOCKER_HOST socket nobody listens on, one that accepts and never answers,
 * and build tmpdirs on small tmpfs mounts (noexec, nearly full).
 */
import { execFileSync } from 'node:child_process';
import { promises as fs, readFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DoctorReport, DoctorRow } from '../../src/workflows/doctor.js';
import { sifpack } from '../e2e/cli.js';
import { service, tempDir } from '../helpers.js';

let dir: string;
const mounts: string[] = [];

beforeAll(async () => {
  dir = await tempDir('sifpack-doctor-');
});
afterAll(async () => {
  for (const m of mounts) execFileSync('umount', [m]);
  await fs.rm(dir, { recursive: true, force: true });
});

async function doctor(env: NodeJS.ProcessEnv, extra: string[] = []): Promise<{ code: number; report: DoctorReport; seconds: number; stdout: string }> {
  const t = Date.now();
  const r = await sifpack(['doctor', '--json', ...extra], { cwd: dir, env });
  const seconds = (Date.now() - t) / 1000;
  return { code: r.code, report: JSON.parse(r.stdout) as DoctorReport, seconds, stdout: r.stdout };
}
const row = (rep: DoctorReport, check: string): DoctorRow => {
  const r = rep.rows.find((x) => x.check === check);
  if (!r) throw new Error(`no row ${check} in ${JSON.stringify(rep.rows.map((x) => x.check))}`);
  return r;
};

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

const services = () => ({ DOCKER_HOST: service('DOCKER_HOST'), SLURM_CONF: service('SLURM_CONF') });

describe('sifpack doctor', () => {
  it('with the real Docker engine and Slurm: those rows ok, ready for run (exit 0), and a readable table', async () => {
    const { code, report, seconds } = await doctor(services());
    expect(code).toBe(0);
    expect(report.readyForRun).toBe(true);
    expect(report.builder).toBe('docker'); // no apptainer on this PATH
    expect(row(report, 'Docker engine')).toMatchObject({ status: 'ok', neededForRun: true, detail: expect.stringMatching(/Docker \d+\.\d+.*\(API 1\.\d+\), amd64$/) });
    expect(row(report, 'controller (scontrol ping)')).toMatchObject({ status: 'ok', detail: expect.stringMatching(/^Slurmctld\(primary\) at \S+ is UP$/) });
    expect(row(report, 'partition')).toMatchObject({ status: 'ok', detail: `default partition ${service('SIFPACK_TEST_PARTITION')}` });
    expect(row(report, 'mksquashfs / tar2sqfs')).toMatchObject({ status: 'ok', neededForRun: true });
    expect(row(report, 'apptainer / singularity')).toMatchObject({ status: 'missing', neededForRun: false });
    expect(row(report, 'conda / mamba / micromamba').detail).toContain('not needed, export reads the prefix');
    expect(row(report, 'sifpack.yml / profile')).toMatchObject({ status: 'ok' });
    console.log(`doctor against the services: probes ${report.seconds}s, wall ${seconds.toFixed(1)}s`);
    const text = await sifpack(['doctor'], { cwd: dir, env: services() });
    expect(text.stdout).toMatch(/^ok {7}Docker engine {15}unix:\/\//m);
    expect(text.stdout).toContain('Ready for `sifpack run`: builds with docker, submits to Slurm.');
  }, 120_000);

  it('a Slurm controller that stops: ok while it runs, missing (exit 1) once stopped, within the time limit', async () => {
    const s = path.join(dir, 'slurm');
    for (const d of ['state', 'spool', 'log', 'run']) await fs.mkdir(path.join(s, d), { recursive: true });
    const node = os.hostname().split('.')[0]!;
    const conf = path.join(s, 'slurm.conf');
    await fs.writeFile(
      conf,
      [
        'ClusterName=sifpackdoctor',
        `SlurmctldHost=${node}`,
        `SlurmctldPort=${await freePort()}`,
        `SlurmdPort=${await freePort()}`,
        'AuthType=auth/none',
        'CredType=cred/none',
        'SlurmUser=root',
        'SlurmdUser=root',
        'ProctrackType=proctrack/linuxproc',
        'TaskPlugin=task/none',
        'SelectType=select/cons_tres',
        'SelectTypeParameters=CR_Core_Memory',
        'AccountingStorageType=accounting_storage/none',
        'JobAcctGatherType=jobacct_gather/none',
        'MpiDefault=none',
        `StateSaveLocation=${s}/state`,
        `SlurmdSpoolDir=${s}/spool`,
        `SlurmctldPidFile=${s}/run/slurmctld.pid`,
        `SlurmdPidFile=${s}/run/slurmd.pid`,
        `SlurmctldLogFile=${s}/log/slurmctld.log`,
        `NodeName=${node} CPUs=1 RealMemory=100 State=UNKNOWN`,
        `PartitionName=doctorq Nodes=${node} Default=YES MaxTime=INFINITE State=UP`,
        '',
      ].join('\n'),
    );
    execFileSync('slurmctld', ['-c', '-f', conf], { env: { ...process.env, SLURM_CONF: conf } });
    const pid = Number((await fs.readFile(path.join(s, 'run', 'slurmctld.pid'), 'utf8')).trim());
    const env = { ...services(), SLURM_CONF: conf };
    try {
      let up: DoctorReport | undefined;
      for (let i = 0; i < 30 && !up; i++) {
        const { report } = await doctor(env);
        if (row(report, 'controller (scontrol ping)').status === 'ok') up = report;
        else await new Promise((r) => setTimeout(r, 1000));
      }
      expect(up, 'our own slurmctld never answered scontrol ping').toBeDefined();
      expect(row(up!, 'partition').detail).toBe('default partition doctorq');
    } finally {
      process.kill(pid, 'SIGTERM');
    }
    for (let i = 0; i < 50; i++) {
      try {
        process.kill(pid, 0);
        await new Promise((r) => setTimeout(r, 200));
      } catch {
        break;
      }
    }
    const { code, report, seconds } = await doctor(env, ['--timeout', '3']);
    expect(code).toBe(1);
    expect(report.readyForRun).toBe(false);
    expect(row(report, 'controller (scontrol ping)')).toMatchObject({ status: 'missing', neededForRun: true, detail: expect.stringMatching(/is DOWN|no answer within 3s/) });
    // Each probe is cut at --timeout; the rest is Node's start-up on a busy machine.
    console.log(`doctor with the controller stopped: probes ${report.seconds}s, wall ${seconds.toFixed(1)}s (${row(report, 'controller (scontrol ping)').detail})`);
    // Probes run side by side, each cut at --timeout (wall time adds Node's start-up on a busy machine).
    // On this shared 2-core machine (load average 25-33) the rest of doctor has taken up to 4 s.
    expect(report.seconds).toBeLessThan(3 + 5);
  }, 120_000);

  it('DOCKER_HOST pointing at a socket nobody listens on: Docker missing with the reason, exit 1', async () => {
    const sock = path.join(dir, 'dead.sock');
    // A unix socket file with no listener behind it (python3 leaves it when it exits).
    execFileSync('python3', ['-c', `import socket; socket.socket(socket.AF_UNIX).bind(${JSON.stringify(sock)})`]);
    const { code, report } = await doctor({ ...services(), DOCKER_HOST: `unix://${sock}` });
    expect(code).toBe(1);
    expect(row(report, 'Docker engine')).toMatchObject({ status: 'missing', neededForRun: true, detail: `unix://${sock}: cannot reach the Docker engine (ECONNREFUSED) to answer a ping` });
    expect(row(report, 'Docker engine').fix).toContain('DOCKER_HOST');
    expect(report.builder).toBe('none');
  }, 180_000);

  it('a Docker socket that accepts and never answers: missing after the time limit, doctor still ends', async () => {
    const sock = path.join(dir, 'hung.sock');
    const held: net.Socket[] = [];
    const server = net.createServer((c) => void held.push(c)).listen(sock);
    try {
      const { code, report, seconds } = await doctor({ ...services(), DOCKER_HOST: `unix://${sock}` }, ['--timeout', '2']);
      expect(code).toBe(1);
      expect(row(report, 'Docker engine')).toMatchObject({ status: 'missing', detail: `unix://${sock}: no answer within 2s` });
      console.log(`doctor with a hung Docker socket: probes ${report.seconds}s, wall ${seconds.toFixed(1)}s`);
      expect(report.seconds).toBeLessThan(2 + 5);
    } finally {
      for (const c of held) c.destroy();
      server.close();
    }
  }, 180_000);

  describe('the build tmpdir (the real apptainer 1.4.5 of the test services on PATH)', () => {
    // start.sh exports SIFPACK_TEST_APPTAINER; a machine set up before it did names the binary in APPTAINER_READY.
    const apptainer = () => service('SIFPACK_TEST_APPTAINER');
    // --timeout 30: room for the probes on a heavily loaded machine; the time limit itself is tested above.
    const withApptainer = () => ({ ...services(), PATH: `${path.dirname(apptainer())}:${process.env.PATH}` });
    async function tmpfs(name: string, opts: string): Promise<string> {
      const m = path.join(dir, name);
      await fs.mkdir(m);
      execFileSync('mount', ['-t', 'tmpfs', '-o', opts, 'tmpfs', m]);
      mounts.push(m);
      return m;
    }

    it('a roomy tmpdir is ok and apptainer is the builder', async () => {
      const { report } = await doctor({ ...withApptainer(), APPTAINER_TMPDIR: dir }, ['--timeout', '30']);
      expect(report.builder).toBe('apptainer');
      // Debian's apptainer package ships no setuid starter.
      expect(row(report, 'apptainer / singularity')).toMatchObject({ status: 'ok', neededForRun: true, detail: `apptainer 1.4.5 (${apptainer()}), user namespaces (no setuid starter)` });
      expect(row(report, 'fakeroot')).toMatchObject({ status: 'ok', detail: 'running as root: builds need no --fakeroot' });
      expect(row(report, 'build tmpdir').status).not.toBe('missing');
    }, 60_000);

    it('mounted noexec: missing, exit 1', async () => {
      const m = await tmpfs('noexec', 'size=64m,noexec');
      const { code, report } = await doctor({ ...withApptainer(), APPTAINER_TMPDIR: m }, ['--timeout', '30']);
      expect(code).toBe(1);
      expect(row(report, 'build tmpdir')).toMatchObject({ status: 'missing', neededForRun: true, detail: `${m} is mounted noexec: %post cannot run from there` });
      expect(row(report, 'build tmpdir').fix).toContain('APPTAINER_TMPDIR');
    }, 60_000);

    it('nearly full: missing with the free space, exit 1', async () => {
      const m = await tmpfs('full', 'size=8m');
      await fs.writeFile(path.join(m, 'filler'), Buffer.alloc(7 * 2 ** 20));
      const { code, report } = await doctor({ ...withApptainer(), APPTAINER_TMPDIR: m }, ['--timeout', '30']);
      expect(code).toBe(1);
      expect(row(report, 'build tmpdir')).toMatchObject({ status: 'missing', detail: expect.stringMatching(new RegExp(`^${m}: only \\d+(\\.\\d)? (B|MiB) free; builds need 2\\.0 GiB$`)) });
    }, 60_000);
  });
});
