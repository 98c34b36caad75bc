/**
 * Helpers of the Postgres durable tests: a log on the server as a crashed process leaves it —
 * `n` workflows `job-<i>` of {@link jobTopology}, `a` done and `b` in flight, never ended.
 */
import { simulatedClock } from '../../src/core/clock.js';
import type { KeelEvent, NewEvent } from '../../src/eventlog/events.js';
import { openPostgresStore } from '../../src/eventlog/postgres.js';
import { createRuntime } from '../../src/runtime.js';
import { jobTopology, PG_RESUME_PRICING } from './pg-resume-topology.js';
import { settle } from './helpers.js';

/**
 * Runs `n` workflows in an in-memory runtime whose `b` hangs, copies what it committed (`a`'s
 * result, `b` started) to the Postgres database at `url`, and drops the runtime without ending
 * them. Its owner never wrote a lease to that database, so the workflows are orphans once their
 * last event is a lease old.
 */
export async function seedInterrupted(url: string, n: number, startMs: number): Promise<void> {
  const crashed = createRuntime({
    db: ':memory:',
    clock: simulatedClock(startMs),
    seed: 1,
    pricing: PG_RESUME_PRICING,
    cache: false,
  });
  crashed.on('error', () => undefined);
  const topology = jobTopology((agent) => (agent === 'b' ? 'hang' : 'answer'));
  for (let i = 0; i < n; i++) {
    crashed.run(topology, { i }, { workflowId: `job-${i}` }).catch(() => undefined);
  }
  const store = crashed.store as { query(filter?: { type?: string }): readonly KeelEvent[] };
  for (let k = 0; k < 1000 && store.query({ type: 'agent.invoked' }).length < 2 * n; k++) await settle(1);
  await settle(10);
  const left = store.query();
  const seed = openPostgresStore({ url });
  try {
    await seed.append(
      left.map((e) => ({ ts: e.ts, workflowId: e.workflowId, type: e.type, payload: e.payload }) as NewEvent),
    );
  } finally {
    await seed.close();
  }
  await crashed.close();
}
