/**
 * Interop with the real apptainer 1.4.5 (SIFPACK_TEST_APPTAINER, installed
 * by test/services/install-apptainer.sh) through the plain test registry:
 * `apptainer pull oras://` of a sifpack push, `sifpack pull` of an
 * `apptainer push`, and the manifests both write for the same file compared
 * byte for byte (apptainer v1.4.5 internal/pkg/client/oras/image.go).
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sifpack } from '../e2e/cli.js';
import { ROOT, service, tempDir } from '../helpers.js';

const run = promisify(execFile);
const FIXTURE = path.join(ROOT, 'test', 'fixtures', 'oras', 'busybox_amd64.sif');
const RUN = randomBytes(4).toString('hex');
let dir: string;
let env: NodeJS.ProcessEnv;
let apptainer: string;
let reg: string;

beforeAll(async () => {
  apptainer = service('SIFPACK_TEST_APPTAINER');
  reg = service('SIFPACK_TEST_REGISTRY');
  dir = await tempDir('sifpack-oras-apptainer-');
  await fs.mkdir(path.join(dir, 'home'));
  env = { HOME: path.join(dir, 'home'), XDG_CACHE_HOME: path.join(dir, 'cache') };
  await fs.copyFile(FIXTURE, path.join(dir, 'busybox.sif'));
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

const apptainerEnv = () => ({ PATH: process.env.PATH, HOME: env.HOME, APPTAINER_CACHEDIR: path.join(dir, 'apptainer-cache') });

describe('apptainer interop', { timeout: 240_000 }, () => {
  it('apptainer pull oras:// gets the exact bytes sifpack pushed', async () => {
    const ref = `${reg}/issue13-${RUN}/from-sifpack:1`;
    const push = await sifpack(['push', 'busybox.sif', `oras://${ref}`], { cwd: dir, env });
    expect(push.code, push.stderr).toBe(0);
    await run(apptainer, ['pull', '--disable-cache', path.join(dir, 'by-apptainer.sif'), `oras://${ref}`], { env: apptainerEnv() });
    expect(Buffer.compare(await fs.readFile(path.join(dir, 'by-apptainer.sif')), await fs.readFile(FIXTURE))).toBe(0);
  });

  it('sifpack pull gets the exact bytes apptainer pushed, and both wrote the same manifest bytes', async () => {
    const theirs = `${reg}/issue13-${RUN}/from-apptainer:1`;
    await run(apptainer, ['push', path.join(dir, 'busybox.sif'), `oras://${theirs}`], { env: apptainerEnv() });
    const pull = await sifpack(['pull', `oras://${theirs}`, '-o', 'by-sifpack.sif', '--no-cache'], { cwd: dir, env });
    expect(pull.code, pull.stderr).toBe(0);
    expect(Buffer.compare(await fs.readFile(path.join(dir, 'by-sifpack.sif')), await fs.readFile(FIXTURE))).toBe(0);

    const ours = `${reg}/issue13-${RUN}/from-sifpack:1`;
    const get = async (r: string) => {
      const [repoPath, tag] = r.slice(reg.length + 1).split(':');
      const res = await fetch(`http://${reg}/v2/${repoPath}/manifests/${tag}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
      return { text: await res.text(), digest: res.headers.get('docker-content-digest') };
    };
    const a = await get(theirs);
    const b = await get(ours);
    expect(b.text).toBe(a.text);
    expect(b.digest).toBe(a.digest);
  });
});
