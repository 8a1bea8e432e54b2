/** The README's per-command short-flag table says what the CLI does (a guess about `-p` is a trap). */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildProgram } from '../../src/cli.js';
import type { CliContext } from '../../src/commands/context.js';
import { ROOT } from '../helpers.js';

describe('README short flags', () => {
  it('the table between the short-flags markers matches every command\'s options', async () => {
    const readme = await fs.readFile(path.join(ROOT, 'README.md'), 'utf8');
    const m = /<!-- short-flags:begin -->\n\| command \| short flags \|\n\|---\|---\|\n([\s\S]*?)<!-- short-flags:end -->/.exec(readme);
    expect(m).not.toBeNull();
    const p = buildProgram({ stdout: { write: () => true }, stderr: { write: () => true }, env: {}, cwd: ROOT, runner: {} as CliContext['runner'] });
    const rows = [['(global)', p.options] as const, ...p.commands.filter((c) => c.name() !== 'help').map((c) => [c.name(), c.options] as const)];
    const expected = rows.map(([n, opts]) => `| ${n} | ${opts.filter((o) => o.short).map((o) => `\`${o.short}\` ${o.long}`).join(', ') || '—'} |\n`).join('');
    expect(m![1]).toBe(expected);
  });
});
