/**
 * A command takes settings by key; its commander options, their help and the
 * typed values it gets back all come from the settings table
 * (`src/config/settings.ts`):
 *
 *   const TAKES = ['image', 'time', 'bind'] as const;
 *   addSettings(cmd, TAKES);                                // --image <IMAGE.sif>, -t, --time <LIMIT>, --bind ... (repeatable)
 *   const { settings } = await settingsFor(cmd, ctx, TAKES); // settings.time: string | undefined, settings.bind: string[]
 *
 * Options that are not settings (positional arguments, --json, --force, an
 * output file) stay declared in the command.
 */
import { type Command, Option } from 'commander';
import { type ResolvedSettings, loadConfig, resolveSettings } from '../config/load.js';
import { type Camel, type SettingName, type SettingSpec, type Settings, camel, settingSpec } from '../config/settings.js';
import { type CliContext, globalOptions } from './context.js';

/** Commander's collector for repeatable options (`--bind A --bind B`). */
export const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

/** One commander option of a setting, and how its parsed value becomes the setting's. */
interface SettingFlag {
  option: Option;
  /** commander's value → the setting's raw value (`--no-builds` parses as builds=false, meaning no-builds=true). */
  toSetting(value: unknown): unknown;
}

const same = (v: unknown) => v;

function isRepeatable(spec: SettingSpec): boolean {
  return spec.type.kind === 'list' || spec.type.kind === 'paths' || spec.type.kind === 'map';
}

/** The help text of a setting's flag: the table's description, plus "(repeatable)" for lists. */
export function flagHelp(spec: SettingSpec): string {
  return isRepeatable(spec) ? `${spec.description} (repeatable)` : spec.description;
}

/**
 * The flags of one setting: `--KEY <VALUE>` for values, `--KEY` for a
 * boolean that defaults to false, `--no-KEY` for one that defaults to true,
 * both for one without a default (auto).
 */
export function settingFlags(spec: SettingSpec): SettingFlag[] {
  const short = spec.short ? `-${spec.short}, ` : '';
  if (spec.type.kind === 'bool') {
    // A setting whose name is already negative (no-builds): commander parses
    // --no-builds as builds=false.
    if (spec.key.startsWith('no-')) return [{ option: new Option(`${short}--${spec.key}`, spec.description), toSetting: (v) => v === false }];
    if (spec.default === true) return [{ option: new Option(`${short}--no-${spec.key}`, spec.offDescription ?? `not: ${spec.description}`), toSetting: same }];
    const on = { option: new Option(`${short}--${spec.key}`, spec.description), toSetting: same };
    if (spec.default !== undefined) return [on];
    return [on, { option: new Option(`--no-${spec.key}`, spec.offDescription ?? `not: ${spec.description}`), toSetting: same }];
  }
  const option = new Option(`${short}--${spec.key} <${spec.value ?? 'VALUE'}>`, flagHelp(spec));
  if (spec.type.kind === 'enum') option.choices(spec.type.values);
  if (isRepeatable(spec)) option.argParser(collect);
  // Shown in help only: settingsFor reads values given on the command line,
  // so sifpack.yml and SIFPACK_* still win over this default.
  else if (typeof spec.default === 'string' || typeof spec.default === 'number') option.default(spec.default);
  return [{ option, toSetting: same }];
}

const DECLARED = new WeakMap<Command, readonly SettingName[]>();

function specOf(key: SettingName): SettingSpec {
  const spec = settingSpec(key);
  if (!spec) throw new Error(`no setting ${key} in the settings table`);
  return spec;
}

/** Adds the options of the settings `keys` to `cmd`, in the order given. */
export function addSettings(cmd: Command, keys: readonly SettingName[]): Command {
  for (const key of keys) for (const f of settingFlags(specOf(key))) cmd.addOption(f.option);
  DECLARED.set(cmd, [...(DECLARED.get(cmd) ?? []), ...keys]);
  return cmd;
}

/** The settings a command takes (for the drift test and the README tables). */
export function declaredSettings(cmd: Command): readonly SettingName[] {
  return DECLARED.get(cmd) ?? [];
}

/** Resolved settings narrowed to what a command takes: using an undeclared one is a type error. */
export type SettingsOf<K extends SettingName> = Omit<ResolvedSettings, 'settings'> & {
  settings: Readonly<Pick<Settings, Camel<K> & keyof Settings>>;
};

/**
 * Resolves the settings a command takes: defaults < sifpack.yml < its
 * profile < SIFPACK_* < the flags given on this command line.
 */
export async function settingsFor<const K extends SettingName>(cmd: Command, ctx: CliContext, keys: readonly K[]): Promise<SettingsOf<K>> {
  const flags: Record<string, unknown> = {};
  for (const key of keys) {
    for (const f of settingFlags(specOf(key))) {
      const attr = f.option.attributeName();
      if (cmd.getOptionValueSource(attr) !== 'cli') continue;
      flags[camel(key)] = f.toSetting(cmd.getOptionValue(attr));
    }
  }
  const g = globalOptions(cmd);
  const config = await loadConfig(g.config, ctx.cwd);
  return resolveSettings({
    ...(config ? { config } : {}),
    ...(g.profile !== undefined ? { profile: g.profile } : {}),
    env: ctx.env,
    flags,
    cwd: ctx.cwd,
  });
}
