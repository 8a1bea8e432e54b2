/**
 * A SIF that `sifpack convert` writes against the one apptainer itself makes
 * from the same Docker image (`apptainer build X.sif docker-daemon://IMAGE`),
 * both run by the real Apptainer 1.4.5, as root and as an unprivileged user:
 * same stdout, same exit code, except for the differences listed in
 * INTENDED below (and in docs/COMPATIBILITY.md), each asserted as it is.
 *
 * apptainer's own conversion is read from its source, v1.4.5:
 * internal/pkg/build/sources/conveyorPacker_oci.go (runscript, 10-docker2singularity.sh),
 * internal/pkg/build/metadata.go (labels), internal/pkg/util/fs/files/action_script.sh.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import Docker from 'dockerode';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packContext } from '../../src/runtime/build-context.js';
import { DockerodeEngine } from '../../src/runtime/docker.js';
import { exportLines } from '../../src/render/def.js';
import { sifpack } from '../e2e/cli.js';
import { service, tempDir } from '../helpers.js';
import { type Run, TEST_USER, apptainer, apptainerConvert, ensureTestUser, loadWithConfig } from './apptainer-harness.js';

const IMAGE = 'sifpack-test/apptainer-compat:1';
const FUZZ_IMAGE = 'sifpack-test/apptainer-fuzz:1';

// ENV values apptainer's own conversion carries through (its escaping breaks
// on $, ", \ and backticks: see the QUOTE case below).
const DOCKERFILE = (base: string) => `FROM ${base}
ENV LANG=C.UTF-8 GREETING="hello world" EQ="a=b=c" UNI="naïve 数据" EMPTY="" QUOTE="it's \\$HOME \\"q\\" \\\\back"
LABEL org.opencontainers.image.title="compat" org.example.team="lab x"
WORKDIR /srv/app
ENTRYPOINT ["/bin/sh"]
CMD ["-c", "echo default cmd"]
`;

/** What Docker itself holds for QUOTE (the value `docker run` shows). */
const QUOTE = 'it\'s $HOME "q" \\back';

/**
 * The differences we keep, on purpose:
 * - ENV values with $ " \ or `: apptainer escapes them twice (shell.Escape inside %q), so the
 *   value arrives changed (or, with a backtick, 10-docker2singularity.sh stops parsing and
 *   no ENV is set at all); sifpack's arrive exactly as Docker has them.
 * - run with arguments: apptainer's runscript evals them (`eval "set ${SINGULARITY_OCI_RUN}"`),
 *   so `$x` expands and quotes are re-split; sifpack passes them as given, like `docker run`.
 * - inspect --runscript / --environment: different text with the same meaning for plain values.
 * - labels: apptainer adds org.label-schema.usage.apptainer.version (sifpack is not apptainer),
 *   sifpack adds sifpack.converted-by; build-date is each build's own time.
 */
const PRINT = 'printf "%s|" "$LANG" "$GREETING" "$EQ" "$UNI" "${EMPTY-unset}" "$(pwd)"; echo';

let dir: string;
let ref: string;
let ours: string;
const ENV = () => ({ DOCKER_HOST: service('DOCKER_HOST') });

/** Stdout and exit code, apptainer's noise on stderr aside. */
const outcome = (r: Run) => ({ code: r.code, stdout: r.stdout });

beforeAll(async () => {
  ensureTestUser();
  process.env.DOCKER_HOST = ENV().DOCKER_HOST;
  const engine = new DockerodeEngine(new Docker());
  dir = await tempDir('sifpack-compat-');
  await fs.chmod(dir, 0o755); // the unprivileged user reads the SIFs and runs scripts from here
  await engine.build(packContext([{ name: 'Dockerfile', data: DOCKERFILE(service('SIFPACK_TEST_BUSYBOX_IMAGE')) }], []), { tag: IMAGE, labels: {}, network: 'none', onLine: () => undefined });
  ref = path.join(dir, 'apptainer.sif');
  ours = path.join(dir, 'sifpack.sif');
  const [, conv] = await Promise.all([apptainerConvert(IMAGE, ref), sifpack(['convert', IMAGE, '-o', ours, '-q'], { env: ENV() })]);
  expect(conv.stderr).toBe('');
  expect(conv.code).toBe(0);
  await fs.mkdir(path.join(dir, 'elsewhere'));
  await fs.mkdir(path.join(dir, 'scripts'));
  await fs.writeFile(path.join(dir, 'scripts', 'rel.sh'), 'echo "rel ok in $(pwd) with" "$@"\n', { mode: 0o644 });
}, 300_000);

afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

describe.each([
  ['root', false],
  [`an unprivileged user (${TEST_USER}, APPTAINER_UNSQUASH=1)`, true],
])('sifpack convert vs apptainer build docker-daemon:// under real apptainer, as %s', { timeout: 120_000 }, (_who, asUser) => {
  /** Runs the same command on both images; returns [apptainer's, sifpack's]. */
  const both = (args: (sif: string) => string[], opts: { cwd?: string; env?: Record<string, string>; input?: string } = {}) => Promise.all([apptainer(args(ref), { ...opts, asUser }), apptainer(args(ours), { ...opts, asUser })]);

  it('exec: the image ENV (apptainer-safe values), the caller\'s directory, PATH and LD_LIBRARY_PATH', async () => {
    const [a, s] = await both((sif) => ['exec', sif, 'sh', '-c', `${PRINT}; echo "$PATH"; echo "$LD_LIBRARY_PATH"; ls /.singularity.d/env`], { cwd: dir });
    expect(outcome(s)).toEqual(outcome(a));
    expect(s.stdout).toBe(`C.UTF-8|hello world|a=b=c|naïve 数据||${dir}|\n/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n/.singularity.d/libs\n01-base.sh\n10-docker2singularity.sh\n90-environment.sh\n94-appsbase.sh\n95-apps.sh\n99-base.sh\n99-runtimevars.sh\n`);
  });

  it('exec: an ENV value with \' $ " \\ arrives exactly in sifpack\'s image (INTENDED: apptainer\'s own changes it)', async () => {
    const [a, s] = await both((sif) => ['exec', sif, 'sh', '-c', 'printf %s "$QUOTE"']);
    expect(s).toMatchObject({ code: 0, stdout: QUOTE });
    expect(a.code).toBe(0);
    expect(a.stdout).not.toBe(QUOTE); // apptainer 1.4.5 gives: it's \/root \"q\" \\back
  });

  it('exec with a host LANG, --cleanenv, --env and APPTAINERENV_: the same in both', async () => {
    for (const [args, env] of [
      [['exec'], { LANG: 'de_DE.UTF-8', GREETING: 'host', EMPTY: 'host' }],
      [['exec', '--cleanenv'], { LANG: 'de_DE.UTF-8', GREETING: 'host' }],
      [['exec', '--env', 'GREETING=flag', '--env', 'EQ=$HOME'], {}],
      [['exec'], { APPTAINERENV_LANG: 'xx_XX.UTF-8', APPTAINERENV_UNI: 'from host' }],
      [['exec', '--containall'], {}],
    ] as [string[], Record<string, string>][]) {
      const [a, s] = await both((sif) => [...args, sif, 'sh', '-c', PRINT], { env, cwd: dir });
      expect(outcome(s), args.join(' ')).toEqual(outcome(a));
      expect(s.code).toBe(0);
    }
  });

  it('run: no arguments runs ENTRYPOINT + CMD; a relative script from another directory runs there (no cd into WORKDIR)', async () => {
    let [a, s] = await both((sif) => ['run', sif]);
    expect(outcome(s)).toEqual(outcome(a));
    expect(s.stdout).toBe('default cmd\n');
    [a, s] = await both((sif) => ['run', sif, 'scripts/rel.sh', 'one', 'two'], { cwd: dir });
    expect(outcome(s)).toEqual(outcome(a));
    expect(s.stdout).toBe(`rel ok in ${dir} with one two\n`);
  });

  it('run with arguments holding spaces and $ (INTENDED: sifpack passes them as given; apptainer evals them)', async () => {
    const [a, s] = await both((sif) => ['run', sif, '-c', 'printf "<%s>" "$@"', 'sh', 'a b', '$HOME', '"q"']);
    expect(s).toMatchObject({ code: 0, stdout: '<a b><$HOME><"q">' });
    expect(a.stdout).not.toBe(s.stdout);
  });

  it('shell (commands on stdin) and test: the same', async () => {
    let [a, s] = await both((sif) => ['shell', sif], { input: 'echo "shell: $GREETING in $(pwd)"\nexit 3\n', cwd: dir });
    expect(outcome(s)).toEqual(outcome(a));
    expect(s).toMatchObject({ code: 3, stdout: `shell: hello world in ${dir}\n` });
    [a, s] = await both((sif) => ['test', sif]);
    expect(outcome(s)).toEqual(outcome(a));
    expect(s.code).toBe(0);
  });

  it('exec of a failing command: the same exit code', async () => {
    const [a, s] = await both((sif) => ['exec', sif, 'sh', '-c', 'exit 42']);
    expect(outcome(s)).toEqual(outcome(a));
    expect(s.code).toBe(42);
  });
});

describe('apptainer inspect of both images', { timeout: 60_000 }, () => {
  const inspect = (args: string[]) => Promise.all([apptainer(['inspect', ...args, ref]), apptainer(['inspect', ...args, ours])]);

  it('--labels: apptainer\'s build labels and the image\'s own (org.opencontainers.image.*) in both, plus sifpack\'s', async () => {
    const [a, s] = await inspect(['--labels', '--json']);
    const labels = (r: Run) => (JSON.parse(r.stdout) as { data: { attributes: { labels: Record<string, string> } } }).data.attributes.labels;
    const la = labels(a);
    const ls = labels(s);
    const INTENDED_ONLY_APPTAINER = ['org.label-schema.usage.apptainer.version'];
    const INTENDED_ONLY_SIFPACK = ['sifpack.converted-by'];
    expect(Object.keys(ls).filter((k) => !INTENDED_ONLY_SIFPACK.includes(k)).sort()).toEqual(Object.keys(la).filter((k) => !INTENDED_ONLY_APPTAINER.includes(k)).sort());
    for (const k of Object.keys(la)) if (k !== 'org.label-schema.build-date' && !INTENDED_ONLY_APPTAINER.includes(k)) expect(ls[k], k).toBe(la[k]);
    expect(ls['org.label-schema.build-date']).toMatch(/^[A-Z][a-z]+day_\d{1,2}_[A-Z][a-z]+_\d{4}_\d{1,2}:\d{1,2}:\d{1,2}_UTC$/);
    expect(ls['org.opencontainers.image.title']).toBe('compat');
  });

  it('--deffile and --startscript: the same', async () => {
    const [a, s] = await inspect(['--deffile']);
    expect(outcome(s)).toEqual(outcome(a));
    const [sa, ss] = await inspect(['--startscript']);
    expect(ss.code).toBe(sa.code);
    expect(ss.stdout.startsWith('#!/bin/sh\n')).toBe(true);
  });

  it('--runscript, --environment (INTENDED: different text) and --json: the same sections', async () => {
    const [a, s] = await inspect(['--environment']);
    expect(s.code).toBe(a.code);
    const files = (r: Run) => [...r.stdout.matchAll(/^=== (\S+) ===$/gm)].map((m) => m[1]);
    expect(files(s)).toEqual(files(a));
    expect(s.stdout).toContain('export LANG="${LANG:-C.UTF-8}"');
    expect(a.stdout).toContain('export LANG="${LANG:-"C.UTF-8"}"');
    const [ra, rs] = await inspect(['--runscript']);
    expect(rs.code).toBe(ra.code);
    expect(rs.stdout).not.toMatch(/\bcd\b/);
    const [ja, js] = await inspect(['--json']);
    const keys = (r: Run) => Object.keys((JSON.parse(r.stdout) as { data: { attributes: object } }).data.attributes).sort();
    expect(keys(js)).toEqual(keys(ja));
  });
});

describe('ENV values through real apptainer exec (property-based, one image, one exec)', () => {
  // Characters that break line-based and shell formats, plus any unicode.
  const hostile = fc.constantFrom(...'\'"$`\\ \n\t=;&|<>(){}[]*?~#!%^,.:-_/@+'.split(''), 'é', '数', '😀', '\r', '\\n', '${HOME}', '$(id)', "'\\''");
  const value = fc.oneof(fc.string({ unit: hostile, maxLength: 24 }), fc.string({ unit: 'grapheme', maxLength: 16 }), fc.string({ unit: 'grapheme-ascii', maxLength: 24 }));
  const SEED = 9009;
  const values = fc.sample(value, { numRuns: 300, seed: SEED });

  it(`${values.length} generated values (seed ${SEED}) arrive byte for byte, as root and as ${TEST_USER}`, { timeout: 240_000 }, async () => {
    const engine = new DockerodeEngine(new Docker());
    await loadWithConfig(engine.docker, service('SIFPACK_TEST_BUSYBOX_IMAGE'), FUZZ_IMAGE, (config) => {
      config.Env = ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', ...values.map((v, i) => `FUZZ_${i}=${v}`)];
    });
    const sif = path.join(dir, 'fuzz.sif');
    const conv = await sifpack(['convert', FUZZ_IMAGE, '-o', sif, '-q'], { env: ENV() });
    expect(conv.code).toBe(0);
    await fs.chmod(sif, 0o644);
    const script = `printf '%s\\0' ${values.map((_, i) => `"$FUZZ_${i}"`).join(' ')}`;
    for (const asUser of [false, true]) {
      const r = await apptainer(['exec', sif, 'sh', '-c', script], { asUser });
      expect(r.stderr).not.toMatch(/FATAL|source:/);
      expect(r.code).toBe(0);
      const got = r.stdout.split('\0').slice(0, -1);
      const wrong = values.map((v, i) => ({ i, want: v, got: got[i] })).filter((x) => x.got !== x.want);
      expect(wrong).toEqual([]);
    }
  });

  it('the same values (one-line ones) written by the def renderer into %environment arrive exactly from an apptainer-built image', { timeout: 240_000 }, async () => {
    // A definition file's lines cannot hold a newline; the renderer's quoting is what is under test.
    const oneLine = values.filter((v) => !/[\n\r]/.test(v));
    const def = path.join(dir, 'fuzz.def');
    const lines = exportLines(oneLine.map((v, i) => [`FUZZ_${i}`, v] as [string, string]));
    await fs.writeFile(def, `Bootstrap: docker-daemon\nFrom: ${service('SIFPACK_TEST_BUSYBOX_IMAGE')}\n\n%environment\n${lines.map((l) => `    export ${l}`).join('\n')}\n`);
    const sif = path.join(dir, 'fuzz-def.sif');
    const b = await apptainer(['build', '--force', sif, def], { timeoutMs: 200_000 });
    expect(b.stderr).not.toMatch(/FATAL/);
    expect(b.code).toBe(0);
    const r = await apptainer(['exec', sif, 'sh', '-c', `printf '%s\\0' ${oneLine.map((_, i) => `"$FUZZ_${i}"`).join(' ')}`]);
    expect(r.code).toBe(0);
    const got = r.stdout.split('\0').slice(0, -1);
    expect(oneLine.map((v, i) => ({ i, want: v, got: got[i] })).filter((x) => x.got !== x.want)).toEqual([]);
    expect(oneLine.length).toBeGreaterThan(150);
  });
});
