/** A captured `Io` for running the CLI in tests: what a command wrote to stdout and stderr. */
import type { StoppableIo } from '../../src/cli/serve.js';

export interface CapturedIo {
  io: StoppableIo;
  /** Everything written to stdout, each write ending in a newline as `processIo` does. */
  stdout(): string;
  stderr(): string;
}

/** An `Io` that records writes; `onOut` sees each stdout write; `signal` stops `keel serve`. */
export function captureIo(
  options: { signal?: AbortSignal; onOut?: (text: string) => void } = {},
): CapturedIo {
  const out: string[] = [];
  const err: string[] = [];
  const line = (t: string): string => (t.endsWith('\n') ? t : `${t}\n`);
  return {
    io: {
      out: (t) => {
        out.push(line(t));
        options.onOut?.(t);
      },
      err: (t) => void err.push(line(t)),
      tty: false,
      ...(options.signal ? { signal: options.signal } : {}),
    },
    stdout: () => out.join(''),
    stderr: () => err.join(''),
  };
}
