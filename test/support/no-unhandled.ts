/**
 * Vitest setup module (registered in `vitest.config.ts` as a `setupFiles` entry), so the whole
 * suite runs under it: a process-level `unhandledRejection` or `uncaughtException` — what takes a
 * Node service down (or, with a handler installed, leaves a promise hanging forever) — is recorded,
 * printed, and fails the test during which it happened. `processLevelFailures()` lists them, for
 * tests that assert the handler saw nothing.
 */
import { afterEach } from 'vitest';

const KEY = Symbol.for('keel.test.processLevelFailures');

interface Registry {
  seen: { kind: 'unhandledRejection' | 'uncaughtException'; reason: unknown }[];
  /** How many of `seen` the last check had already reported. */
  reported: number;
}

const holder = globalThis as { [KEY]?: Registry };
const registry: Registry = (holder[KEY] ??= (() => {
  const r: Registry = { seen: [], reported: 0 };
  // Once per worker process: each test file runs this module again.
  process.on('unhandledRejection', (reason) => {
    r.seen.push({ kind: 'unhandledRejection', reason });
    console.error('unhandledRejection during a test:', reason);
  });
  process.on('uncaughtException', (error) => {
    r.seen.push({ kind: 'uncaughtException', reason: error });
    console.error('uncaughtException during a test:', error);
  });
  return r;
})());

/** Every process-level failure seen in this worker so far. */
export function processLevelFailures(): readonly { kind: string; reason: unknown }[] {
  return registry.seen;
}

afterEach(() => {
  const fresh = registry.seen.slice(registry.reported);
  registry.reported = registry.seen.length;
  if (fresh.length > 0) {
    const what = fresh
      .map(
        (f) =>
          `${f.kind}: ${f.reason instanceof Error ? (f.reason.stack ?? f.reason.message) : String(f.reason)}`,
      )
      .join('\n');
    throw new Error(`the process saw ${fresh.length} unhandled failure(s) during this test:\n${what}`);
  }
});
