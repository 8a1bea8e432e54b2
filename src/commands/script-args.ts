/**
 * `sifpack sbatch train.py --epochs 10`: commander takes `--epochs` for one of
 * ours and says only "unknown option". Say instead to put the script's
 * arguments after `--`, naming the option, with the command line to type.
 */
import type { Command } from 'commander';
import { shellJoin } from '../render/shell-quote.js';
import { closest } from '../util/suggest.js';

/** Root program's argv as the user typed it (commander keeps it as rawArgs). */
function typedArgs(cmd: Command): string[] {
  let root = cmd;
  while (root.parent) root = root.parent;
  return [...((root as unknown as { rawArgs?: string[] }).rawArgs ?? [])];
}

/**
 * The command line with the script's arguments moved after `--`: from the
 * unknown option up to the next option this command knows.
 */
export function withDoubleDash(cmd: Command, flag: string): string | undefined {
  const argv = typedArgs(cmd);
  const at = argv.indexOf(flag);
  if (at < 0 || argv.includes('--')) return undefined;
  const known = new Set(cmd.options.flatMap((o) => [o.short, o.long]).filter(Boolean));
  let end = at + 1;
  while (end < argv.length && !known.has(argv[end]!.split('=')[0]!)) end++;
  const words = [...argv.slice(0, at), ...argv.slice(end), '--', ...argv.slice(at, end)];
  return `sifpack ${shellJoin(words)}`;
}

/** Makes `cmd` answer an unknown option with the `--` advice (and a "did you mean" for a near miss). */
export function adviseDoubleDash(cmd: Command, scriptName: string): Command {
  const self = cmd as unknown as { unknownOption(flag: string): void; error(message: string, o: { code: string }): never };
  self.unknownOption = (flag: string) => {
    const longs = cmd.options.map((o) => o.long).filter((l): l is string => !!l);
    const near = flag.startsWith('--') ? closest(flag, longs) : undefined;
    const line = withDoubleDash(cmd, flag);
    self.error(
      `error: unknown option '${flag}'${near ? `; did you mean '${near}'?` : ''}\n` +
        `If '${flag}' is for ${scriptName}, put the script's arguments after \`--\`${line ? `:\n  ${line}` : `: sifpack ${cmd.name()} ${scriptName} [options] -- ${flag} ...`}`,
      { code: 'commander.unknownOption' },
    );
  };
  return cmd;
}
