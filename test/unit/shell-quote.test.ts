import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { shellJoin, shellQuote } from '../../src/render/shell-quote.js';

const HOSTILE = ['plain', 'two words', "it's", '"double"', '$HOME', '`id`', '$(id)', 'a;b', 'line\nbreak', 'tab\there', 'naïve ünïcödé 数据', '', '*', '~', '-n', '\\', "'", "''", '!!', '#hash', '{a,b}', '>out'];

describe('shellQuote', () => {
  it('keeps safe words bare and quotes the rest', () => {
    expect(shellQuote('data/input.csv')).toBe('data/input.csv');
    expect(shellQuote('--lr=0.1')).toBe('--lr=0.1');
    expect(shellQuote('two words')).toBe("'two words'");
    expect(shellQuote("it's")).toBe("'it'\\''s'");
    expect(shellQuote('')).toBe("''");
  });

  it('real bash gives back every hostile word unchanged', () => {
    const script = `printf '%s\\0' ${shellJoin(HOSTILE)}`;
    const out = execFileSync('bash', ['-c', script]).toString('utf8');
    expect(out.split('\0').slice(0, -1)).toEqual(HOSTILE);
  });
});
