import { promises as fs } from 'node:fs';
import path from 'node:path';
import { parseYamlFile } from '../util/yaml.js';
import { InputError } from '../errors.js';
import { checkInputFile } from '../util/path-check.js';
import { closest } from '../util/suggest.js';
import { SETTINGS, type SettingSpec, type Settings, camel, describeType, envName, settingSpec } from './settings.js';

export const CONFIG_FILE = 'sifpack.yml';

/** A validated sifpack.yml: top-level settings and named cluster profiles. */
export interface ConfigFile {
  path: string;
  settings: Record<string, unknown>;
  profiles: Record<string, Record<string, unknown>>;
}

/** Where each resolved value came from, for messages ("--time", "sifpack.yml: profiles.lumi.time"). */
export type Sources = Partial<Record<keyof Settings, string>>;

export interface ResolvedSettings {
  settings: Readonly<Settings>;
  sources: Sources;
  profile?: string;
  configPath?: string;
}

/**
 * Converts one raw value to the setting's type, or throws an InputError that
 * names `where` (a flag, a variable, a file field) and the allowed values.
 * `fromText` is for values that arrive as text (flags, environment).
 */
export function coerceSetting(spec: SettingSpec, value: unknown, where: string, baseDir: string, fromText: boolean): unknown {
  const bad = (): never => {
    throw new InputError(`${where}: ${JSON.stringify(value)} is not valid; expected ${describeType(spec.type)}`, {
      hint: `${spec.key}: ${spec.description}`,
    });
  };
  const t = spec.type;
  switch (t.kind) {
    case 'string':
      if (typeof value === 'string' && value !== '') return value;
      if (!fromText && typeof value === 'number') return String(value);
      return bad();
    case 'path':
      // A registry reference (image: oras://HOST/REPO:TAG) is not a file name to resolve.
      if (typeof value === 'string' && /^oras:\/\//i.test(value)) return value;
      if (typeof value === 'string' && value !== '') return path.resolve(baseDir, value);
      return bad();
    case 'bool':
      if (typeof value === 'boolean') return value;
      if (fromText && typeof value === 'string') {
        const v = value.toLowerCase();
        if (['1', 'true', 'yes', 'on'].includes(v)) return true;
        if (['0', 'false', 'no', 'off'].includes(v)) return false;
      }
      return bad();
    case 'int': {
      const n = typeof value === 'number' ? value : fromText && typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : NaN;
      if (Number.isInteger(n) && n >= t.min) return n;
      return bad();
    }
    case 'enum':
      if (typeof value === 'string' && t.values.includes(value)) return value;
      return bad();
    case 'list':
    case 'paths': {
      let items: unknown[];
      if (Array.isArray(value)) items = value;
      else if (fromText && typeof value === 'string') items = value.split(',').map((s) => s.trim()).filter(Boolean);
      else return bad();
      const out = items.map((v) => (typeof v === 'string' && v !== '' ? v : typeof v === 'number' && !fromText ? String(v) : bad()));
      return t.kind === 'paths' ? out.map((p) => path.resolve(baseDir, p)) : out;
    }
    case 'map': {
      if (fromText && (typeof value === 'string' || Array.isArray(value))) {
        const pairs = typeof value === 'string' ? value.split(',').filter(Boolean) : (value as unknown[]);
        const out: Record<string, string> = {};
        for (const p of pairs) {
          const m = typeof p === 'string' ? /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/s.exec(p) : null;
          if (!m) {
            throw new InputError(`${where}: ${JSON.stringify(p)} is not NAME=VALUE`, {
              hint: 'NAME starts with a letter or _ and holds only letters, digits and _',
            });
          }
          out[m[1]!] = m[2]!;
        }
        return out;
      }
      if (value && typeof value === 'object' && !Array.isArray(value)) {
        const out: Record<string, string> = {};
        for (const [k, v] of Object.entries(value)) {
          if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new InputError(`${where}.${k}: not a valid variable name`, { hint: 'use letters, digits and _' });
          if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') bad();
          out[k] = String(v);
        }
        return out;
      }
      return bad();
    }
  }
}

function unknownKey(where: string, key: string, allowed: readonly string[]): InputError {
  const guess = closest(key, allowed);
  return new InputError(`${where}${key}: unknown setting${guess ? `; did you mean '${guess}'?` : ''}`, {
    hint: `allowed: ${allowed.join(', ')}`,
  });
}

function validateSettingsBlock(raw: unknown, where: string, baseDir: string, allowProfiles: boolean): Record<string, unknown> {
  if (raw === null || raw === undefined) return {};
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw new InputError(`${where || 'top level'}: expected a mapping of settings`, { hint: 'see `sifpack --help` for the settings' });
  }
  const allowed = [...SETTINGS.map((s) => s.key), ...(allowProfiles ? ['profiles'] : [])];
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(raw)) {
    if (allowProfiles && key === 'profiles') continue;
    const spec = settingSpec(key);
    if (!spec) throw unknownKey(where, key, allowed);
    out[key] = coerceSetting(spec, value, `${where}${key}`, baseDir, false);
  }
  return out;
}

/**
 * Parses and validates the text of a sifpack.yml. `file` names it in
 * messages; paths in it resolve against `baseDir` (default: the file's own
 * directory).
 */
export function parseConfig(text: string, file: string, baseDir = path.dirname(path.resolve(file))): ConfigFile {
  const raw: unknown = parseYamlFile(text, file);
  const prefix = `${file}: `;
  const settings = validateSettingsBlock(raw, prefix, baseDir, true);
  const profiles: Record<string, Record<string, unknown>> = {};
  const rawProfiles = raw && typeof raw === 'object' ? (raw as Record<string, unknown>).profiles : undefined;
  if (rawProfiles !== undefined && rawProfiles !== null) {
    if (typeof rawProfiles !== 'object' || Array.isArray(rawProfiles)) {
      throw new InputError(`${prefix}profiles: expected a mapping of NAME: settings`, { hint: 'e.g.\nprofiles:\n  mycluster:\n    partition: gpu' });
    }
    for (const [name, block] of Object.entries(rawProfiles)) {
      profiles[name] = validateSettingsBlock(block, `${prefix}profiles.${name}.`, baseDir, false);
    }
  }
  return { path: file, settings, profiles };
}

/** Reads `--config FILE`, or sifpack.yml in `cwd` if there is one. */
export async function loadConfig(explicit: string | undefined, cwd: string): Promise<ConfigFile | undefined> {
  const file = explicit ? await checkInputFile(explicit, '--config', { cwd, hint: 'give a sifpack.yml settings file' }) : path.join(cwd, CONFIG_FILE);
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    if (!explicit && (err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new InputError(`--config ${explicit ?? file}: cannot read: ${(err as Error).message}`);
  }
  return parseConfig(text, explicit ?? CONFIG_FILE, path.dirname(file));
}

function defaults(): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const s of SETTINGS) if (s.default !== undefined) out[s.key] = structuredClone(s.default);
  return out;
}

/**
 * defaults < sifpack.yml < its profile < SIFPACK_* environment < flags.
 * Lists (bind, module) and maps (env) accumulate across the layers, so a
 * profile's site modules stay when a flag adds one more.
 */
export function resolveSettings(input: {
  config?: ConfigFile;
  profile?: string;
  env?: NodeJS.ProcessEnv;
  /** camelCase flag values as commander gives them; undefined = not given. */
  flags?: Record<string, unknown>;
  cwd: string;
}): ResolvedSettings {
  const values = defaults();
  const sources: Record<string, string> = {};
  const apply = (key: string, value: unknown, source: string) => {
    const spec = settingSpec(key)!;
    const prev = values[key];
    if ((spec.type.kind === 'list' || spec.type.kind === 'paths') && Array.isArray(prev)) values[key] = [...prev, ...(value as unknown[])];
    else if (spec.type.kind === 'map' && prev && typeof prev === 'object') values[key] = { ...prev, ...(value as object) };
    else values[key] = value;
    sources[camel(key)] = source;
  };

  const { config } = input;
  if (config) for (const [k, v] of Object.entries(config.settings)) apply(k, v, `${config.path}: ${k}`);

  const env = input.env ?? {};
  const profile = input.profile ?? env.SIFPACK_PROFILE;
  if (profile !== undefined) {
    const names = Object.keys(config?.profiles ?? {});
    const block = config?.profiles[profile];
    if (!block) {
      const guess = closest(profile, names);
      throw new InputError(
        `--profile ${profile}: no such profile${config ? ` in ${config.path}` : ' (no sifpack.yml found)'}${guess ? `; did you mean '${guess}'?` : ''}`,
        { hint: names.length ? `profiles: ${names.join(', ')}` : 'define profiles under `profiles:` in sifpack.yml' },
      );
    }
    for (const [k, v] of Object.entries(block)) apply(k, v, `${config!.path}: profiles.${profile}.${k}`);
  }

  for (const spec of SETTINGS) {
    const name = envName(spec.key);
    const raw = env[name];
    if (raw === undefined || raw === '') continue;
    apply(spec.key, coerceSetting(spec, raw, name, input.cwd, true), name);
  }

  for (const spec of SETTINGS) {
    const raw = input.flags?.[camel(spec.key)];
    if (raw === undefined) continue;
    if (Array.isArray(raw) && raw.length === 0) continue;
    apply(spec.key, coerceSetting(spec, raw, `--${spec.key}`, input.cwd, true), `--${spec.key}`);
  }

  const settings: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(values)) settings[camel(k)] = v;
  return {
    settings: Object.freeze(settings) as unknown as Settings,
    sources: sources as Sources,
    ...(profile !== undefined ? { profile } : {}),
    ...(config ? { configPath: config.path } : {}),
  };
}
