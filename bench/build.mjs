#!/usr/bin/env node
/**
 * bench/build.mjs — `sifpack build --from-prefix` through the Docker engine
 * (converted to a SIF by sifpack), timed as a full build (--force) and as an
 * unchanged rebuild (the cache hit), alternating in one run. Median of RUNS
 * runs each, the built CLI as users run it.
 *
 * The prefix is generated like an installed env of C libraries and tools:
 * conda-meta records, an executable on bin/, 3000 files of 32 KiB of random
 * bytes under lib/ (96 MiB that squashfs cannot shrink). (The bundled example
 * prefix holds metadata only, so its image's %test import step would fail.)
 *
 * Usage (needs a Docker engine and a pinned local base image; the test
 * services give both):
 *   npm run build && DOCKER_HOST=unix://... node bench/build.mjs BASE_IMAGE [RUNS]
 */
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const base = process.argv[2];
const RUNS = Number(process.argv[3] ?? 5);
if (!base || !process.env.DOCKER_HOST) {
  console.error('usage: DOCKER_HOST=unix://... node bench/build.mjs BASE_IMAGE [RUNS]');
  process.exit(2);
}
const work = await fs.mkdtemp(path.join(os.tmpdir(), 'sifpack-bench-build-'));
const prefix = path.join(work, 'envs', 'tools');
await fs.mkdir(path.join(prefix, 'conda-meta'), { recursive: true });
await fs.mkdir(path.join(prefix, 'bin'), { recursive: true });
for (const [name, version] of [['libfoo', '1.2.3'], ['bartool', '4.5'], ['zlib', '1.3.1']]) {
  await fs.writeFile(path.join(prefix, 'conda-meta', `${name}-${version}-0.json`), JSON.stringify({ name, version, build: '0', subdir: 'linux-64', channel: 'https://conda.anaconda.org/conda-forge/linux-64', md5: '0'.repeat(32), depends: [] }));
}
await fs.writeFile(path.join(prefix, 'bin', 'bartool'), '#!/bin/sh\necho bartool\n', { mode: 0o755 });
const { randomBytes } = await import('node:crypto');
for (let d = 0; d < 30; d++) {
  const dir = path.join(prefix, 'lib', `pkg${d}`);
  await fs.mkdir(dir, { recursive: true });
  for (let f = 0; f < 100; f++) await fs.writeFile(path.join(dir, `data${f}.bin`), randomBytes(32 * 1024));
}
const env = { ...process.env, SIFPACK_DOCKER_NETWORK: process.env.SIFPACK_DOCKER_NETWORK ?? 'none' };
const build = (...extra) => {
  const t0 = process.hrtime.bigint();
  const out = execFileSync(process.execPath, [path.join(root, 'dist/cli.js'), 'build', '--from-prefix', prefix, '--builder', 'docker', '--base-image', base, '-o', 'tools.sif', '--json', '-q', ...extra], { cwd: work, env, stdio: ['ignore', 'pipe', 'inherit'] });
  const res = JSON.parse(out.toString());
  return { wall: Number(process.hrtime.bigint() - t0) / 1e9, ...res };
};
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

build('--force'); // warm the engine's layer cache for the base image
const full = [];
const hit = [];
for (let i = 0; i < RUNS; i++) {
  const f = build('--force');
  if (f.cached) throw new Error('a --force build reported a cache hit');
  full.push(f.wall);
  const h = build();
  if (!h.cached) throw new Error('an unchanged rebuild was not a cache hit');
  hit.push(h.wall);
}
const size = (await fs.stat(path.join(work, 'tools.sif'))).size;
await fs.rm(work, { recursive: true, force: true });
console.log(`machine: ${os.cpus().length}x ${os.cpus()[0]?.model ?? 'cpu'}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}`);
console.log(`sifpack build --from-prefix PREFIX (3000 files, 96 MiB) --builder docker --base-image ${base}; SIF ${(size / 2 ** 20).toFixed(0)} MiB; median of ${RUNS}`);
console.log(`  full build (--force: docker build + convert) ${median(full).toFixed(2)} s  (min ${Math.min(...full).toFixed(2)}, max ${Math.max(...full).toFixed(2)})`);
console.log(`  unchanged rebuild (cache hit)               ${median(hit).toFixed(2)} s  (min ${Math.min(...hit).toFixed(2)}, max ${Math.max(...hit).toFixed(2)})`);
