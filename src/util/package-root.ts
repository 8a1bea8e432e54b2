import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The directory holding sifpack's package.json (and defs/, templates/), from src/ or dist/ alike. */
export const PACKAGE_ROOT: string = (() => {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    try {
      const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string };
      if (pkg.name === 'sifpack') return dir;
    } catch {
      /* keep walking up */
    }
    const up = path.dirname(dir);
    if (up === dir) throw new Error('sifpack: cannot find its own package.json');
    dir = up;
  }
})();

export const VERSION: string = (JSON.parse(readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
