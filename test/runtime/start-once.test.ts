/**
 * A caller-chosen workflow id on a SQLite file other runtimes may share: its `workflow.started` is
 * written only if the file holds none (EventStore.appendStart), so no claim is taken on the way, and
 * the runtime that loses a same-tick race answers from the winner's record without calling a model.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { simulatedClock } from '../../src/core/clock.js';
import type { SqliteEventStore } from '../../src/eventlog/sqlite.js';
import { isWorkflowInProgressError } from '../../src/runtime/errors.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import { agent } from '../../src/supervisor/agent.js';

const PRICING = { 'acme-large-2026-01-15': { inputPer1K: 0.01, outputPer1K: 0.02 } };
const runtimes: Runtime<SqliteEventStore>[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const rt of runtimes.splice(0)) await rt.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function open(db: string): Runtime<SqliteEventStore> {
  const rt = createRuntime({ db, clock: simulatedClock(), seed: 1, pricing: PRICING, cache: false });
  runtimes.push(rt);
  return rt;
}

function tempDb(): string {
  const d = mkdtempSync(join(tmpdir(), 'keel-start-once-'));
  dirs.push(d);
  return join(d, 'keel.db');
}

/** A user's own agent: its `run()` waits until the test lets it answer, and counts its calls. */
function gated() {
  const calls: string[] = [];
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  const a = agent({
    name: 'extract',
    model: 'acme-large-2026-01-15',
    run: async (input: { order: string }) => {
      calls.push(input.order);
      await gate;
      return { value: { total: 42 }, usage: { inputTokens: 1_200, outputTokens: 80 } };
    },
  });
  return { agent: a, calls, open: () => open() };
}

describe('a caller-chosen id on a shared SQLite file', () => {
  it('runs once when two runtimes start it in the same tick: the other answers from the record', async () => {
    const db = tempDb();
    const [a, b] = [open(db), open(db)];
    const user = gated();
    const input = { order: 'jane.doe@example.com/4711' };
    const first = a.run(user.agent, input, { workflowId: 'order-4711' });
    const second = b.run(user.agent, input, { workflowId: 'order-4711' });
    // The loser's start was refused in the winner's wake: it answers while the winner still runs.
    await expect(second).rejects.toSatisfy(isWorkflowInProgressError);
    user.open();
    const won = await first;
    expect(won.value).toEqual({ total: 42 });
    expect(user.calls).toHaveLength(1);
    // Asked again, the loser's runtime answers from the log.
    const again = await b.run(user.agent, input, { workflowId: 'order-4711' });
    expect(again).toMatchObject({ value: { total: 42 }, recorded: true });
    expect(user.calls).toHaveLength(1);
    const starts = a.store.query({ workflowId: 'order-4711', type: 'workflow.started' });
    expect(starts).toHaveLength(1);
    expect(a.store.verify().ok).toBe(true);
  });

  it('takes no claim: the model is called with no keel_claims row, as for a generated id', async () => {
    const db = tempDb();
    const rt = open(db);
    const claimsSeen: number[] = [];
    const spy = agent({
      name: 'extract',
      model: 'acme-large-2026-01-15',
      run: () => {
        const look = new Database(db, { readonly: true });
        try {
          claimsSeen.push(look.prepare('SELECT count(*) FROM keel_claims').pluck().get() as number);
        } finally {
          look.close();
        }
        return Promise.resolve({ value: 'ok' });
      },
    });
    await rt.run(spy, 'in', { workflowId: 'order-1' });
    await rt.run(spy, 'in'); // generated id
    expect(claimsSeen).toEqual([0, 0]);
    expect(rt.store.query({ type: 'workflow.completed' })).toHaveLength(2);
  });
});
