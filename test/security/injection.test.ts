/**
 * Injection: a value from an environment.yml, a sifpack.yml setting or a flag
 * never changes the structure of what sifpack renders. For each place a value
 * enters, the file is rendered once with a benign marker and once with each
 * hostile value; the hostile value must either be refused (an InputError
 * naming where it came from) or leave the definition file with the same
 * sections and line counts, every shell line with the same operators and
 * expansions, and differ only inside the words that held the marker. The
 * Dockerfile gets the same check on its instruction list.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recipeFromInputs } from '../../src/commands/def.js';
import { InputError } from '../../src/errors.js';
import { renderDef } from '../../src/render/def.js';
import { renderDockerfile } from '../../src/render/dockerfile.js';
import { tempDir } from '../helpers.js';
import { HOSTILE } from '../fixtures/hostile.js';
import { splitShellLine } from './shell-words.js';

const MARK = 'BENIGNx';
const EXTRA_HOSTILE = [
  'x\n%post\ntouch /pwned',
  'x\n%runscript\nexec sh',
  '"; touch /pwned; echo "',
  "'; touch /pwned; echo '",
  '$(touch /pwned)',
  '`touch /pwned`',
  '../../etc/passwd',
  'x\r\nLABEL evil=1',
  'x\\\nRUN touch /pwned',
  'x" \\\n    EVIL="1',
];
const VALUES = [...HOSTILE.filter((h) => h !== ''), ...EXTRA_HOSTILE];

type Env = { name: string; channels: string[]; dependencies: (string | { pip: string[] })[]; variables?: Record<string, string> };
const benignEnv = (): Env => ({ name: 'analysis', channels: ['conda-forge'], dependencies: ['python=3.11', 'numpy=1.26', { pip: ['requests==2.31.0'] }], variables: { OMP_NUM_THREADS: '1' } });

/** Where a value can enter: a function that puts `v` there. */
const PLACES: Record<string, { env?: (e: Env, v: string) => void; baseImage?: (v: string) => string }> = {
  'env name': { env: (e, v) => void (e.name = v) },
  'channel': { env: (e, v) => void (e.channels = [v, 'conda-forge']) },
  'conda spec': { env: (e, v) => void e.dependencies.splice(1, 0, v) },
  'pip line': { env: (e, v) => void (e.dependencies[2] = { pip: ['requests==2.31.0', v] }) },
  'variable value': { env: (e, v) => void (e.variables = { OMP_NUM_THREADS: '1', MYVAR: v }) },
  'variable name': { env: (e, v) => void (e.variables = { OMP_NUM_THREADS: '1', [v]: '1' }) },
  // image references are lower-case: the marker is too
  '--base-image': { baseImage: (v) => `registry.example.org/${v.toLowerCase()}:1.0` },
};

let dir: string;
beforeAll(async () => {
  dir = await tempDir('sifpack-inject-');
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

async function render(place: string, v: string): Promise<{ def: string; docker: string } | InputError> {
  const p = PLACES[place]!;
  const env = benignEnv();
  p.env?.(env, v);
  const sub = await fs.mkdtemp(path.join(dir, 'case-'));
  await fs.writeFile(path.join(sub, 'environment.yml'), YAML.stringify(env));
  try {
    const settings = { base: 'micromamba', defs: [] as string[], ...(p.baseImage ? { baseImage: p.baseImage(v) } : {}) };
    const { recipe } = await recipeFromInputs({ envFile: 'environment.yml', defDir: sub, cwd: sub }, settings);
    return { def: renderDef(recipe, { version: '0.0.0', defName: 'x.def' }).text, docker: renderDockerfile(recipe, { version: '0.0.0' }).text };
  } catch (err) {
    if (err instanceof InputError) return err;
    throw err;
  }
}

const SHELL_SECTIONS = new Set(['post', 'environment', 'runscript', 'test', 'startscript']);

/** Sections of a def file: name → lines (comments and blank lines kept out). */
function defSections(def: string): [string, string[]][] {
  const out: [string, string[]][] = [['header', []]];
  for (const line of def.split('\n')) {
    const m = /^%(\w+)\s*$/.exec(line);
    if (m) out.push([m[1]!, []]);
    else if (line.trim() && !line.trim().startsWith('#')) out.at(-1)![1].push(line.trim());
  }
  return out;
}

/** Dockerfile instructions with continuation lines joined. */
function instructions(text: string): string[] {
  const out: string[] = [];
  let cur = '';
  for (const line of text.split('\n')) {
    if (!cur && (!line.trim() || line.trim().startsWith('#'))) continue;
    cur += (cur ? '\n' : '') + line;
    if (!line.endsWith('\\')) {
      out.push(cur);
      cur = '';
    }
  }
  if (cur) out.push(cur);
  return out;
}

function sameShellStructure(benign: string, hostile: string, where: string): void {
  const b = splitShellLine(benign);
  const h = splitShellLine(hostile);
  expect(h.operators, `${where}: operators\n  benign:  ${benign}\n  hostile: ${hostile}`).toEqual(b.operators);
  expect(h.expansions, `${where}: expansions\n  benign:  ${benign}\n  hostile: ${hostile}`).toEqual(b.expansions);
  expect(h.words.length, `${where}: word count\n  benign:  ${benign}\n  hostile: ${hostile}`).toBe(b.words.length);
  b.words.forEach((w, i) => {
    if (w !== h.words[i]) expect(w.toLowerCase(), `${where}: word ${i} changed but did not hold the value\n  benign:  ${benign}\n  hostile: ${hostile}`).toContain(MARK.toLowerCase());
  });
}

describe('hostile values never change the structure of the definition file or Dockerfile', () => {
  for (const place of Object.keys(PLACES)) {
    it(place, async () => {
      const benign = await render(place, MARK);
      if (benign instanceof InputError) throw new Error(`the benign value was refused at ${place}: ${benign.message}`);
      const bSections = defSections(benign.def);
      const bDocker = instructions(benign.docker);
      let refused = 0;
      const refusedLineBreaks: string[] = [];
      for (const v of VALUES) {
        const r = await render(place, v);
        const what = `${place} = ${JSON.stringify(v)}`;
        if (r instanceof InputError) {
          refused++;
          if (/[\r\n]/.test(v)) refusedLineBreaks.push(v);
          expect(r.message, what).toMatch(/environment\.yml|base-image|base image/);
          continue;
        }
        const hSections = defSections(r.def);
        expect(hSections.map(([n, l]) => `${n}:${l.length}`), `${what}: def sections`).toEqual(bSections.map(([n, l]) => `${n}:${l.length}`));
        hSections.forEach(([name, lines], si) => {
          if (!SHELL_SECTIONS.has(name)) return;
          lines.forEach((line, li) => sameShellStructure(bSections[si]![1][li]!, line, `${what}: %${name} line ${li + 1}`));
        });
        const hDocker = instructions(r.docker);
        expect(hDocker.map((i) => i.split(/\s/)[0]), `${what}: Dockerfile instructions`).toEqual(bDocker.map((i) => i.split(/\s/)[0]));
        hDocker.forEach((ins, k) => {
          expect(ins.split('\n').length, `${what}: Dockerfile instruction ${k + 1} line count\n${ins}`).toBe(bDocker[k]!.split('\n').length);
          if (/^RUN /.test(ins) && !ins.startsWith('RUN [')) {
            sameShellStructure(bDocker[k]!.replace(/\\\n/g, ' ').slice(4), ins.replace(/\\\n/g, ' ').slice(4), `${what}: Dockerfile ${ins.split('\n')[0]}`);
          }
        });
      }
      // A line break can never be written into a line-based file: always refused.
      // And the structural check above must have run on some values.
      expect(refusedLineBreaks, `${place}: values with line breaks that were accepted`).toEqual(VALUES.filter((v) => /[\r\n]/.test(v)));
      expect(refused, `${place}: every value refused, so nothing was checked`).toBeLessThan(VALUES.length);
    });
  }
});
