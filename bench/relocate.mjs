#!/usr/bin/env node
/**
 * bench/relocate.mjs — what relocating a --from-prefix env in the stream
 * costs. The same generated prefix is packed by sifpack's packer (the stream
 * the Docker context and the def's tarball come from) three ways, alternating,
 * RUNS times each, into a sink that only counts bytes:
 *   - relocate: the old prefix rewritten to /opt/env (text, binary, .pyc, RECORD, links);
 *   - keep: --keep-prefix-path, the same walk, modes and owners, nothing rewritten;
 *   - GNU tar: `tar -cf - .` of the same tree to /dev/null (the floor).
 * With a Docker engine and a base image it also times one full
 * `sifpack build --from-prefix` each way, to put the difference in proportion.
 *
 * The prefix: FILES files, MIB MiB in all, under lib/pkgN/ — 90% random
 * bytes without the prefix, 5% text files that name it, 3% ELF-like files with
 * it in a C string, 2% .pyc-like files with it in a marshalled string — plus a
 * pip dist-info RECORD and symlinks.
 *
 * Each full build starts from nothing: the SIF and the Docker image are
 * removed after it (so Docker's layer cache cannot serve the next one, and a
 * 2 GB run needs room for one image at a time, not six).
 *
 * Usage:
 *   npm run build && node bench/relocate.mjs [FILES] [MIB] [RUNS] [BASE_IMAGE]
 *   (BASE_IMAGE and DOCKER_HOST for the full-build figures; FULL_RUNS, default
 *   min(RUNS, 3), full builds each way; BENCH_DIR, default the checkout, where
 *   the prefix is generated — not under /tmp, /var/tmp or $HOME, where the
 *   baseline's --keep-prefix-path is refused)
 *   e.g. the size: BENCH_DIR=/srv node bench/relocate.mjs 30000 2048 3 IMAGE
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const FILES = Number(process.argv[2] ?? 30000);
const MIB = Number(process.argv[3] ?? 512);
const RUNS = Number(process.argv[4] ?? 5);
const BASE = process.argv[5];
const { packContext, emptyRelocationReport } = await import(path.join(root, 'dist', 'runtime', 'build-context.js'));

// Not under /tmp or $HOME, so --keep-prefix-path is allowed for the full-build comparison.
const work = await fs.mkdtemp(path.join(process.env.BENCH_DIR ?? root, '.bench-relocate-'));
// A crash must not leave gigabytes behind.
process.once('exit', () => execFileSync('rm', ['-rf', work]));
const load = () => os.loadavg().map((x) => x.toFixed(1)).join(' ');
console.error(`machine: ${os.cpus().length} × ${os.cpus()[0]?.model}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}; load average at start ${load()}`);
console.error(execFileSync('df', ['-h', work]).toString().trim());
const prefix = path.join(work, 'miniforge3', 'envs', 'big');
const pool = randomBytes(4 * 2 ** 20);
const avg = Math.floor((MIB * 2 ** 20) / FILES);
let written = 0;
const t0 = Date.now();
for (let i = 0; i < FILES; i++) {
  const dir = path.join(prefix, 'lib', `pkg${i % 300}`);
  if (i < 300) await fs.mkdir(dir, { recursive: true });
  const size = Math.max(64, Math.floor(avg * (0.5 + ((i * 7919) % 1000) / 1000)));
  const off = (i * 104729) % (pool.length - size);
  const r = i % 100;
  let name;
  let data;
  if (r < 5) {
    name = `mod${i}.py`;
    const line = `PATH = "${prefix}/lib/pkg${i % 300}"\n`;
    data = Buffer.from(line.repeat(Math.max(1, Math.floor(size / line.length))));
  } else if (r < 8) {
    name = `lib${i}.so`;
    data = Buffer.concat([Buffer.from('\x7fELF\x02\x01\x01\0', 'latin1'), pool.subarray(off, off + size), Buffer.from(`\0${prefix}/lib\0`)]);
  } else if (r < 10) {
    name = `m${i}.cpython-311.pyc`;
    const s = Buffer.from(`${prefix}/lib/pkg${i % 300}/m${i}.py`);
    const head = Buffer.alloc(16);
    data = Buffer.concat([head, Buffer.from([0xe3]), pool.subarray(off, off + size).map((b) => (b === 0x7a ? 0 : b)), Buffer.from([0x7a, s.length]), s, Buffer.from([0x4e])]);
  } else {
    name = `blob${i}.bin`;
    data = pool.subarray(off, off + size);
  }
  await fs.writeFile(path.join(dir, name), data);
  written += data.length;
}
const sp = path.join(prefix, 'lib', 'python3.11', 'site-packages', 'x-1.0.dist-info');
await fs.mkdir(sp, { recursive: true });
await fs.writeFile(path.join(sp, 'RECORD'), '../../../pkg0/mod0.py,sha256=x,1\n');
await fs.mkdir(path.join(prefix, 'conda-meta'), { recursive: true });
await fs.writeFile(path.join(prefix, 'conda-meta', 'x-1.0-0.json'), JSON.stringify({ name: 'x', version: '1.0', build: '0', subdir: 'linux-64', depends: [] }));
await fs.mkdir(path.join(prefix, 'bin'));
await fs.symlink(`${prefix}/lib/pkg0/mod0.py`, path.join(prefix, 'bin', 'abs-link'));
// The env's python, as conda puts it in bin/: here the base image's (the build's %test runs `python`).
await fs.symlink('/usr/bin/python3', path.join(prefix, 'bin', 'python'));
console.error(`prefix: ${FILES} files, ${(written / 2 ** 20).toFixed(0)} MiB, written in ${((Date.now() - t0) / 1000).toFixed(1)}s`);

async function pack(to) {
  const t = { from: prefix, to, fileModes: new Map(), skip: new Set(), report: emptyRelocationReport() };
  let bytes = 0;
  const cpu0 = process.cpuUsage();
  const start = process.hrtime.bigint();
  await pipeline(
    packContext([], [{ name: 'prefix', source: prefix, prefix: t }]),
    new Writable({
      write(chunk, _enc, cb) {
        bytes += chunk.length;
        cb();
      },
    }),
  );
  const cpu = process.cpuUsage(cpu0);
  // CPU seconds of this process too: on a shared, loaded machine wall time is mostly other people's work.
  return { s: Number(process.hrtime.bigint() - start) / 1e9, cpu: (cpu.user + cpu.system) / 1e6, bytes, report: t.report };
}
function gnuTar() {
  const start = process.hrtime.bigint();
  execFileSync('sh', ['-c', 'tar -cf - -C "$1" . > /dev/null', 'sh', prefix]);
  return { s: Number(process.hrtime.bigint() - start) / 1e9 };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const res = { relocate: [], keep: [], tar: [], relocateCpu: [], keepCpu: [] };
let report;
for (let i = 0; i < RUNS; i++) {
  const r = await pack('/opt/env');
  report = r.report;
  res.relocate.push(r.s);
  res.relocateCpu.push(r.cpu);
  const k = await pack(prefix);
  res.keep.push(k.s);
  res.keepCpu.push(k.cpu);
  res.tar.push(gnuTar().s);
  console.error(`run ${i + 1}: relocate ${r.s.toFixed(2)}s keep ${res.keep.at(-1).toFixed(2)}s tar ${res.tar.at(-1).toFixed(2)}s (load ${load()})`);
}
const row = (k, xs) => `| ${k} | ${median(xs).toFixed(2)} | ${Math.min(...xs).toFixed(2)} | ${Math.max(...xs).toFixed(2)} |`;
if (RUNS > 0) {
console.error(`rewritten: ${report.text} text, ${report.binary} binary, ${report.pyc} pyc, ${report.links} links, ${report.records} RECORDs; dropped ${report.dropped.length}, opaque ${report.opaque.length}`);
console.log(`| what | median of ${RUNS} (s) | min | max |\n|---|---:|---:|---:|`);
console.log(row('pack, relocating to /opt/env', res.relocate));
console.log(row('pack, --keep-prefix-path (same walk, nothing rewritten)', res.keep));
console.log(row('floor: GNU tar -cf of the same tree to /dev/null', res.tar));
console.log(row('CPU seconds (user+sys), pack relocating', res.relocateCpu));
console.log(row('CPU seconds (user+sys), pack --keep-prefix-path', res.keepCpu));
}

if (BASE && process.env.DOCKER_HOST) {
  const cli = path.join(root, 'dist', 'cli.js');
  const build = (extra, out) => {
    const sif = path.join(work, `${out}.sif`);
    const tag = `issue10-bench:${out}`;
    const start = Date.now();
    const r = spawnSync(process.execPath, [cli, 'build', '--from-prefix', prefix, '--builder', 'docker', '--base-image', BASE, '--force', '--tag', tag, '-o', sif, ...extra], { cwd: '/', env: { ...process.env, SIFPACK_DOCKER_NETWORK: 'none' } });
    const s = (Date.now() - start) / 1000;
    if (r.status !== 0) throw new Error(r.stderr.toString());
    const size = spawnSync('stat', ['-c', '%s', sif]).stdout.toString().trim();
    spawnSync('docker', ['rmi', '-f', tag]);
    spawnSync('rm', ['-f', sif]);
    return { s, size };
  };
  const full = { relocate: [], keep: [] };
  for (let i = 0; i < Number(process.env.FULL_RUNS ?? Math.min(RUNS, 3)); i++) {
    const a = build([], 'relocated');
    full.relocate.push(a.s);
    const b = build(['--keep-prefix-path'], 'kept');
    full.keep.push(b.s);
    console.error(`full build ${i + 1}: relocate ${a.s.toFixed(1)}s (SIF ${(a.size / 2 ** 20).toFixed(0)} MiB) keep ${b.s.toFixed(1)}s (SIF ${(b.size / 2 ** 20).toFixed(0)} MiB) (load ${load()})`);
  }
  console.log(row('full build --from-prefix (Docker, SIF by sifpack), relocating', full.relocate));
  console.log(row('full build --from-prefix --keep-prefix-path', full.keep));
  console.log(`relocation adds ${((median(full.relocate) / median(full.keep) - 1) * 100).toFixed(1)}% to the median full build`);
}
console.error(`load average at the end ${load()}`);
await fs.rm(work, { recursive: true, force: true });
