/**
 * What retention's dictionary pass costs (schema 5): a log of `--events` (default 200,000) events of
 * the stub invoice workflow (18 per workflow, each workflow its own id), half of them older than
 * the cut; times `prune` of both classes (half the events), on a fresh copy each round. With
 * `--before <dir>` (a checkout of the previous src/, e.g. `git archive main src | tar -x -C dir`)
 * it alternates rounds with that Keel's prune, which leaves the strings. Prints one line per round.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { measureBytes } from './footprint-bytes.js';
import { openSqliteStore } from '../src/eventlog/sqlite.js';
import { simulatedClock } from '../src/core/clock.js';
import type { NewEvent } from '../src/eventlog/events.js';
import { isMain } from './harness.js';

type Open = typeof openSqliteStore;

const PER_WORKFLOW_MS = 1_000;

/** The events of one stub invoice workflow, to copy under other ids and times. */
async function template(dir: string): Promise<NewEvent[]> {
  const file = path.join(dir, 'template.db');
  await measureBytes({ n: 1, keepAt: file });
  const store = openSqliteStore({ path: file, readonly: true });
  const events = store
    .query()
    .map(({ ts, workflowId, type, payload }) => ({ ts, workflowId, type, payload }));
  await store.close();
  return events as NewEvent[];
}

async function build(
  open: Open,
  file: string,
  tpl: NewEvent[],
  workflows: number,
  t0: number,
): Promise<void> {
  const store = open({ path: file, writer: 'inline', clock: simulatedClock(t0) });
  const id = tpl[0]?.workflowId as string;
  for (let w = 0; w < workflows; w += 100) {
    const batch: NewEvent[] = [];
    for (let i = w; i < Math.min(workflows, w + 100); i++) {
      const wf = `INV-customer-${String(i).padStart(7, '0')}`;
      for (const e of tpl) {
        const payload = JSON.parse(JSON.stringify(e.payload).split(id).join(wf)) as NewEvent['payload'];
        batch.push({ ...e, workflowId: wf, ts: t0 + i * PER_WORKFLOW_MS, payload } as NewEvent);
      }
    }
    await store.append(batch);
  }
  await store.close();
}

async function pruneCopy(open: Open, built: string, dir: string, cut: number, now: number): Promise<number> {
  const file = path.join(dir, `round-${Math.random().toString(36).slice(2)}.db`);
  fs.copyFileSync(built, file);
  const store = open({ path: file, writer: 'inline', clock: simulatedClock(now) });
  const started = performance.now();
  await store.prune({ olderThan: cut, class: 'operational' });
  await store.prune({ olderThan: cut, class: 'audit' });
  const ms = performance.now() - started;
  await store.close();
  for (const f of fs.readdirSync(dir)) if (f.startsWith(path.basename(file))) fs.rmSync(path.join(dir, f));
  return ms;
}

export async function main(argv = process.argv.slice(2)): Promise<void> {
  const flag = (name: string): string | undefined => {
    const at = argv.indexOf(`--${name}`);
    return at < 0 ? undefined : argv[at + 1];
  };
  const flags = { events: flag('events'), rounds: flag('rounds'), before: flag('before') };
  const events = Number(flags.events ?? 200_000);
  const rounds = Number(flags.rounds ?? 3);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-prune-'));
  try {
    const tpl = await template(dir);
    const workflows = Math.ceil(events / tpl.length);
    const t0 = Date.UTC(2026, 0, 1);
    const cut = t0 + Math.floor(workflows / 2) * PER_WORKFLOW_MS;
    const now = t0 + workflows * PER_WORKFLOW_MS + 1;
    const opens: [string, Open][] = [['schema 5', openSqliteStore]];
    if (typeof flags.before === 'string') {
      const before = (await import(path.resolve(flags.before, 'src/eventlog/sqlite.ts'))) as {
        openSqliteStore: Open;
      };
      opens.push(['before', before.openSqliteStore]);
    }
    const built = new Map<string, string>();
    for (const [name, open] of opens) {
      const file = path.join(dir, `${name.replace(' ', '-')}.db`);
      await build(open, file, tpl, workflows, t0);
      built.set(name, file);
    }
    console.log(
      `${workflows * tpl.length} events (${workflows} workflows of ${tpl.length}), pruning ${Math.floor(workflows / 2) * tpl.length}`,
    );
    for (let r = 0; r < rounds; r++) {
      for (const [name, open] of r % 2 === 0 ? opens : [...opens].reverse()) {
        const ms = await pruneCopy(open, built.get(name) as string, dir, cut, now);
        console.log(`round ${r} ${name}: prune ${ms.toFixed(0)} ms (load ${os.loadavg()[0]?.toFixed(1)})`);
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (isMain(import.meta.url)) await main();
