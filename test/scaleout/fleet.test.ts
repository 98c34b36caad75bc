/**
 * Two Keel runtime processes as a fleet: one Postgres event log, one Redis cache and one Redis
 * budget. They race for a $1/day budget at $0.05 a call, then one reuses the other's cached
 * answers; afterwards the log is one chain that verifies, and the CLI reads it from Postgres.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { expect, inject, it } from 'vitest';
import { EXIT } from '../../src/cli/io.js';
import { runCli } from '../../src/cli/main.js';
import { collectEvents } from '../../src/eventlog/store.js';
import { openPostgresStore } from '../../src/eventlog/postgres.js';
import { captureIo } from '../cli/io.js';
import { describePostgres, freshDatabase, redisPrefix, redisUrl } from '../support/scaleout.js';

const CHILD = fileURLToPath(new URL('./fleet-child.ts', import.meta.url));
const TOPOLOGIES = fileURLToPath(new URL('./fleet-topologies.ts', import.meta.url));

interface ChildReport {
  admitted: number;
  refused: number;
  calls: number;
  costUsd: number;
  ids: string[];
  done: string[];
  alerts: string[];
}

/** Starts one runtime process per input list; releases them together; collects their reports. */
async function fleet(
  pgUrl: string,
  prefixes: { cache: string; budget: string },
  inputLists: readonly string[][],
): Promise<ChildReport[]> {
  const children = inputLists.map((inputs, i) =>
    spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        CHILD,
        pgUrl,
        redisUrl(),
        prefixes.cache,
        prefixes.budget,
        `proc-${i}`,
        inputs.join(','),
        '4',
      ],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    ),
  );
  const outputs = children.map((child) => {
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const ready = new Promise<void>((resolve, reject) => {
      const check = (): void => {
        if (out.includes('ready\n')) resolve();
      };
      child.stdout.on('data', check);
      child.once('exit', (code) => reject(new Error(`child exited (${String(code)}) before ready: ${err}`)));
    });
    const exited = once(child, 'exit').then(([code]) => ({
      code: code as number | null,
      out: () => out,
      err: () => err,
    }));
    return { ready, exited };
  });
  await Promise.all(outputs.map((o) => o.ready));
  for (const child of children) child.stdin.end('go\n');
  const done = await Promise.all(outputs.map((o) => o.exited));
  return done.map((d) => {
    expect(d.err()).toBe('');
    expect(d.code).toBe(0);
    const last = d.out().trim().split('\n').at(-1) ?? '';
    return JSON.parse(last) as ChildReport;
  });
}

const vendors = (tag: string, n: number): string[] =>
  Array.from({ length: n }, (_, i) => `${tag}-vendor-${i}`);

describePostgres('a fleet of two runtime processes on Postgres and Redis', () => {
  const redisSkip = inject('redisSkip');
  const maybe = redisSkip ? it.skip : it;

  maybe(
    'shares one budget without overshoot, one verifiable chain, and cache hits across processes',
    async () => {
      const pgUrl = await freshDatabase();
      const cache = redisPrefix();

      // 1. The race: 2 x 30 distinct calls at $0.05 against $1/day: exactly 20 fit, fleet-wide.
      const race = await fleet(pgUrl, { cache, budget: redisPrefix() }, [vendors('a', 30), vendors('b', 30)]);
      const admitted = race.reduce((n, r) => n + r.admitted, 0);
      expect(admitted).toBe(20);
      expect(race.reduce((n, r) => n + r.refused, 0)).toBe(40);
      expect(race.reduce((n, r) => n + r.costUsd, 0)).toBeCloseTo(1, 9);
      expect(race.reduce((n, r) => n + r.calls, 0)).toBe(20); // a refused call never reaches the model
      // Each threshold alerts once for the fleet, raised by whichever process crossed it.
      const alerts = race.flatMap((r) => r.alerts).sort();
      expect(alerts).toHaveLength(2);
      expect(alerts[0]).toMatch(/^budget:global:0\.8:/);
      expect(alerts[1]).toMatch(/^budget:global:1:/);

      // 2. Cache hits cross processes: a third process (fresh budget) asks for the 20 answers the
      // race paid for: all hits, no model call, no spend.
      const paid = race.flatMap((r) => r.done);
      const [reuse] = await fleet(pgUrl, { cache, budget: redisPrefix() }, [paid]);
      expect(reuse).toMatchObject({ admitted: 20, refused: 0, calls: 0, costUsd: 0 });

      // 3. Single-flight crosses processes: two processes ask for the same 12 new answers at once;
      // each is computed once in the whole fleet.
      const same = vendors('c', 12);
      const shared = await fleet(pgUrl, { cache, budget: redisPrefix() }, [same, same]);
      expect(shared.reduce((n, r) => n + r.admitted, 0)).toBe(24);
      expect(shared.reduce((n, r) => n + r.calls, 0)).toBe(12);

      // 3. The log: one chain across both processes, every acknowledged workflow in it.
      const store = openPostgresStore({ url: pgUrl, readonly: true });
      try {
        expect(await store.verify()).toMatchObject({ ok: true });
        const completed = await store.query({ type: 'workflow.completed' });
        const ids = new Set(completed.map((e) => e.workflowId));
        for (const id of [...race, reuse, ...shared].flatMap((r) => r?.ids ?? []))
          expect(ids.has(id)).toBe(true);
        const started = await collectEvents(store.iterate({ type: 'workflow.started' }));
        expect(started).toHaveLength(60 + 20 + 24);
        const seqs = (await store.query()).map((e) => e.seq);
        expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => i + 1));
        const budgetAlerts = await store.query({ type: 'budget.alert' });
        expect(budgetAlerts.map((e) => (e.type === 'budget.alert' ? e.payload.threshold : 0)).sort()).toEqual(
          [0.8, 1],
        );
      } finally {
        await store.close();
      }

      // 4. The CLI reads the fleet's log from Postgres: verify, report, replay with zero model calls.
      const verify = captureIo();
      expect(await runCli(['audit', 'verify', '--store', pgUrl], verify.io)).toBe(EXIT.ok);
      expect(verify.stdout()).toMatch(/^OK: \d+ events, chains intact/);
      const report = captureIo();
      expect(await runCli(['report', '--store', pgUrl, '--json'], report.io)).toBe(EXIT.ok);
      expect(JSON.parse(report.stdout())).toMatchObject({
        workflows: [{ name: 'fleet-extract', started: 104, completed: 64, failed: 40 }],
      });
      const counter = globalThis as { keelFleetCalls?: number };
      counter.keelFleetCalls = 0;
      const replay = captureIo();
      expect(
        await runCli(['replay', 'all', '--store', pgUrl, '--topologies', TOPOLOGIES, '--json'], replay.io),
      ).toBe(EXIT.ok);
      expect(JSON.parse(replay.stdout())).toMatchObject({ workflows: 104, diverged: 0, modelCalls: 0 });
      expect(counter.keelFleetCalls).toBe(0);
    },
    120_000,
  );
});
