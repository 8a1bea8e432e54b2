import path from 'node:path';

/** A path as users want to read it: relative when under `cwd`, absolute otherwise. */
export function displayPath(p: string, cwd: string): string {
  const rel = path.relative(cwd, p);
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : p;
}
