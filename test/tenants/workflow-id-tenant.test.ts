/**
 * A `workflowId` is an idempotency key within one tenant: a run under an id the log (or this
 * runtime) already holds for another tenant — or for no tenant — is refused with
 * `WorkflowTenantConflictError` naming both tenants and the fix, before anything is written, and
 * never answers with (or streams) the other tenant's workflow. Also across a restart.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { simulatedClock } from '../../src/core/clock.js';
import type { SqliteEventStore } from '../../src/eventlog/sqlite.js';
import { isWorkflowTenantConflictError } from '../../src/errors.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import { agent } from '../../src/supervisor/agent.js';
import { lastValueFrom, toArray } from 'rxjs';

let dir: string | undefined;
const open: Runtime<SqliteEventStore>[] = [];
afterEach(async () => {
  for (const r of open.splice(0)) await r.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

function runtime(db = ':memory:') {
  const rt = createRuntime<SqliteEventStore>({ db, clock: simulatedClock(0), seed: 1, cache: false });
  open.push(rt);
  return rt;
}

/** An agent that counts its calls and echoes its input (or throws "boom: <input>"). */
function echo(calls: string[]) {
  return agent<string, string>({
    name: 'echo',
    model: 'gpt-4o-mini',
    run: (input) => {
      calls.push(input);
      if (input.startsWith('fail')) throw new Error(`boom: ${input}`);
      return Promise.resolve({ value: `secret of ${input}` });
    },
  });
}

/** The error a promise rejects with (fails the test if it resolves). */
async function errorOf(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a rejection');
}

describe('a workflowId of another tenant', () => {
  it('a completed workflow of acme: globex under its id is refused, names both tenants, writes and calls nothing', async () => {
    const rt = runtime();
    const calls: string[] = [];
    const a = echo(calls);
    await rt.run(a, 'acme-input', { workflowId: 'req-42', tenant: 'acme' });
    await rt.ready();
    const before = rt.store.query({}).length;
    const e = await errorOf(rt.run(a, 'globex-input', { workflowId: 'req-42', tenant: 'globex' }));
    expect(isWorkflowTenantConflictError(e)).toBe(true);
    expect(e.message).toMatch(
      /workflowId "req-42" already belongs to a workflow of tenant "acme", not of tenant "globex".*prefix the request id with the tenant.*Nothing was run/,
    );
    // Not the other tenant's recorded answer.
    expect(e.message).not.toContain('secret');
    expect(calls).toEqual(['acme-input']);
    await rt.ready();
    expect(rt.store.query({}).length).toBe(before);
    // The same tenant still gets its recorded result.
    const again = await rt.run(a, 'acme-input', { workflowId: 'req-42', tenant: 'acme' });
    expect(again).toMatchObject({ value: 'secret of acme-input', recorded: true });
  });

  it('an untenanted id asked for by a tenant, and a tenant’s id asked for without one', async () => {
    const rt = runtime();
    const a = echo([]);
    await rt.run(a, 'x', { workflowId: 'plain' });
    await rt.run(a, 'y', { workflowId: 'owned', tenant: 'acme' });
    const e1 = await errorOf(rt.run(a, 'x', { workflowId: 'plain', tenant: 'acme' }));
    expect(isWorkflowTenantConflictError(e1) && [e1.recordedTenant, e1.requestedTenant]).toEqual([
      undefined,
      'acme',
    ]);
    expect(e1.message).toContain('already belongs to a workflow of no tenant, not of tenant "acme"');
    const e2 = await errorOf(rt.run(a, 'y', { workflowId: 'owned' }));
    expect(e2.message).toContain('already belongs to a workflow of tenant "acme", not of no tenant');
  });

  it("a failed workflow of acme: globex gets the conflict, not acme's recorded failure", async () => {
    const rt = runtime();
    const a = echo([]);
    await errorOf(rt.run(a, 'fail-acme', { workflowId: 'req-7', tenant: 'acme' }));
    const e = await errorOf(rt.run(a, 'other', { workflowId: 'req-7', tenant: 'globex' }));
    expect(isWorkflowTenantConflictError(e)).toBe(true);
    expect(e.message).not.toContain('boom');
  });

  it('a run of acme in flight in this runtime: globex is refused at once and does not join it', async () => {
    const clock = simulatedClock(0);
    const rt = createRuntime<SqliteEventStore>({ db: ':memory:', clock, seed: 1, cache: false });
    open.push(rt);
    const slow = agent<string, string>({
      name: 'slow',
      model: 'gpt-4o-mini',
      run: (input) => new Promise((resolve) => clock.setTimeout(() => resolve({ value: input }), 1_000)),
    });
    const first = rt.run(slow, 'acme', { workflowId: 'req-9', tenant: 'acme' });
    const e = await errorOf(rt.run(slow, 'globex', { workflowId: 'req-9', tenant: 'globex' }));
    expect(isWorkflowTenantConflictError(e)).toBe(true);
    await clock.advanceAsync(1_000);
    expect((await first).value).toBe('acme');
  });

  it("run$ under another tenant's id errors and streams none of its events", async () => {
    const rt = runtime();
    const a = echo([]);
    await rt.run(a, 'acme-input', { workflowId: 'req-5', tenant: 'acme' });
    const seen: unknown[] = [];
    const e = await errorOf(
      lastValueFrom(
        rt.run$(a, 'globex-input', { workflowId: 'req-5', tenant: 'globex' }).pipe(toArray()),
      ).then((items) => seen.push(...items)),
    );
    expect(isWorkflowTenantConflictError(e)).toBe(true);
    expect(seen).toEqual([]);
  });

  it('across a restart: the id read back from the log keeps its tenant', async () => {
    dir = mkdtempSync(join(tmpdir(), 'keel-id-tenant-'));
    const db = join(dir, 'k.db');
    const calls: string[] = [];
    const first = runtime(db);
    await first.run(echo(calls), 'acme-input', { workflowId: 'req-1', tenant: 'acme' });
    await first.close();
    open.splice(open.indexOf(first), 1);
    const second = runtime(db);
    const e = await errorOf(
      second.run(echo(calls), 'globex-input', { workflowId: 'req-1', tenant: 'globex' }),
    );
    expect(isWorkflowTenantConflictError(e)).toBe(true);
    expect(calls).toEqual(['acme-input']);
    await second.ready();
    expect(second.store.query({ workflowId: 'req-1' }).every((ev) => ev.payload.tenant === 'acme')).toBe(
      true,
    );
  });
});
