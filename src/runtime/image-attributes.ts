/**
 * What `apptainer inspect` shows (labels, def file, runscript, startscript,
 * test, help, environment), read the way apptainer reads it
 * (cmd/internal/cli/inspect.go in apptainer/apptainer):
 * - a SIF with an inspect-metadata.json object: the attributes come from it;
 * - any other SIF (sifpack's convert/Docker builds): the files under
 *   /.singularity.d in its squashfs, read with `unsquashfs -cat`;
 * - a sandbox directory: the files under DIR/.singularity.d.
 * The def file comes from the SIF's Deffile object when there is one, else
 * from /.singularity.d/Singularity.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { InputError } from '../errors.js';
import { DataType } from '../sif/layout.js';
import { type SifImage, findObject, readObject, requirePrimaryPartition } from '../sif/reader.js';
import type { ProcessRunner } from './process.js';

export type Section = 'labels' | 'deffile' | 'runscript' | 'startscript' | 'test' | 'helpfile' | 'environment';
export const SECTIONS: readonly Section[] = ['labels', 'deffile', 'runscript', 'startscript', 'test', 'helpfile', 'environment'];

/** apptainer's pkg/inspect Attributes, in its field order (the JSON keeps it). */
export interface Attributes {
  environment?: Record<string, string>;
  labels?: Record<string, string>;
  runscript?: string;
  test?: string;
  helpfile?: string;
  deffile?: string;
  startscript?: string;
}

/** Files under /.singularity.d for each section (apptainer's addSingleFileCommand names). */
const FILES: Record<Exclude<Section, 'environment' | 'deffile'>, string> = {
  labels: 'labels.json',
  runscript: 'runscript',
  startscript: 'startscript',
  test: 'test',
  helpfile: 'runscript.help',
};

/** Reads files of an image's root filesystem. */
interface RootReader {
  read(rel: string): Promise<string | undefined>;
  list(relDir: string): Promise<string[]>;
}

function sandboxReader(dir: string): RootReader {
  return {
    read: (rel) => fs.readFile(path.join(dir, rel), 'utf8').catch(() => undefined),
    list: (relDir) => fs.readdir(path.join(dir, relDir)).catch(() => [] as string[]),
  };
}

async function squashfsReader(img: SifImage, runner: ProcessRunner): Promise<RootReader> {
  const { descriptor } = requirePrimaryPartition(img);
  const bin = await runner.which('unsquashfs');
  if (!bin) throw new InputError(`${img.path}: reading files inside the image needs unsquashfs, which is not on PATH`, { hint: 'install squashfs-tools (Debian: apt-get install squashfs-tools)' });
  const off = String(descriptor.offset);
  const sb = await runner.run(bin, ['-o', off, '-s', img.path]);
  if (sb.code !== 0) throw new InputError(`${img.path}: its system partition is not a readable squashfs, so the files inside cannot be shown`, { details: sb.stderr.trim().split('\n').filter(Boolean).slice(0, 2) });
  return {
    read: async (rel) => {
      const r = await runner.run(bin, ['-o', off, '-cat', img.path, rel]);
      return r.code === 0 ? r.stdout : undefined;
    },
    list: async (relDir) => {
      const r = await runner.run(bin, ['-o', off, '-l', '-d', '', img.path, relDir]);
      if (r.code !== 0) return [];
      const prefix = `${relDir}/`;
      return r.stdout.split('\n').map((l) => l.trim().replace(/^\/+/, '')).filter((l) => l.startsWith(prefix) && !l.slice(prefix.length).includes('/')).map((l) => l.slice(prefix.length));
    },
  };
}

/** apptainer's cat_file keeps the text and drops the trailing newlines. */
const trimEnd = (s: string) => s.replace(/\n+$/, '');

async function fromFiles(reader: RootReader, sections: ReadonlySet<Section>): Promise<Attributes> {
  const a: Attributes = {};
  const base = '.singularity.d';
  if (sections.has('labels')) {
    const text = await reader.read(`${base}/labels.json`);
    if (text !== undefined) {
      try {
        a.labels = Object.fromEntries(Object.entries(JSON.parse(text) as Record<string, unknown>).map(([k, v]) => [k, String(v)]));
      } catch {
        // apptainer warns "Unable to parse labels" and shows none.
      }
    }
  }
  for (const s of ['runscript', 'startscript', 'test', 'helpfile'] as const) {
    if (!sections.has(s)) continue;
    const text = await reader.read(`${base}/${FILES[s]}`);
    if (text !== undefined) a[s] = trimEnd(text);
  }
  if (sections.has('environment')) {
    const names = (await reader.list(`${base}/env`)).sort();
    const env: Record<string, string> = {};
    for (const n of names.filter((x) => /^10-docker.*\.sh$/.test(x) || /^9.*-environment\.sh$/.test(x))) {
      const text = await reader.read(`${base}/env/${n}`);
      if (text !== undefined) env[`/${base}/env/${n}`] = trimEnd(text);
    }
    if (Object.keys(env).length) a.environment = env;
  }
  return a;
}

/** The sections asked for, from a SIF file or a sandbox directory. */
export async function readAttributes(target: { sif: SifImage } | { sandbox: string }, sections: ReadonlySet<Section>, runner: ProcessRunner): Promise<Attributes> {
  if ('sandbox' in target) {
    const st = await fs.stat(path.join(target.sandbox, '.singularity.d')).catch(() => undefined);
    if (!st?.isDirectory()) throw new InputError(`IMAGE ${target.sandbox}: a directory, but not a sandbox image (no .singularity.d inside)`, { hint: 'give a .sif file, or a directory made by `apptainer build --sandbox`' });
    const reader = sandboxReader(target.sandbox);
    const a = await fromFiles(reader, sections);
    if (sections.has('deffile')) {
      const d = await reader.read('.singularity.d/Singularity');
      if (d !== undefined) a.deffile = trimEnd(d);
    }
    return a;
  }
  const img = target.sif;
  const metaObj = findObject(img, DataType.GenericJSON, 'inspect-metadata.json');
  let a: Attributes;
  if (metaObj) {
    const meta = JSON.parse((await readObject(img, metaObj)).toString('utf8')) as { data?: { attributes?: Attributes } };
    const all = meta.data?.attributes ?? {};
    a = {};
    for (const s of sections) if (all[s] !== undefined) (a as Record<string, unknown>)[s] = all[s];
  } else {
    const wantFiles = [...sections].some((s) => s !== 'deffile');
    a = wantFiles ? await fromFiles(await squashfsReader(img, runner), sections) : {};
  }
  if (sections.has('deffile') && !metaObj) {
    const d = findObject(img, DataType.Deffile);
    // The object's text as it is: apptainer prints it untrimmed.
    if (d) a.deffile = (await readObject(img, d)).toString('utf8');
    else {
      const text = await (await squashfsReader(img, runner)).read('.singularity.d/Singularity');
      if (text !== undefined) a.deffile = trimEnd(text);
    }
  }
  return a;
}

/** apptainer's text output: def, runscript, startscript, test, help, environment, labels. */
export function formatAttributesText(a: Attributes): string {
  let out = '';
  for (const s of ['deffile', 'runscript', 'startscript', 'test', 'helpfile'] as const) if (a[s]) out += `${a[s]}\n`;
  for (const k of Object.keys(a.environment ?? {}).sort()) out += `=== ${k} ===\n${a.environment![k]}\n\n`;
  for (const k of Object.keys(a.labels ?? {}).sort()) out += `${k}: ${a.labels![k]}\n`;
  return out;
}

/**
 * apptainer's `--json`: Go's json.MarshalIndent(metadata, "", "\t") of
 * {data:{attributes}, type:"container"}: struct fields in declaration order,
 * map keys sorted, empty ones left out, and <, >, & escaped as Go does.
 */
export function formatAttributesJson(a: Attributes): string {
  const sorted = (m?: Record<string, string>) => (m && Object.keys(m).length ? Object.fromEntries(Object.keys(m).sort().map((k) => [k, m[k]])) : undefined);
  const attributes = {
    environment: sorted(a.environment),
    labels: sorted(a.labels),
    runscript: a.runscript || undefined,
    test: a.test || undefined,
    helpfile: a.helpfile || undefined,
    deffile: a.deffile || undefined,
    startscript: a.startscript || undefined,
  };
  const text = JSON.stringify({ data: { attributes }, type: 'container' }, null, '\t');
  return `${text.replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)}\n`;
}
