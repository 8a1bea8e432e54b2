/**
 * Reading a conda prefix directly, without conda: conda-meta/*.json records,
 * conda-meta/history, the prefix's own .condarc, and pip packages in
 * site-packages. Works for envs made by conda, mamba and micromamba alike.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { parseYamlFile } from '../util/yaml.js';
import { InputError } from '../errors.js';
import { type HistoryData, parseHistory } from './history.js';
import { type PipPackage, findSitePackages, readPipPackages } from './site-packages.js';
import { mapLimit } from '../util/map-limit.js';

/** One installed conda package, as its conda-meta record says. */
export interface CondaRecord {
  name: string;
  version: string;
  build: string;
  /** The channel as recorded: a URL (`https://conda.anaconda.org/conda-forge/noarch`) or a name. */
  channel?: string;
  subdir?: string;
  url?: string;
  fn?: string;
  md5?: string;
  sha256?: string;
  noarch?: string;
  /** Names of the packages it depends on (first word of each `depends` entry). */
  depends: string[];
  /** What the user typed for it, when conda recorded that (`"None"` means a dependency). */
  requestedSpec?: string;
  /** The record file, for messages. */
  file: string;
}

export interface PrefixData {
  prefix: string;
  records: CondaRecord[];
  history?: HistoryData;
  /** Channels from `<prefix>/.condarc` (`conda config --env`), if any. */
  condarcChannels?: string[];
  pip: PipPackage[];
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

/** Validates one record's JSON. Exported for tests. */
export function parseRecord(text: string, file: string): { record: CondaRecord; ownedMetadata: string[] } {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new InputError(`${file}: corrupt conda record: not valid JSON (${(err as Error).message})`, {
      hint: 'remove the file and reinstall that package, or recreate the environment',
    });
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new InputError(`${file}: corrupt conda record: expected a JSON object`);
  const r = raw as Record<string, unknown>;
  for (const field of ['name', 'version', 'build'] as const) {
    if (typeof r[field] !== 'string' || r[field] === '') {
      throw new InputError(`${file}: corrupt conda record: field '${field}' is missing or not a string`, {
        hint: 'a conda record needs name, version and build',
      });
    }
  }
  const owned = new Set<string>();
  if (Array.isArray(r.files)) {
    for (const f of r.files) {
      if (typeof f !== 'string') continue;
      const m = /(?:^|\/)site-packages\/([^/]+\.(?:dist|egg)-info)(?:\/|$)/.exec(f);
      if (m) owned.add(m[1]!);
    }
  }
  const depends = Array.isArray(r.depends) ? r.depends.filter((d): d is string => typeof d === 'string').map((d) => d.split(/\s+/)[0]!) : [];
  const record: CondaRecord = {
    name: r.name as string,
    version: r.version as string,
    build: r.build as string,
    depends,
    file,
  };
  const optional = { channel: str(r.channel) ?? str(r.schannel), subdir: str(r.subdir), url: str(r.url), fn: str(r.fn), md5: str(r.md5), sha256: str(r.sha256), requestedSpec: str(r.requested_spec) };
  for (const [k, v] of Object.entries(optional)) if (v !== undefined) (record as unknown as Record<string, string>)[k] = v;
  const noarch = r.noarch;
  if (typeof noarch === 'string' && noarch) record.noarch = noarch;
  else if (noarch && typeof noarch === 'object' && typeof (noarch as { type?: unknown }).type === 'string') record.noarch = (noarch as { type: string }).type;
  return { record, ownedMetadata: [...owned] };
}

async function readCondarcChannels(prefix: string): Promise<string[] | undefined> {
  const file = path.join(prefix, '.condarc');
  const text = await fs.readFile(file, 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  const raw = parseYamlFile(text, file);
  const ch = raw && typeof raw === 'object' ? (raw as { channels?: unknown }).channels : undefined;
  return Array.isArray(ch) ? ch.filter((c): c is string => typeof c === 'string') : undefined;
}

/** True when `dir` has a conda-meta/ directory. */
export async function isCondaPrefix(dir: string): Promise<boolean> {
  return fs.stat(path.join(dir, 'conda-meta')).then((s) => s.isDirectory(), () => false);
}

/** Reads everything sifpack needs from a prefix. Throws InputError naming the file on bad input. */
export async function readPrefix(prefixArg: string): Promise<PrefixData> {
  const prefix = path.resolve(prefixArg);
  const meta = path.join(prefix, 'conda-meta');
  const st = await fs.stat(prefix).catch(() => undefined);
  if (!st) throw new InputError(`${prefixArg}: no such directory`, { hint: 'pass the path of a conda environment (the directory holding conda-meta/)' });
  if (!st.isDirectory()) throw new InputError(`${prefixArg}: not a directory`, { hint: 'pass the path of a conda environment (the directory holding conda-meta/)' });
  if (!(await isCondaPrefix(prefix))) {
    throw new InputError(`${prefixArg}: not a conda prefix (no conda-meta/ directory)`, {
      hint: 'a conda environment has conda-meta/ at its top; `conda env list` shows their paths',
    });
  }
  let names: string[];
  try {
    names = (await fs.readdir(meta)).filter((n) => n.endsWith('.json')).sort();
  } catch (err) {
    throw new InputError(`${meta}: cannot read: ${(err as Error).message}`);
  }
  const parsed = await mapLimit(names, 64, async (n) => {
      const file = path.join(meta, n);
      let text: string;
      try {
        text = await fs.readFile(file, 'utf8');
      } catch (err) {
        throw new InputError(`${file}: cannot read conda record: ${(err as Error).message}`);
      }
      return parseRecord(text, file);
  });
  const owned = new Set(parsed.flatMap((p) => p.ownedMetadata));

  let history: HistoryData | undefined;
  const historyFile = path.join(meta, 'history');
  let historyText: string | undefined;
  try {
    historyText = await fs.readFile(historyFile, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new InputError(`${historyFile}: cannot read the history: ${(err as Error).message}`, {
        hint: 'sifpack needs read access to conda-meta/history to know which packages you asked for',
      });
    }
  }
  if (historyText !== undefined) {
    if (historyText.includes('\u0000')) throw new InputError(`${historyFile}: cannot read the history: it holds binary data`);
    history = parseHistory(historyText, historyFile);
  }

  const sitePackages = await findSitePackages(prefix);
  const pip = (await Promise.all(sitePackages.map((sp) => readPipPackages(sp, owned)))).flat();
  const condarcChannels = await readCondarcChannels(prefix);
  return {
    prefix,
    records: parsed.map((p) => p.record),
    ...(history ? { history } : {}),
    ...(condarcChannels ? { condarcChannels } : {}),
    pip,
  };
}
