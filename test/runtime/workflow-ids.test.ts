import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { lastValueFrom, toArray } from 'rxjs';
import { simulatedClock, type SimulatedClock } from '../../src/core/clock.js';
import { isIllFormedUnicodeError } from '../../src/core/unicode.js';
import type { KeelEvent } from '../../src/eventlog/events.js';
import type { SqliteEventStore } from '../../src/eventlog/sqlite.js';
import {
  isInvalidWorkflowIdError,
  isRecordedWorkflowFailureError,
  isReservedWorkflowIdError,
  isWorkflowIdConflictError,
  isWorkflowInProgressError,
} from '../../src/runtime/errors.js';
import { createRuntime, isRunDelta, type Runtime, type RuntimeConfig } from '../../src/runtime.js';
import { agent, type Agent } from '../../src/supervisor/agent.js';
import { isWorkflowCancelledError } from '../../src/supervisor/errors.js';
import { named } from '../../src/supervisor/topology.js';
import { seq } from '../../src/supervisor/sequential.js';

const PRICING = { sim: { inputPer1K: 0.01, outputPer1K: 0.02 } };
const runtimes: Runtime<SqliteEventStore>[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const rt of runtimes.splice(0)) await rt.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function open(config: RuntimeConfig = {}): Runtime<SqliteEventStore> {
  const rt = createRuntime({
    db: ':memory:',
    clock: simulatedClock(),
    seed: 1,
    pricing: PRICING,
    cache: false,
    ...config,
  }) as Runtime<SqliteEventStore>;
  runtimes.push(rt);
  return rt;
}

function tempDb(): string {
  const d = mkdtempSync(join(tmpdir(), 'keel-wfid-'));
  dirs.push(d);
  return join(d, 'keel.db');
}

/** An agent whose `run()` counts its calls and answers after `delayMs` of the clock's time. */
function counting(
  name: string,
  clock?: SimulatedClock,
  delayMs = 0,
  value: (input: unknown) => unknown = (input) => ({ echo: input }),
): { agent: Agent<unknown, unknown>; calls: () => number } {
  let calls = 0;
  const a = agent({
    name,
    model: 'sim',
    run: async (input: unknown) => {
      calls++;
      if (clock && delayMs > 0) await new Promise<void>((r) => clock.setTimeout(r, delayMs));
      return { value: value(input), confidence: 0.75, usage: { inputTokens: 100, outputTokens: 10 } };
    },
  });
  return { agent: a, calls: () => calls };
}

const starts = (events: readonly KeelEvent[]): KeelEvent[] =>
  events.filter((e) => e.type === 'workflow.started');

describe('workflow ids are well-formed and not reserved', () => {
  it.each([
    ['a lone high surrogate at the end', 'a\ud800'],
    ['a lone low surrogate first', '\udc00x'],
  ])('refuses %s with IllFormedUnicodeError before anything is written (run and run$)', async (_, id) => {
    const rt = open();
    const a = counting('echo');
    const error: unknown = await rt.run(a.agent, { n: 1 }, { workflowId: id }).catch((e: unknown) => e);
    expect(isIllFormedUnicodeError(error)).toBe(true);
    expect((error as Error).message).toMatch(
      /workflowId is not well-formed Unicode: lone surrogate U\+D[8C]00/,
    );
    const error$: unknown = await lastValueFrom(rt.run$(a.agent, { n: 1 }, { workflowId: id })).catch(
      (e: unknown) => e,
    );
    expect(isIllFormedUnicodeError(error$)).toBe(true);
    expect(a.calls()).toBe(0);
    expect(rt.store.query({})).toEqual([]);
  });

  it.each(['_system', '_', '_mine'])(
    'refuses the reserved id %j with ReservedWorkflowIdError',
    async (id) => {
      const rt = open();
      const a = counting('echo');
      const error: unknown = await rt.run(a.agent, 1, { workflowId: id }).catch((e: unknown) => e);
      expect(isReservedWorkflowIdError(error)).toBe(true);
      expect((error as Error).message).toContain('ids starting with "_" belong to Keel');
      const error$: unknown = await lastValueFrom(rt.run$(a.agent, 1, { workflowId: id })).catch(
        (e: unknown) => e,
      );
      expect(isReservedWorkflowIdError(error$)).toBe(true);
      expect(a.calls()).toBe(0);
      expect(rt.store.query({})).toEqual([]);
    },
  );

  it('refuses an empty or non-string id with InvalidWorkflowIdError', async () => {
    const rt = open();
    const a = counting('echo');
    for (const id of ['', 42 as unknown as string]) {
      const error: unknown = await rt.run(a.agent, 1, { workflowId: id }).catch((e: unknown) => e);
      expect(isInvalidWorkflowIdError(error)).toBe(true);
    }
    expect(rt.store.query({})).toEqual([]);
  });

  it('refuses an ill-formed workflow name at run time, naming it', async () => {
    const rt = open();
    const a = counting('echo');
    const byName: unknown = await rt.run(a.agent, 1, { name: 'inv\ud800' }).catch((e: unknown) => e);
    expect(isIllFormedUnicodeError(byName)).toBe(true);
    expect((byName as Error).message).toContain('RunOptions.name');
    expect(a.calls()).toBe(0);
    expect(rt.store.query({})).toEqual([]);
  });

  it('refuses ill-formed topology names and task types at config time, and at run time when built by hand', async () => {
    const a = counting('echo');
    const run = () => Promise.resolve({ value: 1, usage: { inputTokens: 1, outputTokens: 1 } });
    expect(() => named('flow\udfff', seq(a.agent))).toThrow(/named\(name\) is not well-formed Unicode/);
    expect(() => agent({ name: 'typed', model: 'sim', taskType: 'pay\udc00ment', run })).toThrow(
      /agent "typed".taskType is not well-formed Unicode/,
    );
    expect(() => agent({ name: 'b', model: 'sim', breaker: { name: 'open\ud800ai' }, run })).toThrow(
      /agent "b".breaker.name/,
    );
    const rt = open();
    // Topologies are plain data: one assembled without the factories is checked when it runs.
    const handMade = { ...seq(a.agent), name: 'flow\udfff' } as unknown as typeof a.agent;
    const topo: unknown = await rt.run(handMade, 1).catch((e: unknown) => e);
    expect(isIllFormedUnicodeError(topo)).toBe(true);
    expect((topo as Error).message).toContain('seq topology name');
    const typed = { ...agent({ name: 'typed', model: 'sim', run }), taskType: 'pay\udc00ment' };
    const task: unknown = await rt.run(typed, 1).catch((e: unknown) => e);
    expect(isIllFormedUnicodeError(task)).toBe(true);
    expect((task as Error).message).toContain('agent "typed".taskType');
    expect(a.calls()).toBe(0);
    expect(rt.store.query({})).toEqual([]);
  });

  it('rt.feedback refuses an ill-formed id instead of attaching it to a look-alike workflow', async () => {
    const rt = open();
    const a = counting('echo');
    await rt.run(a.agent, 1, { workflowId: 'a\ufffd' });
    const before = rt.store.query({}).length;
    const error: unknown = await rt.feedback('a\ud800', { correct: true }).catch((e: unknown) => e);
    expect(isIllFormedUnicodeError(error)).toBe(true);
    expect(rt.store.query({})).toHaveLength(before);
    expect(rt.store.verify().ok).toBe(true);
  });

  it('accepts NUL and astral characters: the id round-trips through the file and the chain verifies', async () => {
    const db = tempDb();
    const id = 'order\u0000#42-😀-𝔘';
    const rt1 = open({ db });
    const a = counting('echo');
    const first = await rt1.run(a.agent, { n: 1 }, { workflowId: id });
    expect(first.workflowId).toBe(id);
    await rt1.close();
    const rt2 = open({ db });
    const recorded = rt2.store.query({ workflowId: id });
    expect(recorded.length).toBeGreaterThan(2);
    expect(recorded.every((e) => e.workflowId === id)).toBe(true);
    expect(rt2.store.verify().ok).toBe(true);
    const again = await rt2.run(a.agent, { n: 1 }, { workflowId: id });
    expect(again).toMatchObject({ workflowId: id, value: { echo: { n: 1 } }, recorded: true });
    expect(a.calls()).toBe(1);
  });
});

describe('workflowId is an idempotency key', () => {
  it('a second run with the id of a completed workflow returns the recorded result and calls nothing', async () => {
    const rt = open();
    const a = counting('echo');
    const first = await rt.run(a.agent, { n: 1 }, { workflowId: 'req-1' });
    const second = await rt.run(a.agent, { n: 1 }, { workflowId: 'req-1' });
    expect(a.calls()).toBe(1);
    expect(second).toEqual({ ...first, recorded: true });
    expect(second.confidence).toBe(0.75);
    expect(starts(rt.store.query({ workflowId: 'req-1' }))).toHaveLength(1);
    expect(rt.store.verify().ok).toBe(true);
  });

  it('concurrent duplicate runs call the model once and share one result', async () => {
    const clock = simulatedClock();
    const rt = open({ clock });
    const a = counting('slow', clock, 1_000);
    const runs = [1, 2, 3].map(() => rt.run(a.agent, { n: 7 }, { workflowId: 'req-dup' }));
    await clock.advanceAsync(1_000);
    const results = await Promise.all(runs);
    expect(a.calls()).toBe(1);
    expect(results[1]).toEqual(results[0]);
    expect(results[2]).toEqual(results[0]);
    expect(results[0]?.value).toEqual({ echo: { n: 7 } });
    expect(starts(rt.store.query({ workflowId: 'req-dup' }))).toHaveLength(1);
  });

  it('a joined run that fails fails every caller with the same error', async () => {
    const clock = simulatedClock();
    const rt = open({ clock });
    let calls = 0;
    const boom = agent({
      name: 'boom',
      model: 'sim',
      run: async () => {
        calls++;
        await new Promise<void>((r) => clock.setTimeout(r, 10));
        throw new Error('upstream 502');
      },
    });
    const runs = [1, 2].map(() => rt.run(boom, 1, { workflowId: 'req-fail' }).catch((e: unknown) => e));
    await clock.advanceAsync(10);
    const [e1, e2] = await Promise.all(runs);
    expect(calls).toBe(1);
    expect(e2).toBe(e1);
  });

  it("a joiner's abort signal stops its own wait and leaves the run it joined going", async () => {
    const clock = simulatedClock();
    const rt = open({ clock });
    const a = counting('slow', clock, 1_000);
    const first = rt.run(a.agent, 1, { workflowId: 'req-abort' });
    const controller = new AbortController();
    const joiner = rt.run(a.agent, 1, { workflowId: 'req-abort', signal: controller.signal });
    controller.abort('client went away');
    await expect(joiner).rejects.toSatisfy(isWorkflowCancelledError);
    await clock.advanceAsync(1_000);
    await expect(first).resolves.toMatchObject({ value: { echo: 1 } });
    expect(a.calls()).toBe(1);
  });

  it('the same id with another workflow name is a WorkflowIdConflictError, recorded or running', async () => {
    const clock = simulatedClock();
    const rt = open({ clock });
    const a = counting('a');
    const b = counting('b', clock, 100);
    await rt.run(a.agent, 1, { workflowId: 'req-x' });
    const recorded: unknown = await rt.run(b.agent, 1, { workflowId: 'req-x' }).catch((e: unknown) => e);
    expect(isWorkflowIdConflictError(recorded)).toBe(true);
    expect((recorded as Error).message).toContain('already belongs to workflow "a", not "b"');
    const running = rt.run(b.agent, 1, { workflowId: 'req-y' });
    const clash: unknown = await rt.run(a.agent, 1, { workflowId: 'req-y' }).catch((e: unknown) => e);
    expect(isWorkflowIdConflictError(clash)).toBe(true);
    await clock.advanceAsync(100);
    await running;
    expect(a.calls()).toBe(1);
    expect(b.calls()).toBe(1);
    expect(starts(rt.store.query({ workflowId: 'req-x' }))).toHaveLength(1);
  });

  it('works across a restart: a second runtime on the same file returns the recorded result', async () => {
    const db = tempDb();
    const a = counting('echo');
    const rt1 = open({ db });
    const first = await rt1.run(a.agent, { order: 9 }, { workflowId: 'req-restart' });
    await rt1.close();
    const rt2 = open({ db });
    const second = await rt2.run(a.agent, { order: 9 }, { workflowId: 'req-restart' });
    expect(a.calls()).toBe(1);
    expect(second).toEqual({ ...first, recorded: true });
    expect(starts(rt2.store.query({ workflowId: 'req-restart' }))).toHaveLength(1);
  });

  it('works across processes on one SQLite file: a second process gets the recorded result', () => {
    const db = tempDb();
    const child = (): { calls: number; result?: { value: unknown; recorded?: true }; error?: string } => {
      const out = execFileSync(
        process.execPath,
        [
          '--import',
          'tsx',
          fileURLToPath(new URL('./idempotency-child.ts', import.meta.url)),
          db,
          'req-proc',
        ],
        { encoding: 'utf8' },
      );
      return JSON.parse(out) as ReturnType<typeof child>;
    };
    const first = child();
    expect(first).toMatchObject({ calls: 1, result: { value: { echo: { order: 1 } } } });
    expect(first.result?.recorded).toBeUndefined();
    const second = child();
    expect(second).toMatchObject({ calls: 0, result: { value: { echo: { order: 1 } }, recorded: true } });
  });

  it('the id of a failed workflow rejects with its recorded failure and runs nothing, also after a restart', async () => {
    const db = tempDb();
    let calls = 0;
    const flaky = agent({
      name: 'flaky',
      model: 'sim',
      run: () => {
        calls++;
        return Promise.reject(Object.assign(new Error('Request failed with status 400'), { status: 400 }));
      },
    });
    const rt1 = open({ db });
    await expect(rt1.run(flaky, 1, { workflowId: 'req-failed' })).rejects.toThrow('status 400');
    await rt1.close();
    const rt2 = open({ db });
    const error: unknown = await rt2.run(flaky, 1, { workflowId: 'req-failed' }).catch((e: unknown) => e);
    expect(isRecordedWorkflowFailureError(error)).toBe(true);
    expect((error as Error).message).toMatch(/already ended: failed .*status 400.*use a new workflowId/);
    expect(calls).toBe(1);
    const ends = rt2.store.query({ workflowId: 'req-failed' }).filter((e) => e.type.startsWith('workflow.'));
    expect(ends.map((e) => e.type)).toEqual(['workflow.started', 'workflow.failed']);
  });

  it('an id another runtime started and has not ended is a WorkflowInProgressError', async () => {
    const db = tempDb();
    const clock = simulatedClock();
    const slow = counting('slow', clock, 1_000);
    const rt1 = open({ db, clock });
    const running = rt1.run(slow.agent, 1, { workflowId: 'req-live' });
    await clock.advanceAsync(10); // its workflow.started is committed
    const rt2 = open({ db, clock });
    const error: unknown = await rt2.run(slow.agent, 1, { workflowId: 'req-live' }).catch((e: unknown) => e);
    expect(isWorkflowInProgressError(error)).toBe(true);
    await clock.advanceAsync(1_000);
    await running;
    expect(slow.calls()).toBe(1);
  });

  it('returns the output as recorded: redacted when redaction is on', async () => {
    const rt = open({ redact: { hmacKey: 'k'.repeat(32) } });
    const a = counting('contact', undefined, 0, () => ({ email: 'jane.doe@example.com' }));
    const first = await rt.run(a.agent, 1, { workflowId: 'req-pii' });
    expect(first.value).toEqual({ email: 'jane.doe@example.com' });
    const second = await rt.run(a.agent, 1, { workflowId: 'req-pii' });
    expect(a.calls()).toBe(1);
    expect(second.recorded).toBe(true);
    expect(JSON.stringify(second.value)).not.toContain('jane.doe@example.com');
  });

  it('returns the output in its stored JSON form: undefined stays undefined, a URL or Date comes back as a string', async () => {
    const rt = open();
    class Receipt {
      constructor(
        readonly url: URL,
        readonly at: Date,
      ) {}
    }
    const receipt = new Receipt(new URL('https://pay.example.com/r/1?x=1'), new Date(Date.UTC(2026, 0, 2)));
    const nothing = counting('nothing', undefined, 0, () => undefined);
    const rich = counting('rich', undefined, 0, () => ({ receipt, 'jane@example.com': 1 }));
    await rt.run(nothing.agent, 1, { workflowId: 'req-undef' });
    expect(await rt.run(nothing.agent, 1, { workflowId: 'req-undef' })).toMatchObject({
      value: undefined,
      recorded: true,
    });
    const live = await rt.run(rich.agent, 1, { workflowId: 'req-rich' });
    expect(live.value).toEqual({ receipt, 'jane@example.com': 1 });
    const again = await rt.run(rich.agent, 1, { workflowId: 'req-rich' });
    expect(again.value).toEqual(JSON.parse(JSON.stringify(again.value)));
    expect((again.value as { receipt: { url: string; at: string } }).receipt.at).toBe(
      '2026-01-02T00:00:00.000Z',
    );
    expect(nothing.calls() + rich.calls()).toBe(2);
  });

  it('run$ with the id of a completed workflow emits its recorded events and calls nothing', async () => {
    const rt = open();
    const a = counting('echo');
    const live = await lastValueFrom(rt.run$(a.agent, 1, { workflowId: 'req-stream' }).pipe(toArray()));
    const again = await lastValueFrom(rt.run$(a.agent, 1, { workflowId: 'req-stream' }).pipe(toArray()));
    expect(a.calls()).toBe(1);
    expect(again.map((e) => !isRunDelta(e) && e.seq)).toEqual(live.map((e) => !isRunDelta(e) && e.seq));
    expect(again.at(-1)?.type).toBe('workflow.completed');
  });

  it('concurrent run$ subscriptions with one id run it once; the joiner gets its events from the log', async () => {
    const clock = simulatedClock();
    const rt = open({ clock });
    const a = counting('slow', clock, 500);
    const first = lastValueFrom(rt.run$(a.agent, 1, { workflowId: 'req-s2' }).pipe(toArray()));
    const second = lastValueFrom(rt.run$(a.agent, 1, { workflowId: 'req-s2' }).pipe(toArray()));
    await clock.advanceAsync(500);
    const [e1, e2] = await Promise.all([first, second]);
    expect(a.calls()).toBe(1);
    expect(e2.map((e) => !isRunDelta(e) && e.seq)).toEqual(e1.map((e) => !isRunDelta(e) && e.seq));
    const conflict: unknown = await lastValueFrom(
      rt.run$(counting('other').agent, 1, { workflowId: 'req-s2' }),
    ).catch((e: unknown) => e);
    expect(isWorkflowIdConflictError(conflict)).toBe(true);
  });
});
