import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { simulatedClock } from '../../src/core/clock.js';
import type { SqliteEventStore } from '../../src/eventlog/sqlite.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import { cleanupDirs, tempDb } from './helpers.js';
import { invoiceTopology, SIGKILL_PRICING } from './sigkill-topology.js';

const CHILD = fileURLToPath(new URL('./sigkill-child.ts', import.meta.url));
const REPO = fileURLToPath(new URL('../../', import.meta.url));
const T0 = Date.UTC(2026, 5, 1);
/** Kill the child regardless after this long (it never gets there when it works). */
const GIVE_UP_MS = 25_000;

const runtimes: Runtime<SqliteEventStore>[] = [];
afterEach(async () => {
  for (const rt of runtimes.splice(0)) await rt.close();
  cleanupDirs();
});

function open(db: string, startMs: number): Runtime<SqliteEventStore> {
  const rt = createRuntime<SqliteEventStore>({
    db,
    clock: simulatedClock(startMs),
    seed: 7,
    pricing: SIGKILL_PRICING,
    cache: false,
    budget: { dailyUsd: 100 },
    durable: { leaseMs: 1000 },
  });
  runtimes.push(rt);
  return rt;
}

/** Runs the child until it says `ready` (b committed, c in flight), SIGKILLs it, and waits for its exit. */
function runUntilReadyAndKill(
  db: string,
  calls: string,
  workflowId: string,
): Promise<{ ready: boolean; signal: NodeJS.Signals | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, db, calls, workflowId, String(T0)], {
      cwd: REPO,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let stderr = '';
    const guard = setTimeout(() => child.kill('SIGKILL'), GIVE_UP_MS);
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
      if (out.includes('\n')) child.kill('SIGKILL');
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('exit', (_code, signal) => {
      clearTimeout(guard);
      resolve({ ready: out.startsWith('ready\n'), signal, stderr });
    });
  });
}

const callsIn = (file: string): string[] => readFileSync(file, 'utf8').split('\n').filter(Boolean);

describe('a SIGKILLed process: seq(a, par(b, c), d) with b done and c in flight', () => {
  it('is resumed by a new runtime after the lease: c once, d once, the same result, a verified chain, a and b paid once', async () => {
    const db = tempDb();
    const calls = tempDb('calls.txt');
    writeFileSync(calls, '');
    const workflowId = 'wf-sigkill';

    const killed = await runUntilReadyAndKill(db, calls, workflowId);
    expect(killed).toEqual({ ready: true, signal: 'SIGKILL', stderr: '' });
    expect(callsIn(calls)).toEqual(['a', 'b', 'c']);

    // A new runtime (another process's view: a fresh instance id), its clock past the 1 s lease.
    const attempts: string[] = [];
    const rt = open(db, T0 + 60_000);
    rt.register(
      'inv',
      invoiceTopology((name, attempt) => {
        writeFileSync(calls, `${name}\n`, { flag: 'a' });
        attempts.push(`${name}#${attempt}`);
        return 'answer';
      }),
    );
    const report = await rt.resume();

    expect(report.refused).toEqual([]);
    expect(report.resumed).toMatchObject([
      { workflowId, name: 'inv', reason: 'orphaned', rerun: ['inv/par[1]/c'], outcome: 'completed' },
    ]);
    // Provider calls after the kill: c once (its second attempt, so a provider can deduplicate), d once.
    expect(callsIn(calls).slice(3)).toEqual(['c', 'd']);
    expect(attempts).toEqual(['c#2', 'd#1']);

    // The same result as a run that never crashed.
    const clean = open(':memory:', T0);
    const expected = await clean.run(
      invoiceTopology(() => 'answer'),
      { n: 1 },
    );
    const result = await rt.result(workflowId);
    expect(result.value).toEqual(expected.value);
    expect(result.agentsCalled).toBe(expected.agentsCalled);
    expect(result.costUsd).toBeCloseTo(expected.costUsd, 10);

    // The chain verifies, with the dead process's events and the resumer's.
    expect(rt.store.verify()).toMatchObject({ ok: true, events: rt.store.lastSeq() });
    const events = rt.store.query({ workflowId });
    expect(events.filter((e) => e.type === 'workflow.resumed')).toHaveLength(1);
    expect(events.filter((e) => e.type === 'workflow.completed')).toHaveLength(1);

    // Budgets: a and b are paid once (by the dead process), c's lost attempt and its rerun as run.
    const incurred = rt.store.query({ type: 'cost.incurred' });
    const paid = (path: string) =>
      incurred.filter((e) => (e.payload as { path: string }).path === path).length;
    expect([paid('inv/a'), paid('inv/par[1]/b'), paid('inv/d')]).toEqual([1, 1, 1]);
    const spent = incurred.reduce((s, e) => s + (e.payload as { costUsd: number }).costUsd, 0);
    expect(rt.stats().cost.actualUsd).toBeCloseTo(spent, 10);
    expect(rt.stats().cost.actualUsd).toBeGreaterThanOrEqual(expected.costUsd - 1e-9);

    // A second resumer finds nothing left to do.
    expect(await rt.resume()).toEqual({ resumed: [], refused: [] });
  }, 30_000);
});
