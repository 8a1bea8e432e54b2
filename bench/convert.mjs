#!/usr/bin/env node
/**
 * bench/convert.mjs — Docker image → SIF, three ways, on the same image in one
 * run, alternating so machine noise hits all alike:
 *   sifpack — `sifpack convert IMAGE -o out.sif` (streams into mksquashfs -offset)
 *   apptainer-style — what apptainer build docker-archive:// does: docker save
 *     to a tar, unpack the layers to a directory, mksquashfs the directory
 *   floor — mksquashfs (gzip) of an already-extracted root filesystem
 * For each: median wall time of RUNS runs, peak RSS (sifpack's own node
 * process and the largest child), and peak extra disk in the work dir.
 *
 * Usage (needs a Docker engine; test/services/start.sh gives one):
 *   npm run build && DOCKER_HOST=unix://... node bench/convert.mjs IMAGE [RUNS]
 */
import { execFileSync, spawn } from 'node:child_process';
import { promises as fs, readFileSync, readdirSync, statfsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const image = process.argv[2];
const RUNS = Number(process.argv[3] ?? 3);
if (!image || !process.env.DOCKER_HOST) {
  console.error('usage: DOCKER_HOST=unix://... node bench/convert.mjs IMAGE [RUNS]');
  process.exit(2);
}
const DOCKER = '/usr/bin/docker';
const work = await fs.mkdtemp(path.join(os.tmpdir(), 'sifpack-bench-convert-'));
const usedBytes = () => {
  const s = statfsSync(work);
  return (Number(s.blocks) - Number(s.bfree)) * Number(s.bsize);
};

/** Runs a shell command, sampling RSS of the tree and disk used, returns seconds and peaks. */
function measure(cmd, env = {}) {
  return new Promise((resolve, reject) => {
    const disk0 = usedBytes();
    const t0 = process.hrtime.bigint();
    const child = spawn('bash', ['-c', cmd], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'inherit'] });
    let peakDisk = 0;
    const rss = new Map();
    /** The child and its descendants, read from /proc in-process (no pgrep: it would cost CPU). */
    const tree = () => {
      const parent = new Map();
      for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
        try {
          const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
          parent.set(pid, stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
        } catch {
          /* gone */
        }
      }
      const out = new Set([String(child.pid)]);
      let grew = true;
      while (grew) {
        grew = false;
        for (const [pid, ppid] of parent) if (out.has(ppid) && !out.has(pid)) (out.add(pid), (grew = true));
      }
      return [...out];
    };
    const sample = () => {
      peakDisk = Math.max(peakDisk, usedBytes() - disk0);
      for (const pid of tree()) {
        try {
          const st = readFileSync(`/proc/${pid}/status`, 'utf8');
          const name = /Name:\s+(\S+)/.exec(st)?.[1] ?? '?';
          const hwm = Number(/VmHWM:\s+(\d+)/.exec(st)?.[1] ?? 0);
          rss.set(name, Math.max(rss.get(name) ?? 0, hwm));
        } catch {
          /* gone */
        }
      }
    };
    const timer = setInterval(sample, 250);
    child.on('close', (code) => {
      clearInterval(timer);
      sample();
      if (code !== 0) return reject(new Error(`${cmd} exited ${code}`));
      resolve({ seconds: Number(process.hrtime.bigint() - t0) / 1e9, peakDisk, rss: Object.fromEntries(rss) });
    });
  });
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const mib = (b) => (b / 2 ** 20).toFixed(0);

// The floor's input: the flattened rootfs, extracted once, outside the timing.
const rootfs = path.join(work, 'rootfs-floor');
await fs.mkdir(rootfs);
execFileSync('bash', ['-c', `cid=$(${DOCKER} create ${image} /x) && ${DOCKER} export "$cid" | tar -C "${rootfs}" -xf - && ${DOCKER} rm -f "$cid" >/dev/null`]);
const floorDisk0 = usedBytes();

const cases = {
  sifpack: () => `rm -f "${work}/out.sif" && node "${root}/dist/cli.js" convert ${image} -o "${work}/out.sif" -q >/dev/null`,
  'apptainer-style': () => `set -e; d="${work}/save"; rm -rf "$d"; mkdir -p "$d/rootfs"; ${DOCKER} save ${image} > "$d/image.tar"; mkdir "$d/x"; tar -C "$d/x" -xf "$d/image.tar"; for l in $(python3 -c 'import json,sys; print(" ".join(json.load(open(sys.argv[1]))[0]["Layers"]))' "$d/x/manifest.json"); do tar -C "$d/rootfs" -xf "$d/x/$l"; done; mksquashfs "$d/rootfs" "$d/out.sqfs" -noappend -comp gzip -quiet -no-progress; rm -rf "$d"`,
  floor: () => `rm -f "${work}/floor.sqfs" && mksquashfs "${rootfs}" "${work}/floor.sqfs" -noappend -comp gzip -quiet -no-progress`,
};
const results = Object.fromEntries(Object.keys(cases).map((k) => [k, []]));
for (let i = 0; i < RUNS; i++) {
  for (const [name, cmd] of Object.entries(cases)) results[name].push(await measure(cmd()));
}
const sifSize = (await fs.stat(path.join(work, 'out.sif'))).size;
const info = JSON.parse(execFileSync(DOCKER, ['image', 'inspect', image]).toString())[0];
await fs.rm(work, { recursive: true, force: true });
void floorDisk0;

console.log(`machine: ${os.cpus().length}x ${os.cpus()[0]?.model ?? 'cpu'}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}`);
console.log(`image: ${image}, ${mib(info.Size)} MiB; output SIF ${mib(sifSize)} MiB; median of ${RUNS} runs`);
const floorMedian = median(results.floor.map((r) => r.seconds));
for (const [name, rs] of Object.entries(results)) {
  const s = median(rs.map((r) => r.seconds));
  const rss = {};
  for (const r of rs) for (const [k, v] of Object.entries(r.rss)) rss[k] = Math.max(rss[k] ?? 0, v);
  const top = Object.entries(rss).sort((a, b) => b[1] - a[1]).slice(0, 3).map(([k, v]) => `${k} ${mib(v * 1024)}`).join(', ');
  console.log(`  ${name.padEnd(16)} ${s.toFixed(1).padStart(6)} s  (${(s / floorMedian).toFixed(2)}x floor)  peak extra disk ${mib(Math.max(...rs.map((r) => r.peakDisk))).padStart(5)} MiB  peak RSS MiB: ${top}`);
}
