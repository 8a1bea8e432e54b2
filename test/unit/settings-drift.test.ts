/**
 * The settings table (src/config/settings.ts) is the one declaration of every
 * setting. This walks the table and every command: each setting a command
 * takes works as a flag, a sifpack.yml key and a SIFPACK_* variable, with the
 * table's description in --help and in the README's tables, which are
 * generated from the same walk (UPDATE_GOLDEN=1 rewrites them).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Command, Option } from 'commander';
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from 'vitest';
import { buildProgram } from '../../src/cli.js';
import type { CliContext } from '../../src/commands/context.js';
import { declaredSettings, flagHelp, settingFlags, settingsFor } from '../../src/commands/setting-options.js';
import { SETTINGS, type SettingName, type SettingSpec, type Settings, camel, envName, settingSpec } from '../../src/config/settings.js';
import { ROOT, tempDir } from '../helpers.js';

const sink = { write: () => true };

function program(cwd: string, env: NodeJS.ProcessEnv = {}): Command {
  const ctx = { stdout: sink, stderr: sink, env, cwd, runner: undefined as never } satisfies CliContext;
  return buildProgram(ctx);
}

/** A valid value for a setting as text (flag, variable), and what it resolves to. */
function sample(spec: SettingSpec, cwd: string): { text?: string; yaml: string; resolved: unknown } {
  const t = spec.type;
  switch (t.kind) {
    case 'string':
      return { text: 'v1', yaml: 'v1', resolved: 'v1' };
    case 'path':
      return { text: 'p1', yaml: 'p1', resolved: path.join(cwd, 'p1') };
    case 'int':
      return { text: String(t.min + 2), yaml: String(t.min + 2), resolved: t.min + 2 };
    case 'enum': {
      const v = t.values[t.values.length - 1]!;
      return { text: v, yaml: v, resolved: v };
    }
    case 'list':
      return { text: 'a1', yaml: '[a1]', resolved: ['a1'] };
    case 'paths':
      return { text: 'd1', yaml: '[d1]', resolved: [path.join(cwd, 'd1')] };
    case 'map':
      return { text: 'K1=v1', yaml: '{K1: v1}', resolved: { K1: 'v1' } };
    case 'bool': {
      // The value the flag sets: the opposite of the default (true for an auto one).
      const v = spec.default !== true;
      return { yaml: String(v), resolved: v };
    }
  }
}

/** Runs `sifpack NAME ...args` with the command's action replaced by a capture of its resolved settings. */
async function resolveThrough(name: string, keys: readonly SettingName[], args: string[], cwd: string, env: NodeJS.ProcessEnv = {}) {
  const p = program(cwd, env);
  const cmd = p.commands.find((c) => c.name() === name)!;
  let got: Awaited<ReturnType<typeof settingsFor>> | undefined;
  cmd.action(async () => {
    got = await settingsFor(cmd, { stdout: sink, stderr: sink, env, cwd, runner: undefined as never }, keys);
  });
  const positional = cmd.registeredArguments.filter((a) => a.required).map(() => 'x');
  await p.parseAsync([name, ...positional, ...args], { from: 'user' });
  return got!;
}

const normalise = (s: string) => s.replace(/\s+/g, ' ');

let cwd: string;
beforeAll(async () => {
  cwd = await tempDir('sifpack-drift-');
});
afterAll(async () => {
  await fs.rm(cwd, { recursive: true, force: true });
});

describe('every setting a command takes has a working flag, sifpack.yml key and SIFPACK_* variable', () => {
  const commands = program(process.cwd()).commands;
  const taken = commands.flatMap((c) => declaredSettings(c).map((key) => [c.name(), key] as const));

  it('the commands take settings at all, and every setting is taken by some command', () => {
    expect(taken.length).toBeGreaterThan(20);
    const used = new Set(taken.map(([, k]) => k));
    expect(SETTINGS.map((s) => s.key).filter((k) => !used.has(k as SettingName))).toEqual([]);
  });

  it.each(taken)('%s takes %s', async (name, key) => {
    const spec = settingSpec(key)!;
    const cmd = program(cwd).commands.find((c) => c.name() === name)!;
    const help = normalise(cmd.helpInformation());
    // The flag is there with the table's flags and description.
    for (const f of settingFlags(spec)) {
      const opt = cmd.options.find((o: Option) => o.long === f.option.long);
      expect(opt, `${name} ${f.option.long}`).toBeDefined();
      expect(opt!.flags).toBe(f.option.flags);
      expect(opt!.description).toBe(f.option.description);
      expect(help).toContain(normalise(`${opt!.flags}`));
      expect(help).toContain(normalise(opt!.description));
    }
    expect(flagHelp(spec)).toContain(spec.description);

    const s = sample(spec, cwd);
    const k = camel(key) as string;
    // As a flag: the first flag of the setting turns it the non-default way.
    const flag = settingFlags(spec)[0]!.option;
    const viaFlag = await resolveThrough(name, [key], s.text !== undefined ? [flag.long!, s.text] : [flag.long!], cwd);
    expect((viaFlag.settings as Record<string, unknown>)[k]).toEqual(s.resolved);
    expect((viaFlag.sources as Record<string, unknown>)[k]).toBe(`--${key}`);
    // As a variable.
    const envValue = s.text ?? String(s.resolved);
    const viaEnv = await resolveThrough(name, [key], [], cwd, { [envName(key)]: envValue });
    expect((viaEnv.settings as Record<string, unknown>)[k]).toEqual(s.resolved);
    expect((viaEnv.sources as Record<string, unknown>)[k]).toBe(envName(key));
    // As a sifpack.yml key.
    await fs.writeFile(path.join(cwd, 'sifpack.yml'), `${key}: ${s.yaml}\n`);
    try {
      const viaFile = await resolveThrough(name, [key], [], cwd);
      expect((viaFile.settings as Record<string, unknown>)[k]).toEqual(s.resolved);
      expect((viaFile.sources as Record<string, unknown>)[k]).toBe(`sifpack.yml: ${key}`);
    } finally {
      await fs.rm(path.join(cwd, 'sifpack.yml'));
    }
  });

  it('no command has two options with the same short or long flag', () => {
    for (const c of commands) {
      const flags = c.options.flatMap((o) => [o.short, o.long]).filter(Boolean);
      expect(flags.length, c.name()).toBe(new Set(flags).size);
    }
  });
});

/** The README's settings table, generated from the table and the commands. */
export function settingsTable(commands: readonly Command[]): string {
  const rows = SETTINGS.map((s) => {
    const flags = settingFlags(s).map((f) => `\`${f.option.flags}\``).join(' ');
    const users = commands.filter((c) => declaredSettings(c).includes(s.key as SettingName)).map((c) => c.name());
    const def = s.default === undefined ? '' : `\`${JSON.stringify(s.default)}\``;
    return `| \`${s.key}\` | ${flags.replace(/\|/g, '\\|')} | \`${envName(s.key)}\` | ${def} | ${users.join(', ')} | ${s.description.replace(/\|/g, '\\|')} |`;
  });
  return ['| sifpack.yml key | flag | variable | default | commands | meaning |', '|---|---|---|---|---|---|', ...rows].join('\n');
}

/** The README's per-command short flags, so nobody has to guess what `-p` means where. */
export function shortFlagsTable(commands: readonly Command[]): string {
  const rows = commands
    .map((c) => {
      const shorts = c.options.filter((o) => o.short && o.short !== '-h').map((o) => `\`${o.short}\` ${o.long}`);
      return shorts.length ? `| \`${c.name()}\` | ${shorts.join(', ')} |` : undefined;
    })
    .filter(Boolean);
  return ['| command | short flags |', '|---|---|', ...rows].join('\n');
}

/** Replaces (or checks) the text between `<!-- NAME:start -->` and `<!-- NAME:end -->` in the README. */
async function readmeSection(name: string, generated: string): Promise<void> {
  const file = path.join(ROOT, 'README.md');
  const text = await fs.readFile(file, 'utf8');
  const start = `<!-- ${name}:start (generated by test/unit/settings-drift.test.ts; UPDATE_GOLDEN=1 rewrites it) -->\n`;
  const end = `<!-- ${name}:end -->`;
  const i = text.indexOf(start);
  const j = text.indexOf(end);
  expect(i, `README.md has no ${name} section`).toBeGreaterThanOrEqual(0);
  const want = `${text.slice(0, i + start.length)}${generated}\n${text.slice(j)}`;
  if (process.env.UPDATE_GOLDEN === '1') await fs.writeFile(file, want);
  else expect(text.slice(i, j + end.length)).toBe(want.slice(i, i + start.length + generated.length + 1 + end.length));
}

describe('the README says what the table and the commands say', () => {
  it('the settings table', async () => {
    await readmeSection('settings-table', settingsTable(program(process.cwd()).commands));
  });
  it('the short flags of each command', async () => {
    await readmeSection('short-flags', shortFlagsTable(program(process.cwd()).commands));
  });
});

describe('the types come from the table too', () => {
  it('Settings: a setting with a default is always there, one without may be missing; enums are their values', () => {
    expectTypeOf<Settings['cpusPerTask']>().toEqualTypeOf<number | undefined>();
    expectTypeOf<Settings['bind']>().toEqualTypeOf<string[]>();
    expectTypeOf<Settings['builder']>().toEqualTypeOf<'auto' | 'apptainer' | 'singularity' | 'docker'>();
    expectTypeOf<Settings['exclusive']>().toEqualTypeOf<boolean>();
  });

  it('a command sees only the settings it takes (using another is a type error)', async () => {
    const r = await resolveThrough('sbatch', ['time'], ['--time', '5'], cwd);
    expectTypeOf(r.settings.time).toEqualTypeOf<string | undefined>();
    const typed = async () => {
      const p = program(cwd);
      const own = await settingsFor(p.commands[0]!, { stdout: sink, stderr: sink, env: {}, cwd, runner: undefined as never }, ['time'] as const);
      // @ts-expect-error: 'image' is not among the keys asked for
      return own.settings.image;
    };
    expect(typeof typed).toBe('function');
    expect((r.settings as Record<string, unknown>).time).toBe('5');
  });
});
