/** Progress on stderr, one line redrawn per phase; silent when stderr is not a terminal. */
import type { EpochProgress } from '../progress.js';

export interface ProgressPrinter {
  update: (p: EpochProgress) => void;
  log: (line: string) => void;
  done: () => void;
}

export function progressPrinter(stream: NodeJS.WriteStream): ProgressPrinter | undefined {
  if (!stream.isTTY) return undefined;
  let open = false;
  let last = 0;
  return {
    update: (p) => {
      const now = Date.now();
      if (now - last < 200 && p.done < p.total) return;
      last = now;
      const frac = p.done / p.total;
      const width = 24;
      const bar = '#'.repeat(Math.round(frac * width)).padEnd(width, '.');
      const left = (p.total - p.done) / Math.max(p.imagesPerSecond, 1e-9) + ((p.epochs - p.epoch - 1) * p.total) / Math.max(p.imagesPerSecond, 1e-9);
      const line = p.phase === 'eval'
        ? `eval    ${(p.label ?? '').padEnd(22)} [${bar}] ${p.imagesPerSecond.toFixed(0)} img/s, ETA ${Math.round(left)} s`
        : `${p.phase.padEnd(7)} epoch ${p.epoch + 1}/${p.epochs} [${bar}] ${p.imagesPerSecond.toFixed(0)} img/s, loss ${p.loss.toFixed(4)}, ETA ${Math.round(left)} s`;
      stream.write(`\r${line}\x1b[K`);
      open = true;
    },
    log: (line) => {
      stream.write(`${open ? '\n' : ''}${line}\n`);
      open = false;
    },
    done: () => {
      if (open) stream.write('\n');
      open = false;
    },
  };
}
