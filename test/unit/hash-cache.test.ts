import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { cachedSha256 } from '../../src/util/hash-cache.js';
import { tempDir } from '../helpers.js';

it('remembers a file\'s sha256 until the file changes', async () => {
  const dir = await tempDir();
  const f = path.join(dir, 'img.sif');
  await fs.writeFile(f, 'one');
  const sha = (s: string) => `sha256:${createHash('sha256').update(s).digest('hex')}`;
  expect(await cachedSha256(f, dir)).toBe(sha('one'));
  const cache = JSON.parse(await fs.readFile(path.join(dir, '.sifpack/hashes.json'), 'utf8')) as Record<string, { sha256: string }>;
  expect(cache[f]!.sha256).toBe(sha('one'));
  // a stale cache entry is not trusted once size or mtime differ
  await fs.writeFile(f, 'two!');
  expect(await cachedSha256(f, dir)).toBe(sha('two!'));
  await fs.rm(dir, { recursive: true });
});
