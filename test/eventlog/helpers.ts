/**
 * Shared fixtures of the event-log tests: temp files that are removed afterwards, stores that are
 * closed afterwards, and small event factories.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach } from 'vitest';
import { simulatedClock } from '../../src/core/clock.js';
import type { NewEvent } from '../../src/eventlog/events.js';
import { agent } from '../../src/supervisor/agent.js';
import { par } from '../../src/supervisor/parallel.js';
import { seq } from '../../src/supervisor/sequential.js';
import { named, type Topology } from '../../src/supervisor/topology.js';
import {
  openSqliteStore,
  type SqliteEventStore,
  type SqliteStoreOptions,
} from '../../src/eventlog/sqlite.js';

/** 2026-01-01T00:00:00Z, the simulated clock's default start. */
export const T0 = Date.UTC(2026, 0, 1);

const dirs: string[] = [];
const stores: SqliteEventStore[] = [];

afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
  for (const d of dirs.splice(0)) {
    fs.chmodSync(d, 0o755);
    for (const f of fs.readdirSync(d)) fs.chmodSync(path.join(d, f), 0o644);
    fs.rmSync(d, { recursive: true, force: true });
  }
});

/** A fresh temp directory, removed after the test. */
export function tempDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-eventlog-'));
  dirs.push(d);
  return d;
}

/** A path to a not-yet-existing database file in a fresh temp directory. */
export function tempDb(name = 'keel.db'): string {
  return path.join(tempDir(), name);
}

/** Opens a store that is closed after the test (closing twice is fine). */
export function open(options: Partial<SqliteStoreOptions> & { path: string }): SqliteEventStore {
  const store = openSqliteStore({ clock: simulatedClock(T0 + 1_000_000), ...options });
  stores.push(store);
  return store;
}

/** An audit event (`feedback.recorded`). */
export function auditEvent(i: number, workflowId = `wf-${i}`, ts = T0 + i): NewEvent<'feedback.recorded'> {
  return { ts, workflowId, type: 'feedback.recorded', payload: { correct: i % 2 === 0, expected: { i } } };
}

/** An operational event (`cache.miss`). */
export function opEvent(i: number, workflowId = `wf-${i}`, ts = T0 + i): NewEvent<'cache.miss'> {
  return { ts, workflowId, type: 'cache.miss', payload: { path: `p/${i}`, agent: 'vendor', key: `k-${i}` } };
}

/** `n` events alternating audit / operational, ts = T0 + index. */
export function mixedEvents(n: number, from = 0): NewEvent[] {
  const out: NewEvent[] = [];
  for (let i = from; i < from + n; i++) out.push(i % 2 === 0 ? auditEvent(i) : opEvent(i));
  return out;
}

/** Bytes of a file plus its -wal, for "the file was not modified" checks. */
export function snapshot(file: string): Buffer {
  return fs.readFileSync(file);
}

/** Prices of the `sim` model {@link invoiceFlow}'s agents call. */
export const SIM_PRICING = { sim: { inputPer1K: 0.001, outputPer1K: 0.002 } };

/**
 * A small invoice workflow, `seq(par(vendor, amount), route)`, of agents that answer at once and
 * count their calls in `calls.n` (a replay must leave it at 0).
 */
export function invoiceFlow(calls: { n: number }): Topology<unknown, unknown> {
  const usage = { inputTokens: 10, outputTokens: 5 };
  const a = (name: string, value: unknown) =>
    agent({ name, model: 'sim', run: () => (calls.n++, Promise.resolve({ value, usage })) });
  return named('invoice', seq(par(a('vendor', 'ACME'), a('amount', 12.5)), a('route', 'A')));
}
