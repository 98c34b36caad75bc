/**
 * A child process of the same-id start tests (`pg-start-child.ts`) started on `target` (a Postgres
 * URL or a SQLite path): `ready` once it printed `ready`, its outcomes from its last stdout line.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

const CHILD = fileURLToPath(new URL('./pg-start-child.ts', import.meta.url));
const REPO = fileURLToPath(new URL('../../', import.meta.url));

export function starter(target: string, calls: string, name: string, n: number) {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, target, calls, name, String(n)], {
    cwd: REPO,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = once(child, 'close').then(([code]) => code as number | null);
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout.on('data', () => out.startsWith('ready\n') && resolve());
    void exited.then((code) => reject(new Error(`${name} exited (${String(code)}) before ready: ${err}`)));
  });
  return {
    child,
    ready,
    exited,
    stderr: () => err,
    outcomes: () =>
      (JSON.parse(out.trim().split('\n').at(-1) ?? '') as { outcomes: Record<string, string> }).outcomes,
  };
}
