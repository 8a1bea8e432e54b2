/**
 * The SIF reader and writer. Expected values for the four images apptainer's
 * own test suite holds come from Sylabs' siftool (an independent reader);
 * images our writer makes are read back by siftool and unsquashfs.
 */
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import { DATA_TYPE_NAMES, DataType, FsType, PartType, decodeSignatureExtra, uuidString } from '../../src/sif/layout.js';
import { partitionOf, readMetadataLabels, readObject, readSif, requirePrimaryPartition } from '../../src/sif/reader.js';
import { SifWriter } from '../../src/sif/writer.js';
import { APPTAINER_IMAGES, tempDir } from '../helpers.js';

const IMAGES = APPTAINER_IMAGES;
const img = (f: string) => path.join(IMAGES, f);

/** A tool the CI installs; missing here is a failure, not a skip. */
function tool(name: string): string {
  try {
    return execFileSync('sh', ['-c', `command -v ${name}`]).toString().trim();
  } catch {
    throw new Error(`${name} is not installed: run test/services/install.sh (npm run test:all does)`);
  }
}

let dir: string;
beforeAll(async () => {
  dir = await tempDir('sifpack-sif-');
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

describe("reading images apptainer built (values from siftool's listing)", () => {
  it('busybox_amd64.sif: header, five objects, primary squashfs amd64, a signature', async () => {
    const s = await readSif(img('busybox_amd64.sif'));
    expect(s.header).toMatchObject({ launchScript: '#!/usr/bin/env run-singularity\n', version: '01', arch: 'amd64', descriptorsFree: 43n, descriptorsTotal: 48n, descriptorsOffset: 4096n, dataOffset: 32768n });
    expect(uuidString(s.header.id)).toBe('4f307b4c-58a8-4753-9c0f-21dceefed4a6');
    expect(new Date(Number(s.header.createdAt) * 1000).toISOString()).toBe('2021-08-02T19:09:36.000Z');
    expect(s.descriptors.map((d) => [d.id, d.groupId, d.linkedId, Number(d.offset), Number(d.offset + d.size), DATA_TYPE_NAMES[d.dataType], d.name])).toEqual([
      [1, 1, 0, 32768, 32807, 'Def.FILE', '.'],
      [2, 1, 0, 36864, 38760, 'JSON.Generic', 'inspect-metadata.json'],
      [3, 1, 0, 40960, 41050, 'JSON.Generic', 'oci-config.json'],
      [4, 1, 0, 45056, 790528, 'FS', 'squashfs-275937245'],
      [5, 0, 1, 790528, 792293, 'Signature', '.'],
    ]);
    const { partition } = requirePrimaryPartition(s);
    expect(partition).toEqual({ fsType: FsType.Squashfs, partType: PartType.PrimarySystem, arch: 'amd64' });
    expect(decodeSignatureExtra(s.descriptors[4]!.extra)).toEqual({ hashType: 1, entity: '1137E72E6816BFC06D9CAA0D15F3F4F4F14B03B2' });
    expect((await readObject(s, s.descriptors[0]!)).toString()).toBe('BootStrap: docker\nFrom: busybox:1.33.1\n');
    expect(await readMetadataLabels(s)).toMatchObject({ 'org.label-schema.usage.singularity.version': '3.8.1', 'org.label-schema.build-arch': 'amd64' });
  });

  it('one-group.sif: a raw system partition and a squashfs primary one, arch 386', async () => {
    const s = await readSif(img('one-group.sif'));
    expect(s.header.arch).toBe('386');
    expect(s.descriptors.map((d) => partitionOf(d))).toEqual([
      { fsType: FsType.Raw, partType: PartType.System, arch: '386' },
      { fsType: FsType.Squashfs, partType: PartType.PrimarySystem, arch: '386' },
    ]);
  });

  it('one-group-signed-pgp.sif: the signature object links group 1', async () => {
    const s = await readSif(img('one-group-signed-pgp.sif'));
    const sig = s.descriptors.find((d) => d.dataType === DataType.Signature)!;
    expect([sig.id, sig.groupId, sig.linkedId, sig.linksGroup, Number(sig.offset), Number(sig.offset + sig.size)]).toEqual([3, 0, 1, true, 45056, 46455]);
  });

  it('empty.sif: no objects, and so no primary partition (exit 2)', async () => {
    const s = await readSif(img('empty.sif'));
    expect(s.descriptors).toEqual([]);
    expect(s.header.arch).toBe('unknown');
    expect(() => requirePrimaryPartition(s)).toThrow(/no primary system partition/);
  });
});

describe('bad input is exit 2 saying what is wrong', () => {
  it('not a SIF', async () => {
    const f = path.join(dir, 'notes.txt');
    await fs.writeFile(f, 'x'.repeat(500));
    await expect(readSif(f)).rejects.toThrow(`${f}: not a SIF image (no SIF_MAGIC in its header)`);
    await expect(readSif(f)).rejects.toBeInstanceOf(InputError);
  });
  it('a file cut inside the descriptor table', async () => {
    const f = path.join(dir, 'cut-table.sif');
    await fs.writeFile(f, (await fs.readFile(img('busybox_amd64.sif'))).subarray(0, 20000));
    await expect(readSif(f)).rejects.toThrow(`${f}: truncated SIF: 20000 bytes, but its descriptor table ends at 32176`);
  });
  it('a file cut inside the partition names the object', async () => {
    const f = path.join(dir, 'cut-data.sif');
    await fs.writeFile(f, (await fs.readFile(img('busybox_amd64.sif'))).subarray(0, 100000));
    await expect(readSif(f)).rejects.toThrow(`${f}: truncated SIF: object 4 (squashfs-275937245) ends at byte 790528, but the file has 100000`);
  });
  it('a missing file', async () => {
    await expect(readSif(path.join(dir, 'nope.sif'))).rejects.toThrow(/nope\.sif: cannot open: no such file/);
  });
});

describe('writing: read back by our reader, by siftool and by unsquashfs', () => {
  let squashfs: string;
  let ours: string;
  const now = new Date('2026-01-02T03:04:05Z');
  const id = Buffer.from('0123456789abcdef0123456789abcdef', 'hex');
  const deffile = Buffer.from('Bootstrap: docker\nFrom: sifpack-test/bookworm-python:12\n');
  const meta = Buffer.from(JSON.stringify({ data: { attributes: { labels: { 'sifpack.env-hash': 'sha256:abc' } } }, type: 'container' }));

  beforeAll(async () => {
    tool('mksquashfs');
    const root = path.join(dir, 'root');
    await fs.mkdir(path.join(root, 'etc'), { recursive: true });
    await fs.writeFile(path.join(root, 'etc', 'hello'), 'hello from the partition\n');
    squashfs = path.join(dir, 'root.sqfs');
    execFileSync('mksquashfs', [root, squashfs, '-noappend', '-comp', 'gzip', '-quiet']);
    ours = path.join(dir, 'ours.sif');
    const w = await SifWriter.create(ours, { now, id });
    w.addObject(DataType.Deffile, deffile);
    w.addObject(DataType.GenericJSON, meta, { name: 'inspect-metadata.json' });
    await w.writePartition((await import('node:fs')).createReadStream(squashfs), { arch: 'amd64', name: 'rootfs.squashfs' });
    await w.finish();
  });

  it('our reader: the same header, objects and bytes', async () => {
    const s = await readSif(ours);
    const sq = await fs.stat(squashfs);
    expect(s.header).toMatchObject({ arch: 'amd64', createdAt: 1767323045n, descriptorsFree: 45n, dataOffset: 32176n });
    expect(s.header.id).toEqual(id);
    const { descriptor } = requirePrimaryPartition(s);
    expect(Number(descriptor.offset) % 4096).toBe(0);
    expect(Number(descriptor.size)).toBe(sq.size);
    expect(await readObject(s, s.descriptors[0]!)).toEqual(deffile);
    expect(await readMetadataLabels(s)).toEqual({ 'sifpack.env-hash': 'sha256:abc' });
    expect(s.fileSize).toBe(Number(descriptor.offset) + sq.size);
  });

  it('siftool header and list show the objects and the primary squashfs partition with the right arch', () => {
    tool('siftool');
    const header = execFileSync('siftool', ['header', ours]).toString();
    expect(header).toMatch(/Primary Architecture:\s+amd64/);
    expect(header).toMatch(/ID:\s+01234567-89ab-cdef-0123-456789abcdef/);
    expect(header).toMatch(/Descriptors Free:\s+45/);
    const list = execFileSync('siftool', ['list', ours]).toString();
    expect(list).toMatch(/^1\s+\|1\s+\|NONE\s+\|32176-\d+\s+\|Def\.FILE$/m);
    expect(list).toMatch(/^2\s+\|1\s+\|NONE\s+\|\d+-\d+\s+\|JSON\.Generic$/m);
    expect(list).toMatch(/^3\s+\|1\s+\|NONE\s+\|\d+-\d+\s+\|FS \(Squashfs\/\*System\/amd64\)$/m);
    expect(execFileSync('siftool', ['dump', '1', ours]).toString()).toBe(deffile.toString());
  });

  it('agrees with a SIF assembled by siftool new/add from the same parts on every object\'s type, name, size and partition attributes', async () => {
    const theirs = path.join(dir, 'theirs.sif');
    await fs.writeFile(path.join(dir, 'def'), deffile);
    await fs.writeFile(path.join(dir, 'inspect-metadata.json'), meta);
    execFileSync('siftool', ['new', theirs]);
    execFileSync('siftool', ['add', theirs, path.join(dir, 'def'), '--datatype', '1', '--groupid', '1', '--filename', '']);
    execFileSync('siftool', ['add', theirs, path.join(dir, 'inspect-metadata.json'), '--datatype', '6', '--groupid', '1', '--filename', 'inspect-metadata.json']);
    execFileSync('siftool', ['add', theirs, squashfs, '--datatype', '4', '--parttype', '2', '--partfs', '1', '--partarch', '2', '--groupid', '1', '--filename', 'rootfs.squashfs']);
    const a = await readSif(ours);
    const b = await readSif(theirs);
    const shape = (s: typeof a) => s.descriptors.map((d) => ({ type: d.dataType, name: d.name, size: d.size, group: d.groupId, partition: partitionOf(d) }));
    expect(shape(a)).toEqual(shape(b));
    expect(a.header.arch).toBe(b.header.arch);
    // the partition bytes are the same squashfs in both
    const pa = requirePrimaryPartition(a).descriptor;
    const pb = requirePrimaryPartition(b).descriptor;
    const bytes = async (f: string, off: bigint, size: bigint) => (await fs.readFile(f)).subarray(Number(off), Number(off + size));
    expect((await bytes(ours, pa.offset, pa.size)).equals(await bytes(theirs, pb.offset, pb.size))).toBe(true);
  });

  it('unsquashfs -o OFFSET reads the root filesystem out of our SIF', async () => {
    const s = await readSif(ours);
    const off = String(requirePrimaryPartition(s).descriptor.offset);
    expect(execFileSync('unsquashfs', ['-o', off, '-ll', ours]).toString()).toMatch(/squashfs-root\/etc\/hello$/m);
    expect(execFileSync('unsquashfs', ['-o', off, '-cat', ours, 'etc/hello']).toString()).toBe('hello from the partition\n');
  });

  it('the partition is streamed, not buffered: 96 MiB through, heap grows far less', async () => {
    const big = path.join(dir, 'big.sif');
    const w = await SifWriter.create(big, { now });
    const chunk = Buffer.alloc(1024 * 1024, 0x5a);
    const total = 96;
    async function* gen() {
      for (let i = 0; i < total; i++) yield chunk;
    }
    global.gc?.();
    const before = process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers;
    let peak = before;
    const timer = setInterval(() => {
      const m = process.memoryUsage();
      peak = Math.max(peak, m.heapUsed + m.arrayBuffers);
    }, 5);
    await w.writePartition(Readable.from(gen()), { arch: 'amd64' });
    clearInterval(timer);
    await w.finish();
    expect((await fs.stat(big)).size).toBeGreaterThan(total * 1024 * 1024);
    expect(peak - before).toBeLessThan(32 * 1024 * 1024);
    await fs.rm(big);
  });

  it('abort leaves nothing behind; an existing target is not overwritten without force', async () => {
    const w = await SifWriter.create(path.join(dir, 'aborted.sif'));
    await w.abort();
    expect((await fs.readdir(dir)).filter((f) => f.includes('aborted'))).toEqual([]);
    await expect(SifWriter.create(ours)).rejects.toThrow(/already exists/);
  });
});
