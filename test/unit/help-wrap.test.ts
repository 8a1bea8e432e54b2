/** Help descriptions wrap cleanly: no stub lines from our 80-column breaks being re-wrapped by commander. */
import { describe, expect, it } from 'vitest';
import { buildProgram } from '../../src/cli.js';
import type { CliContext } from '../../src/commands/context.js';

const program = () => buildProgram({ stdout: { write: () => true }, stderr: { write: () => true }, env: {}, cwd: '/', runner: {} as CliContext['runner'] });

describe('help text wrapping', () => {
  it('build --help keeps "apptainer or singularity (on a cluster)" on one line', () => {
    const b = program().commands.find((c) => c.name() === 'build')!;
    expect(b.helpInformation()).toMatch(/apptainer or\nsingularity \(on a cluster\)|apptainer or singularity \(on a cluster\)/);
    expect(b.helpInformation()).not.toMatch(/singularity\n\(on a cluster\)/);
  });

  for (const width of [80, 60]) {
    it(`every command's description at ${width} columns: no line in a paragraph is a stub`, () => {
      const stubs: string[] = [];
      for (const c of [program(), ...program().commands]) {
        const text = c.helpInformation({ error: false } as never);
        c.configureHelp({ ...c.configureHelp(), helpWidth: width });
        const out = c.helpInformation();
        const desc = out.split('\n\n').slice(1).filter((p) => !/^(Arguments|Commands|[A-Za-z ]*[Oo]ptions):/.test(p) && !p.startsWith('  '));
        for (const para of desc) {
          const lines = para.split('\n');
          lines.slice(0, -1).forEach((l, i) => {
            // A line far shorter than the width, followed by a word that would have fitted on it.
            const next = lines[i + 1]!.split(' ')[0]!;
            if (l.length + 1 + next.length <= width && !/[.:!?)]$/.test(l) && !/^\s|^-/.test(lines[i + 1]!)) stubs.push(`${c.name()}: ${JSON.stringify(l)} / ${JSON.stringify(lines[i + 1])}`);
          });
        }
        expect(text.length).toBeGreaterThan(0);
      }
      expect(stubs).toEqual([]);
    });
  }
});
