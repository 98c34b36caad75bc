/**
 * Chaos on the process: a child runs workflows on the real clock against a file log and is
 * SIGKILLed mid-stream. Every workflow whose result it printed must be in the log with its
 * `workflow.completed`; the chain must verify; and a runtime restarted on the same file must resume
 * the breaker the child left open and the budget spend it left behind.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { isBudgetExceededError } from '../../src/cost/errors.js';
import { openSqliteStore } from '../../src/eventlog/sqlite.js';
import { createRuntime } from '../../src/runtime.js';
import { agent } from '../../src/supervisor/agent.js';
import { isCircuitOpenError } from '../../src/supervisor/breaker.js';
import { CHILD_BREAKER, CHILD_PRICING, FLAKY_RESET_MS } from './child-config.js';
import { logHealth } from './harness.js';
import { chaosSummary } from './summary.js';

const scenario = chaosSummary('sigkill');

const CHILD = fileURLToPath(new URL('./workflow-child.ts', import.meta.url));
const REPO = fileURLToPath(new URL('../../', import.meta.url));
/** Kill the child once it has acknowledged this many workflows. */
const KILL_AFTER = 200;
/** Give up (and kill it) after this long regardless, ms of real time. */
const GIVE_UP_MS = 90_000;

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

interface ChildRun {
  /** Workflow ids the child printed: each one's `rt.run()` had resolved. */
  acknowledged: string[];
  breakerOpen: boolean;
  signal: NodeJS.Signals | null;
  stderr: string;
}

/** Runs the child until it acknowledged KILL_AFTER workflows, then SIGKILLs it. */
function runAndKill(file: string): Promise<ChildRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, file], {
      cwd: REPO,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let done = 0;
    let stderr = '';
    const guard = setTimeout(() => child.kill('SIGKILL'), GIVE_UP_MS);
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
      for (let i = chunk.indexOf('done '); i >= 0; i = chunk.indexOf('done ', i + 1)) done++;
      if (done >= KILL_AFTER) child.kill('SIGKILL');
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('exit', (_code, signal) => {
      clearTimeout(guard);
      const lines = out.split('\n');
      lines.pop(); // a line cut by the kill is not an acknowledgement
      resolve({
        acknowledged: lines.filter((l) => l.startsWith('done ')).map((l) => l.slice(5)),
        breakerOpen: lines.includes('breaker open'),
        signal,
        stderr,
      });
    });
  });
}

describe('chaos: SIGKILL of a process running workflows', () => {
  it("keeps every acknowledged workflow; a restart resumes the open breaker and today's spend", async () => {
    const s = scenario('SIGKILL mid-stream (real clock, file log)');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-chaos-kill-'));
    dirs.push(dir);
    const file = path.join(dir, 'keel.db');

    const child = await runAndKill(file);
    expect(child.stderr).toBe('');
    expect(child.signal).toBe('SIGKILL');
    expect(child.breakerOpen).toBe(true);
    expect(child.acknowledged.length).toBeGreaterThanOrEqual(KILL_AFTER);
    s.inject(1);

    const store = openSqliteStore({ path: file });
    const completed = new Set(store.query({ type: 'workflow.completed' }).map((e) => e.workflowId));
    const missing = child.acknowledged.filter((id) => !completed.has(id));
    s.lost(missing.length);
    s.hold('every workflow the child acknowledged has its workflow.completed in the log', () => {
      expect(missing).toEqual([]);
    });
    const health = logHealth(store);
    s.hold('the hash chain verifies after the crash', () => expect(health.verified).toBe(true));
    console.log(
      `SIGKILL after ${child.acknowledged.length} acknowledged workflows: ${completed.size} completed in the log, ` +
        `${health.open.length} cut off mid-run (started, never finished)`,
    );
    const midnight = new Date();
    midnight.setUTCHours(0, 0, 0, 0);
    const today = store.query({ type: ['cost.incurred', 'cost.reserved'], fromTs: midnight.getTime() });
    // What a restarted budget counts: every charge, and the committed reservation of each call cut
    // off by the kill (its workflow never ended: the call was made, its cost never recorded).
    const cutOff = new Map<string, number>();
    for (const e of today) {
      if (!health.open.includes(e.workflowId)) continue;
      if (e.type === 'cost.reserved' && e.payload.attempt !== undefined)
        cutOff.set(`${e.workflowId}|${e.payload.path}#${e.payload.attempt}`, e.payload.estimateUsd);
      if (e.type === 'cost.incurred') cutOff.delete(`${e.workflowId}|${e.payload.path}#${e.payload.attempt}`);
    }
    const spentToday =
      today.reduce((sum, e) => sum + (e.type === 'cost.incurred' ? e.payload.costUsd : 0), 0) +
      [...cutOff.values()].reduce((a, b) => a + b, 0);
    await store.close();

    // Restart on the same file, with room for one more cent today.
    const rt = createRuntime({
      db: file,
      seed: 22,
      pricing: CHILD_PRICING,
      budget: { dailyUsd: spentToday + 0.015 },
      cache: false,
      metrics: false,
      tracing: false,
    });
    try {
      let flakyCalls = 0;
      const flaky = agent({
        name: 'flaky_call',
        model: 'flat',
        breaker: { name: CHILD_BREAKER, failureThreshold: 3, resetTimeoutMs: FLAKY_RESET_MS },
        run: () => {
          flakyCalls++;
          return Promise.resolve({ value: 'ok' });
        },
      });
      const refused = await rt.run(flaky, {}).then(
        () => undefined,
        (e: unknown) => e,
      );
      s.hold('the breaker the child left open is still open: rejected without a call', () => {
        expect(isCircuitOpenError(refused)).toBe(true);
        expect(flakyCalls).toBe(0);
        expect(rt.breaker(CHILD_BREAKER)?.state()).toBe('open');
      });

      const cent = agent({ name: 'cent', model: 'flat', run: () => Promise.resolve({ value: 1 }) });
      const outcome = (p: Promise<unknown>) =>
        p.then(
          () => 'ok',
          (e: unknown) => (isBudgetExceededError(e) ? 'over budget' : String(e)),
        );
      const first = await outcome(rt.run(cent, {}));
      const second = await outcome(rt.run(cent, {}));
      s.hold("today's spend is restored: one more cent fits, the next is refused", () => {
        expect([first, second]).toEqual(['ok', 'over budget']);
      });
      s.hold('the restarted runtime extends the same chain, which verifies', () => {
        expect(rt.store.verify()).toMatchObject({ ok: true });
      });
    } finally {
      await rt.close();
    }
  });
});
