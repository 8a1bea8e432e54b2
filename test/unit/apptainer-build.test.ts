/**
 * The apptainer builder, with a recording double of apptainer: each test
 * checks the exact argv, the environment and working directory it gets, and
 * replays a transcript shaped like real apptainer output
 * (test/fixtures/apptainer-output/README.md says where they come from).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EXIT, InputError, RuntimeFailure, SifpackError } from '../../src/errors.js';
import { type ApptainerBuildRequest, type RuntimeInfo, buildWithApptainer, detectRuntime, importantLines, needFakeroot, parseVersion } from '../../src/runtime/apptainer.js';
import { mountOptionsFor } from '../../src/runtime/scratch.js';
import { RecordingRunner, type ScriptedCall } from '../doubles/recording-runner.js';
import { ROOT, tempDir } from '../helpers.js';

const transcript = (f: string) => fs.readFile(path.join(ROOT, 'test/fixtures/apptainer-output', f), 'utf8');
const APPTAINER: RuntimeInfo = { binary: '/usr/bin/apptainer', flavour: 'apptainer', version: '1.3.4' };
/** The temp SIF apptainer is asked to write: beside the output, hidden, removed unless renamed. */
const TMP_SIF = /\/\.analysis\.sif\.\d+-[0-9a-f]{12}\.tmp\.sif$/;

let dir: string;
beforeEach(async () => {
  dir = await tempDir();
  await fs.writeFile(path.join(dir, 'analysis.def'), 'Bootstrap: docker\nFrom: x:1\n');
});
afterEach(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

function request(extra: Partial<ApptainerBuildRequest> = {}): { req: ApptainerBuildRequest; lines: string[] } {
  const lines: string[] = [];
  const req: ApptainerBuildRequest = {
    runtime: APPTAINER,
    defFile: path.join(dir, 'analysis.def'),
    output: path.join(dir, 'analysis.sif'),
    tmpdir: dir,
    env: { HOME: dir, PATH: '/usr/bin' },
    uid: 1000,
    onLine: (l) => lines.push(l),
    logFile: path.join(dir, 'build.log'),
    minFreeBytes: 1,
    ...extra,
  };
  return { req, lines };
}

function buildCall(args: (string | RegExp)[], stderr: string, code: number, writeImage: boolean, extra: Partial<ScriptedCall> = {}): ScriptedCall {
  return {
    command: '/usr/bin/apptainer',
    args,
    result: { stderr, code },
    effect: async (argv, opts) => {
      // The build's own scratch directory inside --tmpdir, there while apptainer runs, removed after (leftovers).
      expect(path.dirname(opts!.env!.APPTAINER_TMPDIR!)).toBe(dir);
      expect(path.basename(opts!.env!.APPTAINER_TMPDIR!)).toMatch(/^sifpack-build-/);
      expect((await fs.stat(opts!.env!.APPTAINER_TMPDIR!)).isDirectory()).toBe(true);
      // --tmpdir given, APPTAINER_CACHEDIR not set: the cache goes to scratch too
      expect(opts?.env?.APPTAINER_CACHEDIR).toBe(path.join(dir, 'apptainer-cache'));
      expect(opts?.cwd).toBe(dir);
      if (writeImage) await fs.writeFile(argv.at(-2)!, 'SIF_MAGIC...');
    },
    ...extra,
  };
}

const leftovers = async () => (await fs.readdir(dir)).filter((f) => f.includes('.tmp') || f.startsWith('sifpack-build-'));

describe('apptainer build, with a recording double of apptainer 1.3', () => {
  it('success: exact argv, APPTAINER_TMPDIR and cwd set, output streamed, image renamed into place', async () => {
    const runner = new RecordingRunner([buildCall(['build', TMP_SIF, path.join(dir, 'analysis.def')], await transcript('build-ok.txt'), 0, true)], ['/usr/bin/apptainer']);
    const { req, lines } = request();
    await buildWithApptainer(runner, req);
    runner.assertDone();
    expect(await fs.readFile(path.join(dir, 'analysis.sif'), 'utf8')).toBe('SIF_MAGIC...');
    expect(lines).toContain('INFO:    Build complete: analysis.sif');
    expect(await fs.readFile(path.join(dir, 'build.log'), 'utf8')).toContain('INFO:    Running post scriptlet');
    expect(await leftovers()).toEqual([]);
  });

  it('a failed solve: exit 1, the solver and FATAL lines surfaced, the log named, no image and no temp file', async () => {
    const runner = new RecordingRunner([buildCall(['build', TMP_SIF, path.join(dir, 'analysis.def')], await transcript('build-fail-solve.txt'), 255, true)], ['/usr/bin/apptainer']);
    const err = (await buildWithApptainer(runner, request().req).catch((e: unknown) => e)) as RuntimeFailure;
    expect(err).toBeInstanceOf(RuntimeFailure);
    expect(err.exitCode).toBe(1);
    expect(err.message).toBe('apptainer build failed (exit 255)');
    expect(err.details).toEqual(['error    libmamba Could not solve for environment specs', 'critical libmamba Could not solve for environment specs', 'FATAL:   While performing build: while running engine: exit status 1']);
    expect(err.hint).toBe(`the full log is ${path.join(dir, 'build.log')}`);
    await expect(fs.stat(path.join(dir, 'analysis.sif'))).rejects.toThrow();
    expect(await leftovers()).toEqual([]);
  });

  it("apptainer 1.4.5's own wording (a captured transcript): the %post error and the FATAL line are what surfaces", async () => {
    const runner = new RecordingRunner([buildCall(['build', TMP_SIF, path.join(dir, 'analysis.def')], await transcript('build-fail-post-1.4.5.txt'), 255, true)], ['/usr/bin/apptainer']);
    const err = (await buildWithApptainer(runner, request().req).catch((e: unknown) => e)) as RuntimeFailure;
    expect(err.exitCode).toBe(1);
    expect(err.details).toEqual(['error    libmamba Could not solve for environment specs', 'FATAL:   While performing build: while running engine: while running %post section: exit status 1']);
    expect(await leftovers()).toEqual([]);
  });

  it('a fakeroot failure surfaces fakeroot\'s own line', async () => {
    const runner = new RecordingRunner([buildCall(['build', TMP_SIF, path.join(dir, 'analysis.def')], await transcript('build-fail-fakeroot.txt'), 255, false)], ['/usr/bin/apptainer']);
    const err = (await buildWithApptainer(runner, request().req).catch((e: unknown) => e)) as RuntimeFailure;
    expect(err.details).toContain("fakeroot: error while starting the `faked' daemon.");
  });

  it('exit 0 without an image is a failure, not success', async () => {
    const runner = new RecordingRunner([buildCall(['build', TMP_SIF, path.join(dir, 'analysis.def')], 'INFO:    Build complete\n', 0, false)], ['/usr/bin/apptainer']);
    await expect(buildWithApptainer(runner, request().req)).rejects.toThrow('apptainer build exited 0 but wrote no image');
  });

  it('singularity 3.8 unprivileged gets --fakeroot and SINGULARITY_TMPDIR', async () => {
    const runner = new RecordingRunner(
      [{ command: '/opt/bin/singularity', args: ['build', '--fakeroot', TMP_SIF, path.join(dir, 'analysis.def')], result: {}, effect: async (argv, opts) => {
        expect(path.dirname(opts!.env!.SINGULARITY_TMPDIR!)).toBe(dir);
        expect(opts?.env?.SINGULARITY_CACHEDIR).toBe(path.join(dir, 'singularity-cache'));
        await fs.writeFile(argv.at(-2)!, 'x');
      } }],
      ['/opt/bin/singularity'],
    );
    await buildWithApptainer(runner, request({ runtime: { binary: '/opt/bin/singularity', flavour: 'singularity', version: '3.8.7' } }).req);
    runner.assertDone();
  });

  it('Ctrl-C: the build is stopped, the temp image removed, exit 130', async () => {
    const controller = new AbortController();
    const runner = new RecordingRunner(
      [{ ...buildCall(['build', TMP_SIF, path.join(dir, 'analysis.def')], 'INFO:    Starting build...\n', 0, true), hold: async () => controller.abort() }],
      ['/usr/bin/apptainer'],
    );
    const err = (await buildWithApptainer(runner, request({ signal: controller.signal }).req).catch((e: unknown) => e)) as SifpackError;
    expect(err.exitCode).toBe(EXIT.interrupted);
    expect(await leftovers()).toEqual([]);
    await expect(fs.stat(path.join(dir, 'analysis.sif'))).rejects.toThrow();
  });

  it('a CACHEDIR the user set is kept', async () => {
    const runner = new RecordingRunner(
      [{ command: '/usr/bin/apptainer', args: ['build', TMP_SIF, path.join(dir, 'analysis.def')], result: {}, effect: async (argv, opts) => {
        expect(opts?.env?.APPTAINER_CACHEDIR).toBe('/scratch/me/cache');
        await fs.writeFile(argv.at(-2)!, 'x');
      } }],
      ['/usr/bin/apptainer'],
    );
    await buildWithApptainer(runner, request({ env: { HOME: dir, APPTAINER_CACHEDIR: '/scratch/me/cache' } }).req);
    runner.assertDone();
  });

  it('a missing --tmpdir is an input error naming the variable to set', async () => {
    const runner = new RecordingRunner([], ['/usr/bin/apptainer']);
    const err = (await buildWithApptainer(runner, request({ tmpdir: path.join(dir, 'nope') }).req).catch((e: unknown) => e)) as InputError;
    expect(err).toBeInstanceOf(InputError);
    expect(err.hint).toContain('APPTAINER_TMPDIR');
  });

  it('too little scratch space is refused before apptainer runs', async () => {
    const runner = new RecordingRunner([], ['/usr/bin/apptainer']);
    await expect(buildWithApptainer(runner, request({ minFreeBytes: Number.MAX_SAFE_INTEGER }).req)).rejects.toThrow(/free in .*a build unpacks the whole image there/);
  });
});

describe('runtime detection and decisions', () => {
  it('parses the version lines of apptainer, singularity-ce and singularity', () => {
    expect(parseVersion('apptainer version 1.3.4\n')).toEqual({ flavour: 'apptainer', version: '1.3.4' });
    expect(parseVersion('singularity-ce version 4.1.0-jammy\n')).toEqual({ flavour: 'singularity', version: '4.1.0' });
    expect(parseVersion('singularity version 3.8.7-1.el8\n')).toEqual({ flavour: 'singularity', version: '3.8.7' });
    expect(parseVersion('bash: apptainer: command not found')).toBeUndefined();
  });

  it('detectRuntime prefers apptainer, then singularity (argv checked)', async () => {
    const runner = new RecordingRunner([{ command: '/usr/bin/singularity', args: ['--version'], result: { stdout: 'singularity-ce version 4.1.0\n' } }], ['singularity']);
    runner.which = async (c: string) => (c === 'singularity' ? '/usr/bin/singularity' : undefined);
    expect(await detectRuntime(runner, 'auto', {})).toEqual({ binary: '/usr/bin/singularity', flavour: 'singularity', version: '4.1.0' });
  });

  it.each([
    [APPTAINER, 0, undefined, false],
    [APPTAINER, 1000, undefined, false],
    [{ ...APPTAINER, version: '1.0.3' }, 1000, undefined, true],
    [{ ...APPTAINER, flavour: 'singularity' as const, version: '3.8.7' }, 1000, undefined, true],
    [APPTAINER, 1000, true, true],
    [{ ...APPTAINER, version: '1.0.3' }, 1000, false, false],
  ])('needFakeroot(%j, uid %i, asked %s) = %s', (rt, uid, asked, expected) => {
    expect(needFakeroot(rt, uid, asked)).toBe(expected);
  });

  it('noexec is read from mountinfo (longest mount point wins)', () => {
    const info = ['22 1 8:1 / / rw,relatime - ext4 /dev/vda rw', '30 22 0:40 / /tmp rw,nosuid,nodev,noexec - tmpfs tmpfs rw', '31 22 0:41 / /tmp/ok rw - tmpfs tmpfs rw'].join('\n');
    expect(mountOptionsFor('/tmp/build', info)).toContain('noexec');
    expect(mountOptionsFor('/tmp/ok/x', info)).not.toContain('noexec');
    expect(mountOptionsFor('/home/u', info)).not.toContain('noexec');
  });

  it('importantLines falls back to the last lines when nothing is marked', () => {
    expect(importantLines(['a', 'b', '', 'c'])).toEqual(['a', 'b', 'c']);
  });
});
