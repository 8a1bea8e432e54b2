import { execFileSync } from 'node:child_process';
import { createWriteStream, promises as fs } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PackReport, packContext } from '../../src/runtime/build-context.js';
import { readBuildStream } from '../../src/runtime/docker-build-stream.js';
import { tempDir } from '../helpers.js';

let dir: string;
beforeAll(async () => {
  dir = await tempDir();
  const p = path.join(dir, 'env');
  await fs.mkdir(path.join(p, 'bin'), { recursive: true });
  await fs.mkdir(path.join(p, 'lib', 'my dir'), { recursive: true });
  await fs.writeFile(path.join(p, 'bin', 'tool'), '#!/bin/sh\necho hi\n', { mode: 0o755 });
  await fs.writeFile(path.join(p, 'lib', 'my dir', 'file with spaces.txt'), 'spaces\n');
  await fs.symlink('tool', path.join(p, 'bin', 'tool-link'));
  await fs.writeFile(path.join(p, 'lib', 'big.bin'), Buffer.alloc(3 * 1024 * 1024, 7));
  await fs.link(path.join(p, 'lib', 'big.bin'), path.join(p, 'lib', 'big-hardlink.bin'));
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

describe('packContext (tar-stream, read back by GNU tar)', () => {
  it('carries generated files, and a prefix with its modes, spaces, symlinks and hard links', async () => {
    const tarFile = path.join(dir, 'ctx.tar');
    const report: PackReport = { files: 0, bytes: 0, skipped: [] };
    await pipeline(packContext([{ name: 'Dockerfile', data: 'FROM x:1\n' }], [{ name: 'prefix', source: path.join(dir, 'env') }], report), createWriteStream(tarFile));
    const listing = execFileSync('tar', ['-tvf', tarFile]).toString();
    expect(listing).toMatch(/^-rw-r--r-- .* Dockerfile$/m);
    expect(listing).toMatch(/^-rwxr-xr-x .* prefix\/bin\/tool$/m);
    expect(listing).toMatch(/^lrwxrwxrwx .* prefix\/bin\/tool-link -> tool$/m);
    expect(listing).toMatch(/prefix\/lib\/my dir\/file with spaces\.txt$/m);
    expect(listing).toMatch(/^hrw-r--r-- .* prefix\/lib\/big\.bin link to prefix\/lib\/big-hardlink\.bin$|^hrw-r--r-- .* prefix\/lib\/big-hardlink\.bin link to prefix\/lib\/big\.bin$/m);
    const out = path.join(dir, 'out');
    await fs.mkdir(out);
    execFileSync('tar', ['-xf', tarFile, '-C', out]);
    expect(await fs.readFile(path.join(out, 'prefix/lib/my dir/file with spaces.txt'), 'utf8')).toBe('spaces\n');
    expect((await fs.stat(path.join(out, 'prefix/bin/tool'))).mode & 0o777).toBe(0o755);
    expect(await fs.readlink(path.join(out, 'prefix/bin/tool-link'))).toBe('tool');
    expect((await fs.stat(path.join(out, 'prefix/lib/big.bin'))).size).toBe(3 * 1024 * 1024);
    expect(report.files).toBe(4); // Dockerfile, tool, the spaces file, big.bin once
    expect(report.skipped).toEqual([]);
  });
});

const engine = (events: object[]) => Readable.from(events.map((e) => `${JSON.stringify(e)}\r\n`));

describe('readBuildStream (the engine\'s JSON lines)', () => {
  it('resolves with the image id from aux.ID', async () => {
    const lines: string[] = [];
    const res = await readBuildStream(engine([{ stream: 'Step 1/2 : FROM base:1\n' }, { stream: ' ---> 4e62c3b1ba\n' }, { stream: 'Step 2/2 : RUN true\n' }, { aux: { ID: 'sha256:abc123' } }, { stream: 'Successfully built abc123def456\n' }]), (l) => lines.push(l));
    expect(res.imageId).toBe('sha256:abc123');
    expect(lines).toContain('Step 2/2 : RUN true');
  });

  it('rejects on errorDetail, naming the failing step and the message', async () => {
    const s = engine([
      { stream: 'Step 1/3 : FROM base:1\n' },
      { stream: 'Step 2/3 : RUN /bin/micromamba create -y -p /opt/env -f /opt/sifpack/environment.yml\n' },
      { stream: 'critical libmamba Could not solve for environment specs\n' },
      { errorDetail: { code: 1, message: "The command '/bin/sh -c /bin/micromamba create' returned a non-zero code: 1" }, error: "The command '/bin/sh -c /bin/micromamba create' returned a non-zero code: 1" },
    ]);
    await expect(readBuildStream(s, () => undefined)).rejects.toThrow("docker build failed at Step 2/3 : RUN /bin/micromamba create -y -p /opt/env -f /opt/sifpack/environment.yml: The command '/bin/sh -c /bin/micromamba create' returned a non-zero code: 1");
  });

  it('a stream that just ends is not success', async () => {
    await expect(readBuildStream(engine([{ stream: 'Step 1/2 : FROM base:1\n' }]), () => undefined)).rejects.toThrow('docker build ended without producing an image (last step: Step 1/2 : FROM base:1)');
  });

  it('objects split across chunks and several in one chunk are both read', async () => {
    const text = `${JSON.stringify({ stream: 'Step 1/1 : FROM a:1\n' })}\n${JSON.stringify({ aux: { ID: 'sha256:split' } })}\n`;
    const s = Readable.from([text.slice(0, 7), text.slice(7, 40), text.slice(40)]);
    expect((await readBuildStream(s, () => undefined)).imageId).toBe('sha256:split');
  });
});
