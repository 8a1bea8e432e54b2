/**
 * `sifpack convert` and `inspect` against a real Docker engine (Debian's
 * dockerd, started by test/services/start.sh), checked by independent
 * readers: Sylabs' siftool, unsquashfs, and a chroot that runs the image's
 * Python through the /.singularity.d actions the way apptainer exec would.
 */
import { execFileSync, spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packContext } from '../../src/runtime/build-context.js';
import { DockerodeEngine } from '../../src/runtime/docker.js';
import { NodeProcessRunner } from '../../src/runtime/process.js';
import { convertImage } from '../../src/workflows/convert.js';
import { readSif, requirePrimaryPartition } from '../../src/sif/reader.js';
import { CLI, interruptWhen, sifpack } from '../e2e/cli.js';
import { service, tempDir, peakRss } from '../helpers.js';

const TEST_IMAGE = 'sifpack-test/convert-me:1';
let dir: string;
let env: NodeJS.ProcessEnv;
let engine: DockerodeEngine;

const DOCKERFILE = (base: string) => `FROM ${base}
ENV GREETING="hello world" DATA_DIR=/data QUOTE="it's \\$HOME"
LABEL org.example.team="lab x" org.example.version="1.2"
RUN mkdir -p "/opt/my dir" && echo spaces > "/opt/my dir/file with spaces.txt" && ln -s "my dir" /opt/link \\
 && echo hard > /opt/a && ln /opt/a /opt/b \\
 && printf '#!/bin/sh\\necho tool\\n' > /usr/local/bin/tool && chmod 755 /usr/local/bin/tool \\
 && mknod /opt/null c 1 3
ENTRYPOINT ["python3"]
CMD ["-c", "print(42)"]
`;

/**
 * Export containers left in the engine, once any that other test files are
 * using right now (build converts too) have had time to go: a leaked one
 * never goes, so it still fails the test.
 */
async function exportContainersLeft(): Promise<number> {
  const end = Date.now() + 90_000;
  for (;;) {
    const list = await engine.docker.listContainers({ all: true, filters: { label: ['sifpack.export=1'] } });
    if (list.length === 0 || Date.now() > end) return list.length;
    await new Promise((r) => setTimeout(r, 500));
  }
}


beforeAll(async () => {
  env = { DOCKER_HOST: service('DOCKER_HOST') };
  process.env.DOCKER_HOST = env.DOCKER_HOST;
  engine = new DockerodeEngine(new Docker());
  dir = await tempDir('sifpack-convert-');
  await engine.build(packContext([{ name: 'Dockerfile', data: DOCKERFILE(service('SIFPACK_TEST_BASE_IMAGE')) }], []), { tag: TEST_IMAGE, labels: {}, network: 'none', onLine: () => undefined });
}, 120_000);

afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

describe('sifpack convert (real Docker engine)', () => {
  let sif: string;
  let offset: string;
  let root: string;

  beforeAll(async () => {
    sif = path.join(dir, 'convert-me.sif');
    const r = await sifpack(['convert', TEST_IMAGE, '-o', sif, '--json'], { env });
    expect(r.stderr).not.toMatch(/error/);
    expect(r.code).toBe(0);
    const res = JSON.parse(r.stdout) as { output: string; squasher: string };
    expect(res).toMatchObject({ output: sif, squasher: 'mksquashfs' });
    offset = String(requirePrimaryPartition(await readSif(sif)).descriptor.offset);
    root = path.join(dir, 'rootfs');
    execFileSync('unsquashfs', ['-q', '-o', offset, '-d', root, sif]);
  }, 120_000);

  it('removes its temporary container', { timeout: 120_000 }, async () => {
    expect(await exportContainersLeft()).toBe(0);
  });

  it('siftool sees the def file, both JSON objects and the primary squashfs partition with the right arch', () => {
    const list = execFileSync('siftool', ['list', sif]).toString();
    expect(list).toMatch(/^1\s+\|1\s+\|NONE\s+\|32176-\d+\s+\|Def\.FILE$/m);
    expect(list.match(/JSON\.Generic/g)).toHaveLength(2);
    expect(list).toMatch(/^4\s+\|1\s+\|NONE\s+\|\d+-\d+\s+\|FS \(Squashfs\/\*System\/amd64\)$/m);
    expect(execFileSync('siftool', ['header', sif]).toString()).toMatch(/Primary Architecture:\s+amd64/);
    expect(execFileSync('siftool', ['info', '2', sif]).toString()).toMatch(/Name:\s+inspect-metadata\.json/);
    expect(JSON.parse(execFileSync('siftool', ['dump', '3', sif]).toString())).toEqual({ Env: expect.arrayContaining(['GREETING=hello world', "QUOTE=it's $HOME"]), Entrypoint: ['python3'], Cmd: ['-c', 'print(42)'], Labels: { 'org.example.team': 'lab x', 'org.example.version': '1.2' } });
  });

  it('agrees with a SIF siftool assembles from the same objects and squashfs', async () => {
    const parts = ['def', 'meta', 'oci', 'squashfs'].map((p) => path.join(dir, p));
    parts.forEach((p, i) => execFileSync('sh', ['-c', `siftool dump ${i + 1} "$1" > "$2"`, 'sh', sif, p]));
    const theirs = path.join(dir, 'theirs.sif');
    execFileSync('siftool', ['new', theirs]);
    execFileSync('siftool', ['add', theirs, parts[0]!, '--datatype', '1', '--groupid', '1', '--filename', '']);
    execFileSync('siftool', ['add', theirs, parts[1]!, '--datatype', '6', '--groupid', '1', '--filename', 'inspect-metadata.json']);
    execFileSync('siftool', ['add', theirs, parts[2]!, '--datatype', '6', '--groupid', '1', '--filename', 'oci-config.json']);
    execFileSync('siftool', ['add', theirs, parts[3]!, '--datatype', '4', '--parttype', '2', '--partfs', '1', '--partarch', '2', '--groupid', '1', '--filename', 'rootfs.squashfs']);
    const shape = async (f: string) => (await readSif(f)).descriptors.map((d) => ({ type: d.dataType, name: d.name, size: d.size, group: d.groupId, extra: d.dataType === 0x4004 ? d.extra.subarray(0, 11).toString('hex') : '' }));
    expect(await shape(sif)).toEqual(await shape(theirs));
  });

  it('the root filesystem has /.singularity.d with the right modes and contents, and the image\'s own files intact', () => {
    const ll = execFileSync('unsquashfs', ['-ll', '-o', offset, sif]).toString();
    for (const f of ['env/01-base.sh', 'env/10-docker2singularity.sh', 'env/90-environment.sh', 'env/95-apps.sh', 'env/99-base.sh', 'env/99-runtimevars.sh', 'actions/exec', 'actions/run', 'actions/shell', 'actions/start', 'actions/test', 'runscript', 'startscript']) {
      expect(ll).toMatch(new RegExp(`^-rwxr-xr-x root/root .* squashfs-root/\\.singularity\\.d/${f.replace('.', '\\.')}$`, 'm'));
    }
    expect(ll).toMatch(/^-rw-r--r-- root\/root .* squashfs-root\/\.singularity\.d\/labels\.json$/m);
    for (const [link, target] of [['singularity', '.singularity.d/runscript'], ['environment', '.singularity.d/env/90-environment.sh'], ['.exec', '.singularity.d/actions/exec'], ['.run', '.singularity.d/actions/run'], ['.shell', '.singularity.d/actions/shell'], ['.test', '.singularity.d/actions/test']]) {
      expect(ll).toContain(`squashfs-root/${link} -> ${target}`);
    }
    for (const d of ['dev', 'proc', 'sys', 'tmp', 'var/tmp', 'home', 'root']) expect(ll).toMatch(new RegExp(`^d\\S+ .* squashfs-root/${d}$`, 'm'));
    expect(ll).toMatch(/^drwxrwxrwt .* squashfs-root\/tmp$/m);
    expect(ll).toMatch(/squashfs-root\/etc\/hosts$/m);
    expect(ll).toMatch(/squashfs-root\/etc\/resolv\.conf$/m);
    expect(ll).not.toMatch(/\.dockerenv/);
    // the image's files: spaces, symlink, exec bit, device node, hard link
    expect(ll).toMatch(/squashfs-root\/opt\/my dir\/file with spaces\.txt$/m);
    expect(ll).toMatch(/^lrwxrwxrwx .* squashfs-root\/opt\/link -> my dir$/m);
    expect(ll).toMatch(/^-rwxr-xr-x root\/root .* squashfs-root\/usr\/local\/bin\/tool$/m);
    expect(ll).toMatch(/^crw\S+ root\/root\s+1,\s*3 .* squashfs-root\/opt\/null$/m);
    const a = execFileSync('stat', ['-c', '%i %h', path.join(root, 'opt/a')]).toString();
    const b = execFileSync('stat', ['-c', '%i %h', path.join(root, 'opt/b')]).toString();
    expect(a).toBe(b);
    expect(a.trim().split(' ')[1]).toBe('2');
  });

  it('labels.json, the env script and the runscript say what the image config says', async () => {
    const labels = JSON.parse(await fs.readFile(path.join(root, '.singularity.d/labels.json'), 'utf8')) as Record<string, string>;
    expect(labels).toMatchObject({ 'org.example.team': 'lab x', 'org.example.version': '1.2', 'org.label-schema.build-arch': 'amd64' });
    const envScript = await fs.readFile(path.join(root, '.singularity.d/env/10-docker2singularity.sh'), 'utf8');
    // apptainer's form: ENV as defaults, double-quoted (its interpreter mangles '\'')
    expect(envScript).toContain('export GREETING="${GREETING:-"hello world"}"\n');
    expect(envScript).toContain('export QUOTE="${QUOTE:-"it\'s \\$HOME"}"\n');
  });

  it('chroot + the exec action (as apptainer exec does): the image ENV is visible and python3 -c works', () => {
    const out = execFileSync('chroot', [root, '/.singularity.d/actions/exec', 'python3', '-c', 'import os; print(os.environ["GREETING"], "|", os.environ["QUOTE"], "|", os.environ["LD_LIBRARY_PATH"])']).toString();
    expect(out).toBe('hello world | it\'s $HOME | /.singularity.d/libs\n');
  });

  it('chroot + the run action: ENTRYPOINT with CMD, and arguments replacing CMD', () => {
    expect(execFileSync('chroot', [root, '/.singularity.d/actions/run']).toString()).toBe('42\n');
    expect(execFileSync('chroot', [root, '/.singularity.d/actions/run', '-c', 'import sys; print(sys.argv[1:])', 'a b', '$x']).toString()).toBe("['a b', '$x']\n");
  });

  it('sifpack inspect shows the objects, the def file and the image labels', async () => {
    const r = await sifpack(['inspect', sif, '--json']);
    expect(r.code).toBe(0);
    const rep = JSON.parse(r.stdout) as { header: { arch: string }; objects: { type: string }[]; deffile: string; labels: Record<string, string>; labelsFrom: string };
    expect(rep.header.arch).toBe('amd64');
    expect(rep.objects.map((o) => o.type)).toEqual(['Def.FILE', 'JSON.Generic', 'JSON.Generic', 'FS']);
    expect(rep.deffile).toBe(`bootstrap: docker-daemon\nfrom: ${TEST_IMAGE}\n`);
    expect(rep.labels['org.example.team']).toBe('lab x');
    expect(rep.labelsFrom).toBe('inspect-metadata.json');
  });
});

describe('sifpack convert --compression', () => {
  it.each(['zstd', 'xz'])('%s: the squashfs inside says so, and unsquashfs reads it', async (algo) => {
    const out = path.join(dir, `busybox-${algo}.sif`);
    const r = await sifpack(['convert', service('SIFPACK_TEST_BUSYBOX_IMAGE'), '-o', out, '--compression', algo], { env });
    expect(r.code).toBe(0);
    const off = String(requirePrimaryPartition(await readSif(out)).descriptor.offset);
    expect(execFileSync('unsquashfs', ['-s', '-o', off, out]).toString()).toMatch(new RegExp(`Compression ${algo}`));
    expect(execFileSync('unsquashfs', ['-o', off, '-cat', out, '.singularity.d/env/99-base.sh']).toString()).toContain('/.singularity.d/libs');
  });
});

describe('sifpack convert: bad input, faults, Ctrl-C, memory', () => {
  it('an image the engine does not have: exit 2', async () => {
    const r = await sifpack(['convert', 'sifpack-test/nope:0', '-o', path.join(dir, 'nope.sif')], { env });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('no image sifpack-test/nope:0 in the Docker engine');
    await expect(fs.stat(path.join(dir, 'nope.sif'))).rejects.toThrow();
  });

  it('an existing output without --force: exit 2, file untouched', async () => {
    const f = path.join(dir, 'keep.sif');
    await fs.writeFile(f, 'keep');
    const r = await sifpack(['convert', TEST_IMAGE, '-o', f], { env });
    expect(r.code).toBe(2);
    expect(await fs.readFile(f, 'utf8')).toBe('keep');
  });

  it('no Docker engine at DOCKER_HOST: exit 1 with a hint', async () => {
    const r = await sifpack(['convert', TEST_IMAGE, '-o', path.join(dir, 'x.sif')], { env: { DOCKER_HOST: `unix://${dir}/no.sock` } });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/cannot reach the Docker engine[\s\S]*DOCKER_HOST/);
  });

  it('without mksquashfs >= 4.5: tar2sqfs (squashfs-tools-ng) writes the squashfs in the scratch directory, which ends empty, and what a killed run left there is swept', async () => {
    // The fallback for sites with an old mksquashfs: the runner finds no mksquashfs, as on such a host.
    const real = new NodeProcessRunner();
    const runner = { run: real.run.bind(real), stream: real.stream.bind(real), which: async (c: string, e?: NodeJS.ProcessEnv) => (c === 'mksquashfs' ? undefined : real.which(c, e)) };
    const scratch = await fs.mkdtemp(path.join(dir, 'scratch-'));
    const out = path.join(dir, 'via-tar2sqfs.sif');
    // A killed run's squashfs in the scratch directory: a PID that is not running, and the name the writer's temp files get.
    const stale = path.join(scratch, `.${path.basename(out)}.999999999-0123456789ab.tmp.squashfs`);
    await fs.writeFile(stale, 'left by a killed run');
    const res = await convertImage(engine, runner, { image: TEST_IMAGE, output: out, compression: 'gzip', force: false, sifpackVersion: 'test', tmpdir: scratch });
    expect(res.squasher).toBe('tar2sqfs');
    expect(await fs.readdir(scratch)).toEqual([]);
    const off = String(requirePrimaryPartition(await readSif(out)).descriptor.offset);
    const root2 = path.join(dir, 'rootfs-tar2sqfs');
    execFileSync('unsquashfs', ['-q', '-o', off, '-d', root2, out]);
    expect(await fs.readFile(path.join(root2, 'opt/my dir/file with spaces.txt'), 'utf8')).toBe('spaces\n');
    expect((await fs.stat(path.join(root2, '.singularity.d/actions/exec'))).mode & 0o777).toBe(0o755);
  }, 120_000);

  it('Ctrl-C mid-conversion: exit 130, no output, no temp file, no container left', async () => {
    const out = path.join(dir, 'interrupted', 'base.sif');
    await fs.mkdir(path.dirname(out));
    const { code } = await interruptWhen(['convert', service('SIFPACK_TEST_BASE_IMAGE'), '-o', out], 'exporting', 1500, { env });
    expect(code).toBe(130);
    expect(await fs.readdir(path.dirname(out))).toEqual([]);
    expect(await exportContainersLeft()).toBe(0);
  }, 60_000);

  it('memory stays flat in the image size: a 217 MiB and a ~520 MiB image peak alike', async () => {
    const big = 'sifpack-test/convert-big:1';
    await engine.build(packContext([{ name: 'Dockerfile', data: `FROM ${service('SIFPACK_TEST_BASE_IMAGE')}\nRUN head -c 300000000 /dev/urandom > /big.bin\n` }], []), { tag: big, labels: {}, network: 'none', onLine: () => undefined });
    const run = async (image: string, out: string) => peakRss(spawn(process.execPath, [CLI, 'convert', image, '-o', path.join(dir, out), '-q'], { env: { ...process.env, ...env } }));
    const small = await run(service('SIFPACK_TEST_BASE_IMAGE'), 'base.sif');
    const large = await run(big, 'big.sif');
    expect(small.code).toBe(0);
    expect(large.code).toBe(0);
    const sizes = [(await fs.stat(path.join(dir, 'base.sif'))).size, (await fs.stat(path.join(dir, 'big.sif'))).size];
    expect(sizes[1]! - sizes[0]!).toBeGreaterThan(250 * 2 ** 20);
    // 300 MB more image, same memory: the peak may wobble by GC timing, not by size.
    expect(large.peakKb - small.peakKb).toBeLessThan(40 * 1024);
    expect(large.peakKb).toBeLessThan(250 * 1024);
    await engine.removeImage(big);
    await fs.rm(path.join(dir, 'big.sif'));
  }, 240_000);
});
