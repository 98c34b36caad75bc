/**
 * `workflowId` as an idempotency key on a Postgres log shared by two runtimes (two members of a
 * fleet, each with its own connection): the lookup goes through the asynchronous store.
 */
import { afterEach, expect, it } from 'vitest';
import { simulatedClock } from '../../src/core/clock.js';
import { isEventLogError } from '../../src/eventlog/errors.js';
import { openPostgresStore } from '../../src/eventlog/postgres.js';
import { isWorkflowIdConflictError, isWorkflowInProgressError } from '../../src/runtime/errors.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import { agent, type AgentOutput } from '../../src/supervisor/agent.js';
import { describePostgres, freshDatabase } from '../support/scaleout.js';

const PRICING = { sim: { inputPer1K: 0.01, outputPer1K: 0.02 } };
const runtimes: Runtime[] = [];
afterEach(async () => {
  for (const rt of runtimes.splice(0)) await rt.close();
});

function member(url: string): Runtime {
  const rt = createRuntime({
    store: openPostgresStore({ url }),
    clock: simulatedClock(),
    seed: runtimes.length + 1,
    pricing: PRICING,
    cache: false,
    metrics: false,
    tracing: false,
  });
  runtimes.push(rt);
  return rt;
}

describePostgres('workflowId idempotency on a Postgres log', () => {
  it('another runtime returns the recorded result without calling; a running one is not joined across processes', async () => {
    const url = await freshDatabase();
    let calls = 0;
    let release: ((out: AgentOutput<string>) => void) | undefined;
    const echo = agent({
      name: 'echo',
      model: 'sim',
      run: (input: { order: number }) => {
        calls++;
        if (input.order === 2) return new Promise<AgentOutput<string>>((resolve) => (release = resolve));
        return Promise.resolve({ value: `ok-${input.order}`, usage: { inputTokens: 10, outputTokens: 2 } });
      },
    });
    const a = member(url);
    const b = member(url);
    const first = await a.run(echo, { order: 1 }, { workflowId: 'req-1' });
    const second = await b.run(echo, { order: 1 }, { workflowId: 'req-1' });
    expect(calls).toBe(1);
    expect(second).toEqual({ ...first, recorded: true });
    const other = agent({ name: 'other', model: 'sim', run: () => Promise.resolve({ value: 0 }) });
    await expect(
      b.run(other, { order: 1 }, { workflowId: 'req-1' }).catch((e: unknown) => e),
    ).resolves.toSatisfy(isWorkflowIdConflictError);

    // Once its workflow.started is committed, the other runtime sees the id taken.
    const started = new Promise<void>((resolve) =>
      a.on('event', (e) => {
        if (e.type === 'workflow.started' && e.workflowId === 'req-2') resolve();
      }),
    );
    const running = a.run(echo, { order: 2 }, { workflowId: 'req-2' });
    await started;
    await expect(
      b.run(echo, { order: 2 }, { workflowId: 'req-2' }).catch((e: unknown) => e),
    ).resolves.toSatisfy(isWorkflowInProgressError);
    while (!release) await new Promise<void>((resolve) => setImmediate(resolve));
    release({ value: 'ok-2', usage: { inputTokens: 10, outputTokens: 2 } });
    await running;
    const after = await b.run(echo, { order: 2 }, { workflowId: 'req-2' });
    expect(after).toMatchObject({ value: 'ok-2', recorded: true });
    expect(calls).toBe(2);
  });

  it('an id Postgres cannot store (NUL) is refused with nothing written and no model call', async () => {
    const url = await freshDatabase();
    let calls = 0;
    const echo = agent({
      name: 'echo',
      model: 'sim',
      run: () => {
        calls++;
        return Promise.resolve({ value: 1, usage: { inputTokens: 1, outputTokens: 1 } });
      },
    });
    const rt = member(url);
    const error: unknown = await rt.run(echo, 1, { workflowId: 'a\u0000b' }).catch((e: unknown) => e);
    expect(isEventLogError(error)).toBe(true);
    expect((error as Error).message).toContain('0x00');
    expect(calls).toBe(0);
    expect(await rt.store.query({})).toEqual([]);
  });
});
