/**
 * An image's labels: from the inspect-metadata.json object when the SIF has
 * one (no unpacking), else from /.singularity.d/labels.json inside the
 * squashfs, read with `unsquashfs -o OFFSET -cat`.
 */
import { readMetadataLabels, readSif, requirePrimaryPartition, type SifImage } from '../sif/reader.js';
import type { ProcessRunner } from './process.js';

export async function labelsFromSquashfs(img: SifImage, runner: ProcessRunner): Promise<Record<string, string> | undefined> {
  const { descriptor } = requirePrimaryPartition(img);
  const bin = await runner.which('unsquashfs');
  if (!bin) return undefined;
  const res = await runner.run(bin, ['-o', String(descriptor.offset), '-cat', img.path, '.singularity.d/labels.json']);
  if (res.code !== 0 || !res.stdout.trim()) return undefined;
  try {
    const raw = JSON.parse(res.stdout) as Record<string, unknown>;
    return Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, String(v)]));
  } catch {
    return undefined;
  }
}

/** Labels of the image at `file`, or undefined when it has none we can read. */
export async function imageLabels(file: string, runner: ProcessRunner): Promise<{ labels?: Record<string, string>; from?: 'metadata' | 'squashfs' }> {
  const img = await readSif(file);
  const meta = await readMetadataLabels(img);
  if (meta) return { labels: meta, from: 'metadata' };
  const sq = await labelsFromSquashfs(img, runner).catch(() => undefined);
  return sq ? { labels: sq, from: 'squashfs' } : {};
}
