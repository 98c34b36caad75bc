import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { open, tempDb } from './helpers.js';

const CHILD = fileURLToPath(new URL('./crash-child.ts', import.meta.url));
const REPO = fileURLToPath(new URL('../../', import.meta.url));
/** Kill the child once it has acknowledged this many appends. */
const KILL_AFTER = 300;
/** Give up (and kill it) after this long regardless. */
const GIVE_UP_MS = 25_000;

/** Runs the child until it printed KILL_AFTER seqs, SIGKILLs it, and returns every seq it printed. */
function runAndKill(
  file: string,
  writer: 'inline' | 'thread',
): Promise<{ seqs: number[]; signal: NodeJS.Signals | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, file, writer], {
      cwd: REPO,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let stderr = '';
    const guard = setTimeout(() => child.kill('SIGKILL'), GIVE_UP_MS);
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
      if (out.split('\n').length > KILL_AFTER) child.kill('SIGKILL');
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('exit', (_code, signal) => {
      clearTimeout(guard);
      const lines = out.split('\n');
      lines.pop(); // a line cut by the kill is not an acknowledgement
      resolve({ seqs: lines.map(Number), signal, stderr });
    });
  });
}

describe.each(['inline', 'thread'] as const)('crash safety (writer: %s)', (writer) => {
  it('keeps every acknowledged append when the writer is SIGKILLed mid-stream', async () => {
    const file = tempDb();

    const { seqs, signal, stderr } = await runAndKill(file, writer);

    expect(stderr).toBe('');
    expect(signal).toBe('SIGKILL');
    expect(seqs.length).toBeGreaterThanOrEqual(KILL_AFTER);
    const store = open({ path: file });
    const present = new Set(store.query().map((e) => e.seq));
    expect(seqs.filter((s) => !present.has(s))).toEqual([]);
    expect(store.lastSeq()).toBeGreaterThanOrEqual(Math.max(...seqs));
    expect(store.verify()).toMatchObject({ ok: true, events: store.lastSeq() });
    const [next] = await store.append([
      { ts: 0, workflowId: 'after-crash', type: 'feedback.recorded', payload: { correct: true } },
    ]);
    expect(next?.seq).toBe(store.lastSeq());
    expect(store.verify()).toMatchObject({ ok: true });
  });
});
