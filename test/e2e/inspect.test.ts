import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { APPTAINER_IMAGES, tempDir } from '../helpers.js';
import { sifpack } from './cli.js';

const IMAGES = APPTAINER_IMAGES;
let dir: string;
beforeAll(async () => {
  dir = await tempDir();
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

describe('sifpack inspect on the images from apptainer\'s test suite', () => {
  it('busybox_amd64.sif: runnable, signed, def file and labels from inspect-metadata.json', async () => {
    const r = await sifpack(['inspect', path.join(IMAGES, 'busybox_amd64.sif'), '--json']);
    expect(r.code).toBe(0);
    const rep = JSON.parse(r.stdout) as { signed: boolean; objects: { type: string; partition?: { primary: boolean; arch: string } }[]; deffile: string; labels: Record<string, string> };
    expect(rep.signed).toBe(true);
    expect(rep.objects.find((o) => o.partition?.primary)?.partition?.arch).toBe('amd64');
    expect(rep.deffile).toContain('From: busybox:1.33.1');
    expect(rep.labels['org.label-schema.usage.singularity.version']).toBe('3.8.1');
  });

  it('one-group.sif and one-group-signed-pgp.sif: two partitions, arch 386; the second signed', async () => {
    const a = await sifpack(['inspect', path.join(IMAGES, 'one-group.sif')]);
    expect(a.code).toBe(0);
    expect(a.stdout).toMatch(/Squashfs\/\*System\/386/);
    expect(a.stdout).toMatch(/Raw\/System\/386/);
    expect(a.stdout).toContain('not signed');
    const b = await sifpack(['inspect', path.join(IMAGES, 'one-group-signed-pgp.sif')]);
    expect(b.code).toBe(0);
    expect(b.stdout).toMatch(/Signature\s+\S*\s+\d+\s+\d+\s+SHA-256 by [0-9A-F]{40} link 1 \(group\)/);
  });

  it('empty.sif: the header is shown, then exit 2: no primary partition', async () => {
    const r = await sifpack(['inspect', path.join(IMAGES, 'empty.sif')]);
    expect(r.stdout).toContain('(no objects)');
    expect(r.stderr).toContain('no primary system partition');
    expect(r.code).toBe(2);
  });

  it.each([
    ['a text file', async (f: string) => fs.writeFile(f, 'not an image at all, but long enough to hold a header if it were one '.repeat(3)), /not a SIF image/],
    ['a truncated image', async (f: string) => fs.writeFile(f, (await fs.readFile(path.join(IMAGES, 'busybox_amd64.sif'))).subarray(0, 50000)), /truncated SIF: object 4/],
  ])('%s: exit 2 saying what is wrong', async (_what, make, message) => {
    const f = path.join(dir, `${Math.random().toString(36).slice(2)}.sif`);
    await make(f);
    const r = await sifpack(['inspect', f]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
  });
});
