/**
 * sha256 of big files, remembered in .sifpack/hashes.json by path, size,
 * inode and mtime, so a cache-hit build does not re-read a multi-GB image
 * just to print its digest. Any change to the file means a fresh hash.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { makeStateDir } from './atomic-write.js';
import { sha256File } from './hash-file.js';

interface Entry {
  size: number;
  ino: number;
  mtimeMs: number;
  sha256: string;
}

export async function cachedSha256(file: string, stateDir: string): Promise<string> {
  const abs = path.resolve(file);
  const st = await fs.stat(abs);
  const cacheFile = path.join(stateDir, '.sifpack', 'hashes.json');
  const cache = JSON.parse(await fs.readFile(cacheFile, 'utf8').catch(() => '{}')) as Record<string, Entry>;
  const hit = cache[abs];
  if (hit && hit.size === st.size && hit.ino === st.ino && hit.mtimeMs === st.mtimeMs) return hit.sha256;
  const sha256 = await sha256File(abs);
  cache[abs] = { size: st.size, ino: st.ino, mtimeMs: st.mtimeMs, sha256 };
  await makeStateDir(path.dirname(cacheFile));
  // Whole-file rewrite through a rename: a torn cache is just a cache miss.
  const tmp = `${cacheFile}.${process.pid}.tmp`;
  await fs.writeFile(tmp, JSON.stringify(cache), { mode: 0o644 });
  await fs.rename(tmp, cacheFile);
  return sha256;
}
