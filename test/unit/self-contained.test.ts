/**
 * A plain clone must pass its own tests: no test may read a file outside the
 * repository (the CI checkout once had ../shared/testdata beside it; a user's
 * clone does not). Files from other projects are copied into test/fixtures/
 * with a SOURCE note.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers.js';

async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fs.readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...(await walk(p)));
    else if (/\.(ts|js|mjs|sh|ya?ml|json)$/.test(e.name) || e.name === 'apptainer') out.push(p);
  }
  return out;
}

/** Every place a file under test/ climbs out of the repository or names a sibling checkout. */
export function outsideReferences(file: string, text: string): string[] {
  const found: string[] = [];
  const lines = text.split('\n');
  lines.forEach((line, i) => {
    const where = `${path.relative(ROOT, file)}:${i + 1}`;
    // A relative path written as one string ('../../x'), resolved from the file's own directory.
    // (pip RECORD lines, `../../../bin/x,sha256=...,N`, are paths inside an env, not the repo.)
    for (const m of line.matchAll(/['"`]((?:\.\.\/)+[^'"`\s]*)['"`]/g)) {
      if (/,sha256=/.test(m[1]!)) continue;
      const target = path.resolve(path.dirname(file), m[1]!);
      if (target !== ROOT && !target.startsWith(ROOT + path.sep)) found.push(`${where}: ${m[1]}`);
    }
    // path.resolve/join(ROOT, '..', ...) climbs above the repository root.
    if (/path\.(resolve|join)\(\s*ROOT\s*,\s*['"]\.\.['"]/.test(line)) found.push(`${where}: ${line.trim()}`);
    // The sibling checkout of the lead's machine and its shared test data.
    if (/shared[/'", ]+testdata|\/work\/(shared|services|main|wt)\b/.test(line)) found.push(`${where}: ${line.trim()}`);
  });
  return found;
}

describe('the test suite is self-contained', () => {
  it('no test file refers to a path outside the repository', async () => {
    const self = path.join(ROOT, 'test', 'unit', 'self-contained.test.ts');
    const files = (await walk(path.join(ROOT, 'test'))).filter((f) => f !== self && !f.includes(`${path.sep}fixtures${path.sep}conda${path.sep}`));
    expect(files.length).toBeGreaterThan(20);
    const refs: string[] = [];
    for (const f of files) refs.push(...outsideReferences(f, await fs.readFile(f, 'utf8')));
    expect(refs).toEqual([]);
  });

  it('the check itself catches the ways a test used to reach ../shared', () => {
    const f = path.join(ROOT, 'test', 'helpers.ts');
    expect(outsideReferences(f, "export const SHARED = path.resolve(ROOT, '..', 'shared', 'testdata');")).toHaveLength(2);
    expect(outsideReferences(f, "const x = '../../shared/testdata/conda';")).toHaveLength(2);
    expect(outsideReferences(f, "const x = '../fixtures/conda';")).toEqual([]);
    expect(outsideReferences(path.join(ROOT, 'test', 'unit', 'a.test.ts'), "import { x } from '../helpers.js';")).toEqual([]);
  });

  it('every copied fixture set carries a SOURCE note with repository, commit and licence', async () => {
    for (const set of ['apptainer-images', 'conda']) {
      const note = await fs.readFile(path.join(ROOT, 'test', 'fixtures', set, 'SOURCE'), 'utf8');
      expect(note).toMatch(/^repository: https:\/\/github\.com\/\S+$/m);
      expect(note).toMatch(/^commit: [0-9a-f]{40}$/m);
      expect(note).toMatch(/^licence: \S+/m);
    }
  });
});
