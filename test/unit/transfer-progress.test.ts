/** Byte progress: bytes, %, rate and ETA; a bar redrawn in place on a terminal, timestamped lines in a log. */
import { describe, expect, it } from 'vitest';
import { TransferProgress, formatTransfer } from '../../src/commands/progress.js';

describe('transfer progress', () => {
  it('formats bytes, percent, rate and time left', () => {
    expect(formatTransfer(100 * 2 ** 20, 300 * 2 ** 20, 4)).toBe('100.0/300.0 MiB   33%  25.0 MiB/s  ETA 8s');
    expect(formatTransfer(10 * 2 ** 20, 3000 * 2 ** 20, 10)).toBe('10.0/3000.0 MiB    0%  1.0 MiB/s  ETA 49m50s');
    expect(formatTransfer(5, 5, 1)).toMatch(/100%.*ETA 0s$/);
  });

  it('on a terminal: one line redrawn with a bar, ended by a newline', () => {
    const out: string[] = [];
    const p = new TransferProgress({ write: (s: string | Uint8Array) => out.push(String(s)), isTTY: true, columns: 100 }, 'converting');
    p.update(50, 100);
    p.update(100, 100, true);
    expect(out[0]).toMatch(/^\r\x1b\[K\[#{15}-{15}\] converting 0\.0\/0\.0 MiB   50%/);
    expect(out[1]).toMatch(/^\r\x1b\[K\[#{30}\] converting .* 100% .*\n$/);
  });

  it('in a log: a timestamped line at most every few seconds, and the last one', () => {
    const out: string[] = [];
    const p = new TransferProgress({ write: (s: string | Uint8Array) => out.push(String(s)), isTTY: false }, 'converting', false, 5);
    for (let i = 0; i < 10; i++) p.update(i, 10);
    p.update(10, 10, true);
    expect(out).toHaveLength(1);
    expect(out[0]).toMatch(/^\[\d\d:\d\d:\d\d\] converting .*100%.*\n$/);
    expect(out.join('')).not.toContain('\x1b');
  });
});
