import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, expect, it } from 'vitest';
import { openPostgresStore, type PostgresEventStore } from '../../src/eventlog/postgres.js';
import { describePostgres, freshDatabase } from '../support/scaleout.js';

const CHILD = fileURLToPath(new URL('./postgres-append-child.ts', import.meta.url));
const REPO = fileURLToPath(new URL('../../', import.meta.url));
/** Events each writer process appends. */
const PER_PROCESS = 1_500;
/** Kill the children after this long regardless (they normally finish in a few seconds). */
const GIVE_UP_MS = 90_000;

interface Writer {
  child: ChildProcessWithoutNullStreams;
  /** Resolves once the child printed `ready`. */
  ready: Promise<void>;
  /** Resolves with everything it printed once it exited. */
  exited: Promise<{ code: number | null; out: string; stderr: string }>;
}

const children: ChildProcessWithoutNullStreams[] = [];
const stores: PostgresEventStore[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
  for (const s of stores.splice(0)) await s.close();
});

function startWriter(url: string, tag: string): Writer {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, url, tag, String(PER_PROCESS)], {
    cwd: REPO,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  children.push(child);
  let out = '';
  let stderr = '';
  let markReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk;
    if (out.startsWith('ready\n')) markReady();
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const guard = setTimeout(() => child.kill('SIGKILL'), GIVE_UP_MS);
  const exited = new Promise<{ code: number | null; out: string; stderr: string }>((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(guard);
      markReady();
      resolve({ code, out, stderr });
    });
  });
  return { child, ready, exited };
}

/** `seq → workflowId` of every event a writer printed as acknowledged. */
function acks(out: string): Map<number, string> {
  const acked = new Map<number, string>();
  for (const line of out.split('\n')) {
    const m = /^(\d+) (\S+)$/.exec(line);
    if (m) acked.set(Number(m[1]), m[2] as string);
  }
  return acked;
}

describePostgres('two processes appending to one Postgres log', () => {
  it(
    'build one gap-free chain that verifies and holds every acknowledged event',
    { timeout: 120_000 },
    async () => {
      const url = await freshDatabase(); // empty: both processes race to create the schema

      const writers = [startWriter(url, 'alpha'), startWriter(url, 'beta')];
      await Promise.all(writers.map((w) => w.ready));
      for (const w of writers) w.child.stdin.write('go\n');
      const results = await Promise.all(writers.map((w) => w.exited));

      for (const r of results) {
        expect(r.stderr).toBe('');
        expect(r.code).toBe(0);
        expect(r.out).toMatch(/\ndone \d+\n$/);
      }
      const [alpha, beta] = results.map((r) => acks(r.out)) as [Map<number, string>, Map<number, string>];
      expect(alpha.size).toBe(PER_PROCESS);
      expect(beta.size).toBe(PER_PROCESS);

      const store = openPostgresStore({ url });
      stores.push(store);
      const events = await store.query();
      const total = 2 * PER_PROCESS;
      expect(events.map((e) => e.seq)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
      for (const [seq, workflowId] of [...alpha, ...beta]) {
        expect(events[seq - 1]?.workflowId, `seq ${seq}`).toBe(workflowId);
      }
      expect(await store.verify()).toMatchObject({ ok: true, events: total });
      // The two writers' transactions interleaved (else this test proved nothing about locking).
      let switches = 0;
      for (let i = 1; i < events.length; i++) {
        if (events[i]?.workflowId.split('-')[0] !== events[i - 1]?.workflowId.split('-')[0]) switches++;
      }
      expect(switches).toBeGreaterThan(2);
    },
  );
});
