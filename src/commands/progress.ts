/**
 * Build progress on stderr: on a terminal, one line that updates in place
 * with a spinner and the current step; otherwise (batch jobs, CI, logs)
 * plain timestamped lines, every one kept.
 */
import { stripAnsi } from '../util/ansi.js';
import type { Output } from './context.js';

const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

export class Progress {
  private frame = 0;
  private current = '';
  private timer: NodeJS.Timeout | undefined;
  private readonly started = Date.now();

  constructor(private readonly out: Output & { isTTY?: boolean; columns?: number }, private readonly quiet = false) {}

  private get tty(): boolean {
    return !!this.out.isTTY;
  }

  /** A step or an output line of the builder. */
  update(line: string): void {
    if (this.quiet || !line.trim()) return;
    if (!this.tty) {
      // A log file or a pipe: the engine's colour codes would be noise there.
      const t = new Date().toISOString().slice(11, 19);
      this.out.write(`[${t}] ${stripAnsi(line)}\n`);
      return;
    }
    // One line redrawn in place: a colour or cursor code inside it would break the redraw.
    this.current = stripAnsi(line).replace(/\s+/g, ' ').trim();
    this.draw();
    this.timer ??= setInterval(() => this.draw(), 100);
  }

  private draw(): void {
    const secs = ((Date.now() - this.started) / 1000).toFixed(0);
    const width = Math.max(20, (this.out.columns || 80) - 12); // 0 columns = unknown (no window size)
    const text = this.current.length > width ? `${this.current.slice(0, width - 1)}…` : this.current;
    this.frame = (this.frame + 1) % FRAMES.length;
    this.out.write(`\r\x1b[K${FRAMES[this.frame]} ${secs}s ${text}`);
  }

  /** Clears the live line (before a final message or an error). */
  done(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.tty && this.current) this.out.write('\r\x1b[K');
  }
}

const MiB = 2 ** 20;

/** "123.4/300.0 MiB  41%  25.1 MiB/s  ETA 7s" for `done` of `total` bytes after `seconds`. */
export function formatTransfer(done: number, total: number, seconds: number): string {
  const pct = total > 0 ? Math.min(100, Math.floor((done / total) * 100)) : 0;
  const rate = seconds > 0 ? done / seconds : 0;
  const left = rate > 0 && total > done ? Math.ceil((total - done) / rate) : 0;
  const eta = left >= 3600 ? `${Math.floor(left / 3600)}h${String(Math.floor((left % 3600) / 60)).padStart(2, '0')}m` : left >= 60 ? `${Math.floor(left / 60)}m${String(left % 60).padStart(2, '0')}s` : `${left}s`;
  return `${(done / MiB).toFixed(1)}/${(total / MiB).toFixed(1)} MiB  ${String(pct).padStart(3)}%  ${(rate / MiB).toFixed(1)} MiB/s  ETA ${eta}`;
}

/**
 * Byte progress (bytes, %, rate, ETA) on stderr: on a terminal a bar redrawn
 * in place; otherwise a timestamped line every `every` seconds and at the end.
 */
export class TransferProgress {
  private readonly started = Date.now();
  private lastLine = 0;
  private drawn = false;

  constructor(private readonly out: Output & { isTTY?: boolean; columns?: number }, private readonly label: string, private readonly quiet = false, private readonly every = 5) {}

  update(done: number, total: number, final = false): void {
    if (this.quiet) return;
    const secs = (Date.now() - this.started) / 1000;
    const text = `${this.label} ${formatTransfer(done, total, secs)}`;
    if (this.out.isTTY) {
      const width = Math.max(20, (this.out.columns || 80) - 1);
      const barWidth = Math.max(10, Math.min(30, width - text.length - 3));
      const filled = total > 0 ? Math.round((Math.min(done, total) / total) * barWidth) : 0;
      const line = `[${'#'.repeat(filled)}${'-'.repeat(barWidth - filled)}] ${text}`;
      this.out.write(`\r\x1b[K${line.length > width ? line.slice(0, width) : line}${final ? '\n' : ''}`);
      this.drawn = !final;
      return;
    }
    if (!final && secs - this.lastLine < this.every) return;
    this.lastLine = secs;
    this.out.write(`[${new Date().toISOString().slice(11, 19)}] ${text}\n`);
  }

  /** Clears a bar left on the terminal (before an error message). */
  done(): void {
    if (this.drawn) this.out.write('\r\x1b[K');
    this.drawn = false;
  }
}
