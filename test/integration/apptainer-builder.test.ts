/**
 * `sifpack build --builder apptainer` against the real Apptainer 1.4.5, run
 * through the sifpack CLI (never apptainer directly, except to look at the
 * result): a --from-prefix build whose %test runs and whose image then runs
 * Python; the second identical build taken from the cache with no apptainer
 * run at all; Ctrl-C during %post leaving nothing behind; a failing %post
 * surfacing apptainer's FATAL line; and a `Bootstrap: docker` pull that fails
 * for a base image the local Docker engine has, hinting --bootstrap docker-daemon.
 *
 * The base image comes from the local engine (`--bootstrap docker-daemon`):
 * there is no Docker Hub here. The prefix is the double of a conda env with
 * Debian's python3.11 (test/fixtures/real-prefix.ts). apptainer is reached
 * through a wrapper on PATH that appends each argv to a log and then execs
 * the real binary, so the tests can tell whether it ran at all.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { interruptWhen, sifpack } from '../e2e/cli.js';
import { pythonFromImage, writeRealPrefix } from '../fixtures/real-prefix.js';
import { processesWith, service, tempDir } from '../helpers.js';
import { apptainer, apptainerBin } from './apptainer-harness.js';

let dir: string;
let work: string;
let prefix: string;
let callLog: string;
let env: NodeJS.ProcessEnv;
const BASE = () => service('SIFPACK_TEST_BASE_IMAGE');

/** apptainer's argv lines so far (the wrapper's log). */
const calls = async () => (await fs.readFile(callLog, 'utf8').catch(() => '')).split('\n').filter(Boolean);
const sha256 = async (f: string) => createHash('sha256').update(await fs.readFile(f)).digest('hex');


beforeAll(async () => {
  dir = await tempDir('sifpack-appbuilder-');
  await fs.chmod(dir, 0o755);
  work = path.join(dir, 'work');
  await fs.mkdir(work);
  const dockerEnv = { DOCKER_HOST: service('DOCKER_HOST') };
  const python = await pythonFromImage(path.join(dir, 'python-from-image'), BASE(), dockerEnv);
  prefix = path.join(dir, 'envs', 'analysis');
  await writeRealPrefix(prefix, python);
  const bin = path.join(dir, 'bin');
  await fs.mkdir(bin);
  callLog = path.join(dir, 'apptainer-calls.log');
  // A logging wrapper around the real apptainer (exec: the same process, the same signals).
  await fs.writeFile(path.join(bin, 'apptainer'), `#!/bin/sh\nprintf '%s\\n' "$*" >> '${callLog}'\nexec '${apptainerBin()}' "$@"\n`, { mode: 0o755 });
  env = { ...dockerEnv, PATH: `${bin}:${process.env.PATH}`, HOME: dir };
}, 120_000);

afterAll(async () => {
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

describe('sifpack build --builder apptainer --from-prefix, real apptainer 1.4.5', () => {
  const scratch = () => path.join(dir, 'scratch');
  const args = () => ['build', '--from-prefix', prefix, '--builder', 'apptainer', '--bootstrap', 'docker-daemon', '--base-image', BASE(), '--tmpdir', scratch(), '-o', 'analysis.sif', '--json'];
  let first: { code: number; stdout: string; stderr: string; ms: number };

  beforeAll(async () => {
    await fs.mkdir(scratch());
    const t = Date.now();
    first = { ...(await sifpack(args(), { cwd: work, env })), ms: Date.now() - t };
  }, 600_000);

  it('builds end to end: %test runs and its output is shown, --json says apptainer, not cached', async () => {
    expect(first.code, first.stderr).toBe(0);
    expect(first.stderr).toContain('builder: apptainer 1.4.5 (asked for)');
    expect(first.stderr).toContain(`relocated ${prefix} -> /opt/env`);
    expect(first.stderr).toMatch(/INFO: +Running post scriptlet/);
    expect(first.stderr).toMatch(/INFO: +Running testscript/);
    // %test imports what the prefix's records name (python is there; mod is the pip package).
    expect(first.stderr).toMatch(/sifpack test: checked .*mod/);
    expect(first.stderr).not.toMatch(/FATAL/);
    const res = JSON.parse(first.stdout) as { image: string; builder: string; cached: boolean; seconds: number };
    expect(res).toMatchObject({ image: path.join(work, 'analysis.sif'), builder: 'apptainer', cached: false });
    expect((await calls()).filter((c) => c.startsWith('build '))).toHaveLength(1);
  });

  it('the def it built from says Bootstrap: docker-daemon From: the local base image', async () => {
    const r = await apptainer(['inspect', '--deffile', path.join(work, 'analysis.sif')]);
    expect(r.stdout).toMatch(/^Bootstrap: docker-daemon\nFrom: sifpack-test\/bookworm-python:12$/m);
  });

  it('the image runs its Python from /opt/env, and `apptainer test` passes', async () => {
    const sif = path.join(work, 'analysis.sif');
    const r = await apptainer(['exec', sif, 'python', '-c', 'import sys, mod; print(sys.prefix, mod.where())'], { cwd: work });
    expect(r, r.stderr).toMatchObject({ code: 0, stdout: '/opt/env /opt/env/share/mod\n' });
    const t = await apptainer(['test', sif]);
    expect(t.code, t.stderr).toBe(0);
    expect(t.stdout).toMatch(/sifpack test: checked .*mod/);
  });

  it('leaves no temp files: neither in the output directory nor in --tmpdir (only the layer cache stays)', async () => {
    expect((await fs.readdir(work)).sort()).toEqual(['.sifpack', 'analysis.sif']);
    expect(await fs.readdir(path.join(work, '.sifpack', 'build'))).toEqual(['analysis.def', 'analysis.sif.log']);
    expect(await fs.readdir(scratch())).toEqual(['apptainer-cache']);
  });

  it('the second identical build is the cache: no apptainer run, same bytes, under a second of its own', async () => {
    const sif = path.join(work, 'analysis.sif');
    const before = { stat: await fs.stat(sif), sha: await sha256(sif), calls: await calls() };
    const t = Date.now();
    const again = await sifpack(args(), { cwd: work, env });
    const ms = Date.now() - t;
    expect(again.code, again.stderr).toBe(0);
    const res = JSON.parse(again.stdout) as { cached: boolean; builder: string; seconds: number; sha256: string };
    expect(res).toMatchObject({ cached: true, builder: 'apptainer', sha256: `sha256:${before.sha}` });
    // The wrapper logged nothing: not even `apptainer --version` (the cache is read before a builder is chosen).
    expect(await calls()).toEqual(before.calls);
    expect(again.stderr).not.toContain('builder:');
    expect(again.stderr).not.toContain('Starting build');
    const after = await fs.stat(sif);
    expect({ ino: after.ino, mtimeMs: after.mtimeMs, size: after.size }).toEqual({ ino: before.stat.ino, mtimeMs: before.stat.mtimeMs, size: before.stat.size });
    expect(await sha256(sif)).toBe(before.sha);
    // Work measured by sifpack itself (labels read, sha256 from its cache) vs. the whole first build.
    expect(res.seconds).toBeLessThan(1);
    expect(ms).toBeLessThan(first.ms / 5);
    console.log(`apptainer builder: first build ${(first.ms / 1000).toFixed(1)} s; cached rebuild ${(ms / 1000).toFixed(2)} s wall (node start included), ${res.seconds} s in the build step`);
  });

  it('without --json the cache hit is said in words', async () => {
    const r = await sifpack(args().filter((a) => a !== '--json'), { cwd: work, env });
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/analysis\.sif is up to date \(same build hash [0-9a-f]{12}…\): nothing to build; --force rebuilds/);
  });
});

describe('Ctrl-C during %post', () => {
  it('stops apptainer and the %post it started, exit 130; no image, no temp file, no scratch left', async () => {
    const w = path.join(dir, 'interrupt');
    const scratch = path.join(w, 'scratch');
    await fs.mkdir(scratch, { recursive: true });
    // The def sifpack writes, hand-edited the way DESIGN.md allows (stop, edit, go on): one long step added
    // at the end of %post. The sleep stands for a long compile or download; its odd length marks it in /proc.
    const mark = `600.${Date.now() % 1_000_000}`;
    const d = await sifpack(['def', '--from-prefix', prefix, '--bootstrap', 'docker-daemon', '--base-image', BASE(), '-o', 'slow.def'], { cwd: w, env });
    expect(d.code, d.stderr).toBe(0);
    const def = await fs.readFile(path.join(w, 'slow.def'), 'utf8');
    const edited = def.replace(/^(    rmdir --ignore-fail-on-non-empty \/opt\/sifpack\n)/m, `$1    echo "long step starts"\n    sleep ${mark}\n`);
    expect(edited).not.toBe(def);
    await fs.writeFile(path.join(w, 'slow.def'), edited);
    const before = (await fs.readdir(w)).sort();

    const r = await interruptWhen(['build', 'slow.def', '-o', 'slow.sif', '--tmpdir', scratch], 'long step starts', 500, { cwd: w, env });
    expect(r.stderr).toContain(`sleep ${mark}`); // it was in %post when interrupted
    expect(r.code, r.stderr).toBe(130);
    expect(r.stderr).toContain('sifpack: interrupted, cleaning up');
    expect(r.stderr).toContain('build interrupted; no image written');
    // No image, no hidden .slow.sif.*.tmp.sif; only the build log is new (under .sifpack/).
    expect((await fs.readdir(w)).sort()).toEqual([...before, '.sifpack'].sort());
    expect(await fs.readdir(path.join(w, '.sifpack', 'build'))).toEqual(['slow.sif.log']);
    // apptainer's build-temp-*/bundle-temp-* went with sifpack's own scratch directory.
    expect(await fs.readdir(scratch)).toEqual(['apptainer-cache']);
    expect(processesWith(mark)).toEqual([]);
    expect(processesWith(path.join(w, 'slow.def'))).toEqual([]);
    // Before the fix sifpack waited for the orphaned %post (here: 600 s) to close apptainer's pipes.
    expect(r.msAfterSignal).toBeGreaterThan(0);
    expect(r.msAfterSignal).toBeLessThan(30_000);
    console.log(`Ctrl-C during %post: sifpack exited ${r.code} ${(r.msAfterSignal / 1000).toFixed(1)} s after SIGINT`);
  }, 600_000);
});

describe('a failing %post', () => {
  it("surfaces apptainer's FATAL line and the failing step's own, exit 1, no image, no temp file", async () => {
    const w = path.join(dir, 'failing');
    const scratch = path.join(w, 'scratch');
    await fs.mkdir(path.join(w, 'site'), { recursive: true });
    await fs.mkdir(scratch);
    // A site preset (data, as DESIGN.md has them) whose OS package does not exist: apt-get fails in %post.
    await fs.writeFile(
      path.join(w, 'site', 'sitebase.yml'),
      `description: the test base image with an OS package that does not exist\nimage: ${BASE()}\ninstaller: micromamba\nos-package-manager: apt\nos-packages: [sifpack-no-such-package]\n`,
    );
    const r = await sifpack(['build', '--from-prefix', prefix, '--builder', 'apptainer', '--bootstrap', 'docker-daemon', '--defs', 'site', '--base', 'sitebase', '--tmpdir', scratch, '-o', 'broken.sif'], { cwd: w, env });
    expect(r.code, r.stderr).toBe(1);
    const err = r.stderr.slice(r.stderr.indexOf('sifpack: error:'));
    expect(err).toMatch(/^sifpack: error: apptainer build failed \(exit 255\)\n/);
    expect(err).toContain('  E: Unable to locate package sifpack-no-such-package\n');
    // apptainer 1.4.5 names the section (1.3 said only "while running engine: exit status N").
    expect(err).toMatch(/^ {2}FATAL: +While performing build: while running engine: while running %post section: exit status 100$/m);
    expect(err).toContain(`hint: the full log is ${path.join(w, '.sifpack', 'build', 'broken.sif.log')}`);
    expect((await fs.readdir(w)).sort()).toEqual(['.sifpack', 'scratch', 'site']);
    expect(await fs.readdir(path.join(w, '.sifpack', 'build'))).toEqual(['analysis.def', 'broken.sif.log']);
    expect(await fs.readdir(scratch)).toEqual(['apptainer-cache']);
  }, 600_000);
});

describe('the default Bootstrap: docker for a base image only the local Docker engine has', () => {
  it('apptainer cannot pull it: the error keeps the FATAL line and says to use --bootstrap docker-daemon', async () => {
    const w = path.join(dir, 'hub');
    await fs.mkdir(w);
    const r = await sifpack(['build', '--from-prefix', prefix, '--builder', 'apptainer', '--base-image', BASE(), '--tmpdir', w, '-o', 'hub.sif'], { cwd: w, env });
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain(`sifpack: error: apptainer build failed (exit 255): it could not pull the base image docker://${BASE()}`);
    expect(r.stderr).toMatch(/^ {2}FATAL: +While performing build: /m);
    expect(r.stderr).toContain(`hint: ${BASE()} is in the local Docker engine (${service('DOCKER_HOST')}): build from it with --bootstrap docker-daemon`);
    expect(await fs.readdir(w)).not.toContain('hub.sif');
  }, 300_000);

  it('a base image the engine does not have either: no such hint', async () => {
    const w = path.join(dir, 'hub2');
    await fs.mkdir(w);
    const r = await sifpack(['build', '--from-prefix', prefix, '--builder', 'apptainer', '--base-image', 'issue9/not-in-the-engine:1', '--tmpdir', w, '-o', 'hub.sif'], { cwd: w, env });
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/^ {2}FATAL: +While performing build: /m);
    expect(r.stderr).not.toContain('--bootstrap docker-daemon');
    expect(execFileSync('ls', ['-A', w]).toString()).not.toContain('hub.sif');
  }, 300_000);
});
