/**
 * A byte-count progress bar on stderr. Shown only when stderr is a TTY (never in pipes, logs or tests) and only once
 * the work has lasted long enough to be worth a bar; otherwise every method is a no-op.
 */
import type { Writable } from 'node:stream';

export interface Progress {
  /** add `bytes` to the processed count */
  advance(bytes: number): void;
  /** set the processed count */
  set(bytes: number): void;
  /** erase the bar (call once the work is over, before printing results) */
  done(): void;
}

export const noProgress: Progress = { advance() {}, set() {}, done() {} };

/** Pure: the bar text for a given state (tested without a TTY). */
export function renderProgress(label: string, done: number, total: number, width = 30): string {
  const frac = total > 0 ? Math.min(1, Math.max(0, done / total)) : 1;
  const filled = Math.round(frac * width);
  const bar = '#'.repeat(filled) + '.'.repeat(width - filled);
  const pct = (frac * 100).toFixed(0).padStart(3);
  return `${label} [${bar}] ${pct}% ${formatBytes(done)}/${formatBytes(total)}`;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}

interface TtyLike {
  isTTY?: boolean;
  columns?: number;
}

/**
 * @param showAfterMs the bar appears only once work has taken this long (short jobs stay silent)
 */
export function createProgress(stream: Writable, label: string, total: number, opts: { enabled: boolean; showAfterMs?: number }): Progress {
  const tty = stream as Writable & TtyLike;
  if (!opts.enabled || tty.isTTY !== true) return noProgress;
  const started = Date.now();
  const showAfter = opts.showAfterMs ?? 300;
  let processed = 0;
  let lastDraw = 0;
  let drawn = false;
  const draw = (): void => {
    const now = Date.now();
    if (now - started < showAfter) return;
    if (drawn && now - lastDraw < 100 && processed < total) return; // redraw at most 10×/s
    lastDraw = now;
    drawn = true;
    const width = Math.max(10, Math.min(40, (tty.columns ?? 80) - 50));
    stream.write(`\r${renderProgress(label, processed, total, width)}\x1b[K`);
  };
  return {
    advance(bytes) {
      processed += bytes;
      draw();
    },
    set(bytes) {
      processed = bytes;
      draw();
    },
    done() {
      if (drawn) stream.write('\r\x1b[K');
      drawn = false;
    },
  };
}
