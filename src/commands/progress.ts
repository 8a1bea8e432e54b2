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
