/**
 * Checks of scratch space before a build: builds unpack whole root
 * filesystems, and on clusters /tmp is often small or mounted noexec.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';

/** Mount options of the filesystem holding `dir`, from /proc/self/mountinfo text. */
export function mountOptionsFor(dir: string, mountinfo: string): string[] {
  let best: { point: string; options: string[] } | undefined;
  for (const line of mountinfo.split('\n')) {
    const f = line.split(' ');
    if (f.length < 6) continue;
    const point = f[4]!.replace(/\\040/g, ' ');
    const inside = point === '/' || dir === point || dir.startsWith(`${point}/`);
    if (inside && (!best || point.length > best.point.length)) {
      // per-mount options (field 6) and, after " - ", the superblock options
      const sep = f.indexOf('-');
      const superOpts = sep > 0 ? (f[sep + 3] ?? '').split(',') : [];
      best = { point, options: [...f[5]!.split(','), ...superOpts] };
    }
  }
  return best?.options ?? [];
}

export interface ScratchReport {
  dir: string;
  freeBytes: number;
  noexec: boolean;
}

/** Free space and noexec of `dir` (which must exist). */
export async function probeScratch(dir: string): Promise<ScratchReport> {
  const abs = path.resolve(dir);
  const st = await fs.statfs(abs);
  const mountinfo = await fs.readFile('/proc/self/mountinfo', 'utf8').catch(() => '');
  return { dir: abs, freeBytes: Number(st.bavail) * Number(st.bsize), noexec: mountOptionsFor(abs, mountinfo).includes('noexec') };
}

export const GiB = 2 ** 30;

/** "12.3 GiB" */
export function formatBytes(n: number): string {
  if (n >= GiB) return `${(n / GiB).toFixed(1)} GiB`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(1)} MiB`;
  return `${n} B`;
}
