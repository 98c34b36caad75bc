/**
 * Helpers of the durable-execution tests: counting agents, and the "crash" of a runtime — the log
 * as a killed process leaves it (every committed event, no end), copied into a new file that a new
 * runtime opens.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KeelEvent, NewEvent } from '../../src/eventlog/events.js';
import { openSqliteStore } from '../../src/eventlog/sqlite.js';
import { agent, type Agent, type AgentContext, type AgentOutput } from '../../src/supervisor/agent.js';

export const PRICING = { sim: { inputPer1K: 0.01, outputPer1K: 0.02 } };

/** Temporary directories, removed by {@link cleanupDirs}. */
const dirs: string[] = [];

export function tempDb(name = 'keel.db'): string {
  const d = mkdtempSync(join(tmpdir(), 'keel-durable-'));
  dirs.push(d);
  return join(d, name);
}

export function cleanupDirs(): void {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

/** An agent that counts its calls, records each call's attempt number, and answers `value(input)`. */
export interface CountingAgent {
  agent: Agent<unknown, unknown>;
  calls: () => number;
  attempts: number[];
}

export function counting(
  name: string,
  value: (input: unknown) => unknown = (input) => ({ [name]: input }),
  options: { hang?: boolean; fail?: boolean } = {},
): CountingAgent {
  let calls = 0;
  const attempts: number[] = [];
  const a = agent({
    name,
    model: 'sim',
    run: (input: unknown, ctx: AgentContext) => {
      calls++;
      attempts.push(ctx.attempt);
      if (options.hang) {
        // In flight until cancelled: what a SIGKILL leaves behind.
        return new Promise<AgentOutput<unknown>>((_, reject) => {
          ctx.signal.addEventListener('abort', () => reject(new Error('aborted')), { once: true });
        });
      }
      // A plain Error, not a Keel one: what user code throws.
      if (options.fail) return Promise.reject(new Error(`${name} exploded`));
      return Promise.resolve({
        value: value(input),
        confidence: 0.9,
        usage: { inputTokens: 100, outputTokens: 10 },
      });
    },
  });
  return { agent: a, calls: () => calls, attempts };
}

/** Writes `events` (as committed by a crashed process) into a new log file and returns its path. */
export async function crashedLog(events: readonly KeelEvent[]): Promise<string> {
  const file = tempDb();
  const store = openSqliteStore({ path: file });
  await store.append(
    events.map(
      (e) =>
        ({
          ts: e.ts,
          workflowId: e.workflowId,
          type: e.type,
          v: e.v,
          class: e.class,
          payload: e.payload,
        }) as NewEvent,
    ),
  );
  await store.close();
  return file;
}

/** Lets microtasks and committed appends run (the SQLite store commits on setImmediate). */
export async function settle(rounds = 5): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise<void>((r) => setImmediate(r));
}
