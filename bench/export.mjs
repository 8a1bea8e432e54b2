#!/usr/bin/env node
/**
 * bench/export.mjs — how long `sifpack export -p` takes on a 500-package prefix.
 *
 * Builds (once, in a temp dir) a prefix shaped like a big real one: 500
 * conda-meta records of realistic size (files + paths_data, ~40 files each),
 * a history of 30 transactions and 60 pip dist-infos. Then, in one run and
 * alternating so machine noise hits all alike, times:
 *   sifpack  — exportEnvironment() --from-history with --lock, in-process
 *   cli      — the built CLI as a user runs it (node start-up included)
 *   floor    — Node reading and JSON.parse-ing the same records, nothing else
 *   python   — python3 json.load of every record (the least conda itself does)
 * Prints the median of RUNS runs (default 9) of each.
 *
 * Usage: npm run build && node bench/export.mjs [RUNS]
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { exportEnvironment } = await import(path.join(root, 'dist/env/export.js'));
const { NodeProcessRunner } = await import(path.join(root, 'dist/runtime/process.js'));
const RUNS = Number(process.argv[2] ?? 9);
const N = 500;

const hex = (s, n) => createHash('sha256').update(s).digest('hex').slice(0, n);

async function makePrefix(dir) {
  const meta = path.join(dir, 'conda-meta');
  const sp = path.join(dir, 'lib/python3.11/site-packages');
  await fs.mkdir(meta, { recursive: true });
  await fs.mkdir(sp, { recursive: true });
  const hist = [];
  for (let i = 0; i < N; i++) {
    const name = `pkg-${String(i).padStart(3, '0')}`;
    const version = `1.${i % 17}.${i % 5}`;
    const build = `py311h${hex(name, 7)}_0`;
    const fn = `${name}-${version}-${build}.conda`;
    const files = Array.from({ length: 40 }, (_, k) => `lib/python3.11/site-packages/${name.replace(/-/g, '_')}/module_${k}.py`);
    const record = {
      build, build_number: 0, channel: 'https://conda.anaconda.org/conda-forge/linux-64', constrains: [],
      depends: i > 0 ? [`pkg-${String(i - 1).padStart(3, '0')} >=1.0`, 'python >=3.11,<3.12.0a0'] : [],
      extracted_package_dir: `/home/u/miniforge3/pkgs/${name}-${version}-${build}`, features: '', files, fn,
      license: 'BSD-3-Clause', link: { source: `/home/u/miniforge3/pkgs/${name}-${version}-${build}`, type: 1 },
      md5: hex(`md5${fn}`, 32), name, package_tarball_full_path: `/home/u/miniforge3/pkgs/${fn}`,
      paths_data: { paths: files.map((f) => ({ _path: f, path_type: 'hardlink', sha256: hex(f, 64), size_in_bytes: 4096 })), paths_version: 1 },
      requested_spec: i % 25 === 0 ? name : 'None', sha256: hex(`sha${fn}`, 64), size: 100000, subdir: 'linux-64',
      timestamp: 1707225342000, track_features: '', url: `https://conda.anaconda.org/conda-forge/linux-64/${fn}`, version,
    };
    await fs.writeFile(path.join(meta, `${name}-${version}-${build}.json`), JSON.stringify(record, null, 2));
  }
  for (let t = 0; t < 30; t++) {
    const specs = Array.from({ length: 3 }, (_, k) => `'pkg-${String((t * 16 + k) % N).padStart(3, '0')}'`);
    hist.push(`==> 2024-01-${String((t % 28) + 1).padStart(2, '0')} 10:00:00 <==`, `# cmd: conda install -c conda-forge ${specs.join(' ')}`, '# conda version: 24.1.2', `# update specs: [${specs.join(', ')}]`);
  }
  await fs.writeFile(path.join(meta, 'history'), `${hist.join('\n')}\n`);
  for (let i = 0; i < 60; i++) {
    const di = path.join(sp, `pippkg${i}-0.${i}.0.dist-info`);
    await fs.mkdir(di, { recursive: true });
    await fs.writeFile(path.join(di, 'INSTALLER'), 'pip\n');
    await fs.writeFile(path.join(di, 'METADATA'), `Metadata-Version: 2.1\nName: pippkg${i}\nVersion: 0.${i}.0\n`);
  }
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ms = (t0) => Number(process.hrtime.bigint() - t0) / 1e6;

const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sifpack-bench-export-'));
const prefix = path.join(dir, 'envs', 'big');
await makePrefix(prefix);
const metaBytes = (await Promise.all((await fs.readdir(path.join(prefix, 'conda-meta'))).map((f) => fs.stat(path.join(prefix, 'conda-meta', f)).then((s) => s.size)))).reduce((a, b) => a + b, 0);

const runner = new NodeProcessRunner();
const times = { sifpack: [], cli: [], floor: [], python: [] };
const pyScript = 'import json,os,sys\nd=sys.argv[1]\nr=[json.load(open(os.path.join(d,f))) for f in sorted(os.listdir(d)) if f.endswith(".json")]\nprint(len(r))';
for (let i = 0; i < RUNS; i++) {
  let t0 = process.hrtime.bigint();
  const res = await exportEnvironment({ prefix, via: 'prefix', options: { fromHistory: true, noBuilds: false, allowLocal: false }, lock: true, env: {}, cwd: dir }, runner);
  times.sifpack.push(ms(t0));
  if (!res.explicitLock.includes('pkg-499')) throw new Error('bench: export incomplete');

  t0 = process.hrtime.bigint();
  execFileSync(process.execPath, [path.join(root, 'dist/cli.js'), 'export', '-p', prefix, '--from-history', '-q'], { stdio: ['ignore', 'ignore', 'inherit'] });
  times.cli.push(ms(t0));

  t0 = process.hrtime.bigint();
  const metaDir = path.join(prefix, 'conda-meta');
  const names = (await fs.readdir(metaDir)).filter((f) => f.endsWith('.json'));
  await Promise.all(names.map(async (f) => JSON.parse(await fs.readFile(path.join(metaDir, f), 'utf8'))));
  times.floor.push(ms(t0));

  t0 = process.hrtime.bigint();
  execFileSync('python3', ['-c', pyScript, metaDir], { stdio: ['ignore', 'ignore', 'inherit'] });
  times.python.push(ms(t0));
}
await fs.rm(dir, { recursive: true, force: true });

console.log(`machine: ${os.cpus().length}x ${os.cpus()[0]?.model ?? 'cpu'}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}`);
console.log(`prefix: ${N} conda records (${(metaBytes / 2 ** 20).toFixed(1)} MiB of conda-meta), 30 history transactions, 60 pip dist-infos`);
console.log(`median of ${RUNS} runs, milliseconds:`);
for (const [k, v] of Object.entries(times)) console.log(`  ${k.padEnd(8)} ${median(v).toFixed(1).padStart(8)}   (min ${Math.min(...v).toFixed(1)}, max ${Math.max(...v).toFixed(1)})`);
