/**
 * `sifpack inspect --labels/--deffile/--runscript/...` against the real
 * `apptainer inspect` (1.4.5, SIFPACK_TEST_APPTAINER) on the same images:
 * a SIF apptainer built (test/fixtures/apptainer-images), one `sifpack
 * convert` wrote from the test engine's busybox image, a sandbox directory
 * `apptainer build --sandbox` made, and a SIF that has no
 * inspect-metadata.json (squashfs of that sandbox, assembled with siftool), so
 * every way apptainer reads the sections (cmd/internal/cli/inspect.go:
 * metadata object, files under /.singularity.d, Deffile object) is compared
 * byte for byte, text and --json.
 */
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sifpack } from '../e2e/cli.js';
import { APPTAINER_IMAGES, service, tempDir } from '../helpers.js';

const FLAGS = [['--labels'], ['--deffile'], ['--runscript'], ['--startscript'], ['--test'], ['--environment'], ['--helpfile'], ['--labels', '--json'], ['--environment', '--runscript', '--json'], ['--all']];

let dir: string;
let apptainer: string;
const images: Record<string, string> = {};

beforeAll(async () => {
  apptainer = service('SIFPACK_TEST_APPTAINER');
  dir = await tempDir('sifpack-inspect-');
  images['apptainer-built SIF'] = path.join(APPTAINER_IMAGES, 'busybox_amd64.sif');
  const conv = path.join(dir, 'converted.sif');
  const r = await sifpack(['convert', service('SIFPACK_TEST_BUSYBOX_IMAGE'), '-o', conv], { env: { DOCKER_HOST: service('DOCKER_HOST') } });
  expect(r.stderr).toContain('wrote');
  images['sifpack convert SIF'] = conv;
  const sandbox = path.join(dir, 'sandbox');
  execFileSync(apptainer, ['build', '--sandbox', sandbox, images['apptainer-built SIF']!], { stdio: 'ignore' });
  images['sandbox directory'] = sandbox;
  // A SIF with only a Deffile object and the squashfs: the sections come from files inside.
  const sqfs = path.join(dir, 'root.sqfs');
  execFileSync('mksquashfs', [sandbox, sqfs, '-noappend', '-comp', 'gzip', '-quiet']);
  const bare = path.join(dir, 'no-metadata.sif');
  execFileSync('siftool', ['new', bare]);
  await fs.writeFile(path.join(dir, 'x.def'), 'Bootstrap: localimage\nFrom: busybox.sif\n');
  execFileSync('siftool', ['add', bare, path.join(dir, 'x.def'), '--datatype', '1', '--groupid', '1']);
  execFileSync('siftool', ['add', bare, sqfs, '--datatype', '4', '--parttype', '2', '--partfs', '1', '--partarch', '2', '--groupid', '1']);
  images['SIF without inspect metadata'] = bare;
}, 180_000);

afterAll(async () => {
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

describe('inspect sections match apptainer inspect', () => {
  for (const kind of ['apptainer-built SIF', 'sifpack convert SIF', 'sandbox directory', 'SIF without inspect metadata']) {
    it(`${kind}: every section flag, text and --json, byte for byte`, async () => {
      const image = images[kind]!;
      let nonEmpty = 0;
      for (const flags of FLAGS) {
        const ours = await sifpack(['inspect', ...flags, image]);
        const theirs = execFileSync(apptainer, ['inspect', ...flags, image], { encoding: 'utf8' });
        expect({ flags, out: ours.stdout }).toEqual({ flags, out: theirs });
        expect(ours.code).toBe(0);
        if (theirs.trim() && !/"attributes": \{\}/.test(theirs)) nonEmpty++;
      }
      // The comparison means something only if apptainer showed content.
      expect(nonEmpty).toBeGreaterThanOrEqual(6);
    }, 120_000);
  }

  it('a sandbox directory without a section flag shows its labels (apptainer\'s default), not an EISDIR crash', async () => {
    const r = await sifpack(['inspect', images['sandbox directory']!]);
    expect(r.stderr).not.toContain('internal error');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(execFileSync(apptainer, ['inspect', images['sandbox directory']!], { encoding: 'utf8' }));
    expect(r.stdout).toContain('org.label-schema.build-arch: amd64');
  });
});
