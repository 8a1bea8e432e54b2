/**
 * Base presets: data files in defs/ (and in --defs / `defs:` directories),
 * one YAML file each, named after the preset. Loading validates every field
 * and names the file and field on error.
 */
import { promises as fs, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { parseYamlFile } from '../util/yaml.js';
import { InputError } from '../errors.js';
import type { Preset } from '../model/recipe.js';
import { PACKAGE_ROOT } from '../util/package-root.js';
import { closest } from '../util/suggest.js';

export const BUILTIN_DEFS = path.join(PACKAGE_ROOT, 'defs');

const KEYS = ['description', 'image', 'installer', 'installer-path', 'os-package-manager', 'os-packages', 'env-prefix', 'cuda', 'pip-extra-index-url', 'notes'] as const;

/** Validates one preset file's parsed content. */
export function parsePreset(name: string, raw: unknown, file: string): Preset {
  const where = (k: string) => `${file}: ${k}`;
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new InputError(`${file}: expected a mapping of preset fields`, { hint: `fields: ${KEYS.join(', ')}` });
  const r = raw as Record<string, unknown>;
  for (const k of Object.keys(r)) {
    if (!(KEYS as readonly string[]).includes(k)) {
      const g = closest(k, KEYS);
      throw new InputError(`${where(k)}: unknown field${g ? `; did you mean '${g}'?` : ''}`, { hint: `fields: ${KEYS.join(', ')}` });
    }
  }
  const str = (k: string, required: boolean): string | undefined => {
    const v = r[k];
    if (v === undefined && !required) return undefined;
    if (typeof v !== 'string' || v.trim() === '') throw new InputError(`${where(k)}: expected a non-empty string`);
    return v;
  };
  const list = (k: string): string[] => {
    const v = r[k] ?? [];
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw new InputError(`${where(k)}: expected a list of strings`);
    return v as string[];
  };
  const image = str('image', true)!;
  checkPinned(image, where('image'));
  const installer = str('installer', true)!;
  if (installer !== 'micromamba' && installer !== 'conda') throw new InputError(`${where('installer')}: "${installer}" is not valid; expected one of micromamba, conda`);
  const pm = str('os-package-manager', false) ?? 'apt';
  if (!['apt', 'dnf', 'none'].includes(pm)) throw new InputError(`${where('os-package-manager')}: "${pm}" is not valid; expected one of apt, dnf, none`);
  const envPrefix = str('env-prefix', false) ?? '/opt/env';
  if (!envPrefix.startsWith('/')) throw new InputError(`${where('env-prefix')}: must be an absolute path`);
  const cudaRaw = r.cuda;
  let cuda: string | undefined;
  if (cudaRaw !== undefined) {
    cuda = String(cudaRaw);
    if (!/^\d+\.\d+$/.test(cuda)) throw new InputError(`${where('cuda')}: "${cuda}" is not valid; expected a CUDA version like "12.6" (quote it in YAML)`);
  }
  const pipIndex = str('pip-extra-index-url', false);
  if (pipIndex !== undefined && !/^https:\/\/[^\s@/]+(\/[^\s]*)?$/.test(pipIndex)) {
    throw new InputError(`${where('pip-extra-index-url')}: "${pipIndex}" is not valid; expected an https:// URL without credentials`, { hint: 'e.g. https://download.pytorch.org/whl/rocm6.2' });
  }
  return {
    name,
    description: str('description', false) ?? name,
    image,
    installer,
    installerPath: str('installer-path', false) ?? installer,
    osPackageManager: pm as Preset['osPackageManager'],
    osPackages: list('os-packages'),
    envPrefix,
    ...(cuda ? { cuda } : {}),
    ...(pipIndex ? { pipExtraIndexUrl: pipIndex } : {}),
    notes: list('notes'),
    file,
  };
}

/**
 * A base image reference must be pinned: a tag other than `latest`, or a
 * digest. `latest` makes today's image and next month's rebuild differ.
 */
export function checkPinned(image: string, where: string): void {
  if (!IMAGE_REFERENCE.test(image)) {
    throw new InputError(`${where}: ${JSON.stringify(image)} is not a valid image reference`, { hint: 'e.g. mambaorg/micromamba:2.3.2-debian12-slim or registry.example.org:5000/team/base:1.0 (lower-case, no spaces)' });
  }
  if (/@sha256:[0-9a-f]{64}$/.test(image)) return;
  const lastSlash = image.lastIndexOf('/');
  const colon = image.indexOf(':', lastSlash + 1);
  const tag = colon >= 0 ? image.slice(colon + 1) : '';
  if (!tag || tag === 'latest') {
    throw new InputError(`${where}: "${image}" is not pinned`, { hint: 'name a version tag (mambaorg/micromamba:2.3.2-debian12-slim) or a digest (@sha256:...), never latest' });
  }
}

/**
 * An image reference as Docker's distribution/reference grammar defines it:
 * [host[:port]/]path[:tag][@digest], path components lower-case. Anything
 * else (spaces, newlines, quotes) could never be pulled and would reach the
 * def file's From: line and the Dockerfile's FROM.
 */
const HOST = '(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\\.(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?))*(?::[0-9]+)?';
const COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const IMAGE_REFERENCE = new RegExp(`^(?:${HOST}/)?${COMPONENT}(?:/${COMPONENT})*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$`);

/** A preset's name from its file name (NAME.yml or NAME.yaml), or undefined for any other file. */
const presetName = (entry: string): string | undefined => /^([A-Za-z0-9][A-Za-z0-9._-]*)\.ya?ml$/.exec(entry)?.[1];

/** Every preset name available, user directories first (a user preset shadows a built-in one). */
export async function listPresets(dirs: readonly string[]): Promise<{ name: string; file: string }[]> {
  const seen = new Map<string, string>();
  for (const dir of [...dirs, BUILTIN_DEFS]) {
    let entries: string[];
    try {
      entries = await fs.readdir(dir);
    } catch (err) {
      throw new InputError(`--defs ${dir}: cannot read the preset directory: ${(err as Error).message}`);
    }
    for (const e of entries.sort()) {
      const name = presetName(e);
      if (name && !seen.has(name)) seen.set(name, path.join(dir, e));
    }
  }
  return [...seen].map(([name, file]) => ({ name, file }));
}

/** The built-in presets with their descriptions, read when --help is shown (not at start-up). */
export function builtinPresetSummaries(): { name: string; description: string }[] {
  return readdirSync(BUILTIN_DEFS)
    .sort()
    .flatMap((e) => {
      const name = presetName(e);
      const file = path.join(BUILTIN_DEFS, e);
      return name ? [{ name, description: parsePreset(name, parseYamlFile(readFileSync(file, 'utf8'), file), file).description }] : [];
    });
}

/** Loads preset NAME; an unknown name lists the available ones. */
export async function loadPreset(name: string, dirs: readonly string[]): Promise<Preset> {
  const all = await listPresets(dirs);
  const hit = all.find((p) => p.name === name);
  if (!hit) {
    const g = closest(name, all.map((p) => p.name));
    throw new InputError(`--base ${name}: no such preset${g ? `; did you mean '${g}'?` : ''}`, {
      hint: `available presets: ${all.map((p) => p.name).join(', ')} (add your own with --defs DIR)`,
    });
  }
  const text = await fs.readFile(hit.file, 'utf8');
  const raw = parseYamlFile(text, hit.file);
  return parsePreset(name, raw, hit.file);
}
