#!/usr/bin/env node
/**
 * bench/push-pull.mjs — `sifpack push` and `sifpack pull` of a 500 MiB SIF
 * through a loopback docker-registry, against curl moving the same blob
 * through the same registry API in the same run (upload: POST, one streamed
 * PATCH, PUT ?digest=; download: GET blob), alternating. Also the cached pull
 * (a hard link from the cache) and the peak RSS of each sifpack process
 * (GNU time's "Maximum resident set size"). Median of RUNS runs.
 *
 * curl is given the digest (computed once, outside the timing); sifpack
 * hashes while it streams, as a user's push does.
 *
 * Usage: npm run build && node bench/push-pull.mjs [RUNS] [MiB]
 * (needs docker-registry, curl, /usr/bin/time; starts and stops its own registry)
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const RUNS = Number(process.argv[2] ?? 5);
const MIB = Number(process.argv[3] ?? 500);
const { SifWriter } = await import(path.join(root, 'dist/sif/writer.js'));
const { randomStream } = await (async () => {
  const { Readable } = await import('node:stream');
  const { randomFillSync } = await import('node:crypto');
  return {
    randomStream: (bytes) => {
      let left = bytes;
      return new Readable({ read() { if (left <= 0) return void this.push(null); const n = Math.min(1 << 20, left); left -= n; this.push(randomFillSync(Buffer.allocUnsafe(n))); } });
    },
  };
})();

const work = await fs.mkdtemp(path.join(os.tmpdir(), 'sifpack-bench-oras-'));
const port = await new Promise((r) => { const s = net.createServer(); s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => r(p)); }); });
const host = `127.0.0.1:${port}`;
await fs.writeFile(path.join(work, 'registry.yml'), `version: 0.1\nlog: { level: error }\nstorage: { filesystem: { rootdirectory: ${work}/data }, delete: { enabled: true } }\nhttp: { addr: "${host}" }\n`);
const registry = spawn('docker-registry', ['serve', path.join(work, 'registry.yml')], { stdio: 'ignore' });
for (let i = 0; i < 100; i++) {
  if (await fetch(`http://${host}/v2/`).then((r) => r.ok, () => false)) break;
  await new Promise((r) => setTimeout(r, 200));
}

const sif = path.join(work, 'big.sif');
const w = await SifWriter.create(sif);
await w.writePartition(randomStream(MIB * 1024 * 1024), { arch: 'amd64' });
await w.finish();
const size = (await fs.stat(sif)).size;
const digest = await new Promise((res) => { const h = createHash('sha256'); createReadStream(sif).on('data', (b) => h.update(b)).on('end', () => res(`sha256:${h.digest('hex')}`)); });

const secs = (t0) => Number(process.hrtime.bigint() - t0) / 1e9;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const mbps = (s) => size / 2 ** 20 / s;

// GNU time writes to stderr; run through a shell-free wrapper that captures both.
function timed(args, cwd, env) {
  const t0 = process.hrtime.bigint();
  const r = spawnSyncCapture('/usr/bin/time', ['-f', 'MAXRSS %M CPU %U %S', process.execPath, path.join(root, 'dist/cli.js'), ...args, '-q', '--json'], cwd, { PATH: process.env.PATH, HOME: work, ...env });
  const wall = secs(t0);
  if (r.status !== 0) throw new Error(`sifpack ${args.join(' ')} failed: ${r.stderr}`);
  const rss = Number(/MAXRSS (\d+)/.exec(r.stderr)[1]) / 1024;
  const cpu = Number(/CPU ([\d.]+) ([\d.]+)/.exec(r.stderr)[1]) + Number(/CPU ([\d.]+) ([\d.]+)/.exec(r.stderr)[2]);
  return { wall, rss, cpu, res: JSON.parse(r.stdout) };
}
function spawnSyncCapture(cmd, args, cwd, env) {
  return spawnSync(cmd, args, { cwd, env, encoding: 'utf8' });
}

/** curl under GNU time; returns stdout, adds its CPU seconds to `acc`. */
function curl(args, acc) {
  const r = spawnSync('/usr/bin/time', ['-f', 'CPU %U %S', 'curl', ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`curl ${args.join(' ')}: ${r.stderr}`);
  const m = /CPU ([\d.]+) ([\d.]+)/.exec(r.stderr);
  acc.cpu += Number(m[1]) + Number(m[2]);
  return r.stdout;
}
function curlPush(repo) {
  const acc = { cpu: 0 };
  const t0 = process.hrtime.bigint();
  const hdr = curl(['-sS', '-D', '-', '-o', '/dev/null', '-X', 'POST', `http://${host}/v2/${repo}/blobs/uploads/`], acc);
  let loc = /^location:\s*(\S+)/im.exec(hdr)[1];
  const patched = curl(['-sS', '-D', '-', '-o', '/dev/null', '-X', 'PATCH', '-H', 'Content-Type: application/octet-stream', '-T', sif, loc], acc);
  loc = /^location:\s*(\S+)/im.exec(patched)[1];
  const code = curl(['-sS', '-o', '/dev/null', '-w', '%{http_code}', '-X', 'PUT', `${loc}&digest=${digest}`], acc);
  if (code !== '201') throw new Error(`curl PUT answered ${code}`);
  return { wall: secs(t0), cpu: acc.cpu };
}
function curlPull(repo, out) {
  const acc = { cpu: 0 };
  const t0 = process.hrtime.bigint();
  curl(['-sS', '-f', '-o', out, `http://${host}/v2/${repo}/blobs/${digest}`], acc);
  return { wall: secs(t0), cpu: acc.cpu };
}

const rows = { cPullSum: [], sPush: [], cPush: [], sPull: [], cPull: [], cached: [], cachedInner: [], pushRss: [], pullRss: [], sPushCpu: [], cPushCpu: [], sPullCpu: [], cPullCpu: [], pushInner: [], pullInner: [], startWall: [], startCpu: [] };
const load0 = os.loadavg()[0];
for (let i = 0; i < RUNS; i++) {
  // A fresh cwd and cache each run: sifpack knows nothing, so it hashes and uploads everything.
  const cwd = await fs.mkdtemp(path.join(work, 'run-'));
  const env = { XDG_CACHE_HOME: path.join(cwd, 'cache') };
  // Who goes first alternates, and every download is removed as soon as it was
  // checked: on this VM a write into pages the kernel just freed costs a
  // fraction of one into fresh pages, so both sides must get the same kind.
  const sifpackPush = () => {
    const push = timed(['push', sif, `oras://${host}/bench/s${i}:1`], cwd, env);
    if (push.res.bytesUploaded !== size) throw new Error(`push uploaded ${push.res.bytesUploaded} of ${size}`);
    rows.sPush.push(push.wall); rows.pushRss.push(push.rss); rows.sPushCpu.push(push.cpu); rows.pushInner.push(push.res.seconds);
  };
  const curlPushRun = () => {
    const cp = curlPush(`bench/c${i}`);
    rows.cPush.push(cp.wall); rows.cPushCpu.push(cp.cpu);
  };
  const sifpackPull = async () => {
    const out = path.join(cwd, 'p.sif');
    const pull = timed(['pull', `oras://${host}/bench/s${i}:1`, '-o', out], cwd, env);
    if (pull.res.cached) throw new Error('first pull came from the cache');
    rows.sPull.push(pull.wall); rows.pullRss.push(pull.rss); rows.sPullCpu.push(pull.cpu); rows.pullInner.push(pull.res.seconds);
    execFileSync('cmp', [sif, out]);
    const hit = timed(['pull', `oras://${host}/bench/s${i}:1`, '-o', path.join(cwd, 'h.sif')], cwd, env);
    if (!hit.res.cached) throw new Error('second pull missed the cache');
    rows.cached.push(hit.wall); rows.cachedInner.push(hit.res.seconds);
    await fs.rm(path.join(cwd, 'cache'), { recursive: true, force: true });
    await fs.rm(out);
    await fs.rm(path.join(cwd, 'h.sif'));
  };
  const curlPullRun = async () => {
    const out = path.join(cwd, 'c.sif');
    const cg = curlPull(`bench/c${i}`, out);
    rows.cPull.push(cg.wall); rows.cPullCpu.push(cg.cpu);
    execFileSync('cmp', [sif, out]);
    await fs.rm(out);
    // What a verified download costs by hand: curl, then sha256sum of the file.
    const t0 = process.hrtime.bigint();
    curlPull(`bench/c${i}`, out);
    const sum = execFileSync('sha256sum', [out], { encoding: 'utf8' }).split(' ')[0];
    rows.cPullSum.push(secs(t0));
    if (`sha256:${sum}` !== digest) throw new Error('curl download does not match the digest');
    await fs.rm(out);
  };
  if (i % 2 === 0) {
    sifpackPush();
    curlPushRun();
  } else {
    curlPushRun();
    sifpackPush();
  }
  // What every sifpack process pays before any work: Node and the CLI's modules loading.
  const t0 = process.hrtime.bigint();
  const v = spawnSync('/usr/bin/time', ['-f', 'CPU %U %S', process.execPath, path.join(root, 'dist/cli.js'), '--version'], { encoding: 'utf8' });
  rows.startWall.push(secs(t0));
  const vm = /CPU ([\d.]+) ([\d.]+)/.exec(v.stderr);
  rows.startCpu.push(Number(vm[1]) + Number(vm[2]));
  if (i % 2 === 0) {
    await sifpackPull();
    await curlPullRun();
  } else {
    await curlPullRun();
    await sifpackPull();
  }
  await fs.rm(cwd, { recursive: true, force: true });
  process.stderr.write(`run ${i + 1}/${RUNS}: push ${rows.sPush.at(-1).toFixed(2)}s (curl ${rows.cPush.at(-1).toFixed(2)}s), pull ${rows.sPull.at(-1).toFixed(2)}s (curl ${rows.cPull.at(-1).toFixed(2)}s), cached ${rows.cached.at(-1).toFixed(2)}s, rss ${rows.pushRss.at(-1).toFixed(0)}/${rows.pullRss.at(-1).toFixed(0)} MB\n`);
}
registry.kill();
await fs.rm(work, { recursive: true, force: true });

const line = (what, xs, unit = 's') => `| ${what} | ${median(xs).toFixed(2)} | ${Math.min(...xs).toFixed(2)} | ${Math.max(...xs).toFixed(2)} |${unit === 's' ? ` ${mbps(median(xs)).toFixed(0)} MiB/s |` : ' |'}`;
console.log(`SIF ${size} bytes, ${RUNS} runs, node ${process.version}`);
console.log(`| what | median (s) | min | max | throughput |\n|---|---:|---:|---:|---:|`);
console.log(line('sifpack push (process, hashing included)', rows.sPush));
console.log(line('curl upload (POST, PATCH, PUT ?digest)', rows.cPush));
console.log(line('sifpack pull (first: download, verify, into cache, link)', rows.sPull));
console.log(line('curl GET blob', rows.cPull));
console.log(line('curl GET blob, then sha256sum of the file (a verified download by hand)', rows.cPullSum));
console.log(line('sifpack push, in-process seconds (--json: transfer only)', rows.pushInner));
console.log(line('sifpack pull, in-process seconds (--json: transfer only)', rows.pullInner));
console.log(line('sifpack --version (start-up alone), process wall', rows.startWall, 'x'));
console.log(line('sifpack pull, cached (hard link), process wall', rows.cached, 'x'));
console.log(line('sifpack pull, cached, in-process seconds (--json)', rows.cachedInner, 'x'));
console.log(`CPU seconds (user+sys), median: sifpack push ${median(rows.sPushCpu).toFixed(2)} vs curl ${median(rows.cPushCpu).toFixed(2)}; sifpack pull ${median(rows.sPullCpu).toFixed(2)} vs curl ${median(rows.cPullCpu).toFixed(2)}`);
console.log(`load average (1 min) at start ${load0.toFixed(1)}, at end ${os.loadavg()[0].toFixed(1)}, ${os.cpus().length} CPUs`);
console.log(`push/curl throughput ratio ${(median(rows.cPush) / median(rows.sPush)).toFixed(2)}; pull/curl ${(median(rows.cPull) / median(rows.sPull)).toFixed(2)}; pull/(curl+sha256sum) ${(median(rows.cPullSum) / median(rows.sPull)).toFixed(2)}`);
console.log(`in-process (without start-up) push/curl ${(median(rows.cPush) / median(rows.pushInner)).toFixed(2)}; pull/curl ${(median(rows.cPull) / median(rows.pullInner)).toFixed(2)}; start-up CPU seconds median ${median(rows.startCpu).toFixed(2)}`);
console.log(`peak RSS MB: push median ${median(rows.pushRss).toFixed(0)} max ${Math.max(...rows.pushRss).toFixed(0)}; pull median ${median(rows.pullRss).toFixed(0)} max ${Math.max(...rows.pullRss).toFixed(0)}`);
