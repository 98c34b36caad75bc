import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { EXIT } from '../../src/cli/io.js';
import { runCli } from '../../src/cli/main.js';
import { openSqliteStore } from '../../src/eventlog/sqlite.js';
import type { KeelEvent } from '../../src/eventlog/events.js';
import { captureIo } from './io.js';
import { invoices, recordCascade, tempDir } from './logs.js';

let tmp: ReturnType<typeof tempDir> | undefined;
afterEach(() => {
  tmp?.cleanup();
  tmp = undefined;
});

async function recorded(): Promise<{ db: string; ids: string[]; events: KeelEvent[] }> {
  tmp = tempDir();
  const db = tmp.path('keel.db');
  const results = await recordCascade(db, 0.9, invoices(4));
  const store = openSqliteStore({ path: db, readonly: true });
  const events = store.query();
  await store.close();
  return { db, ids: results.map((r) => r.workflowId), events };
}

const lines = (text: string): unknown[] =>
  text
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as unknown);

describe('keel export', () => {
  it('streams the whole log as an Elasticsearch _bulk body: an action line, then its ECS document', async () => {
    const { db, events } = await recorded();
    const c = captureIo();
    expect(await runCli(['export', '--db', db, '--format', 'es-bulk', '--index', 'keel-events'], c.io)).toBe(
      EXIT.ok,
    );
    const text = c.stdout();
    expect(text.endsWith('\n')).toBe(true);
    const parsed = lines(text);
    expect(parsed).toHaveLength(events.length * 2);
    for (const [i, e] of events.entries()) {
      expect(parsed[2 * i]).toEqual({ index: { _index: 'keel-events', _id: String(e.seq) } });
      expect(parsed[2 * i + 1]).toMatchObject({
        '@timestamp': new Date(e.ts).toISOString(),
        'event.action': e.type,
        'event.sequence': e.seq,
        'service.name': 'keel',
        labels: { workflow_id: e.workflowId },
      });
    }
  });

  it('writes ECS JSON lines for one workflow to a file, keeping stdout empty', async () => {
    const { db, ids, events } = await recorded();
    const t = tmp as ReturnType<typeof tempDir>;
    const c = captureIo();
    const out = t.path('export.ndjson');
    const id = ids[1] as string;
    expect(
      await runCli(['export', '--db', db, '--workflow', id, '--service', 'invoices', '--out', out], c.io),
    ).toBe(EXIT.ok);
    expect(c.stdout()).toBe('');
    const docs = lines(readFileSync(out, 'utf8')) as Record<string, unknown>[];
    const mine = events.filter((e) => e.workflowId === id);
    expect(docs).toHaveLength(mine.length);
    expect(docs.map((d) => d['event.sequence'])).toEqual(mine.map((e) => e.seq));
    for (const d of docs) {
      expect(d).toMatchObject({ 'ecs.version': expect.any(String) as unknown, 'service.name': 'invoices' });
      expect((d.labels as { workflow_id: string }).workflow_id).toBe(id);
    }
    expect(c.stderr()).toContain(`exported ${mine.length} event(s) to ${out} as ecs`);
  });

  it('filters by time', async () => {
    const { db, events } = await recorded();
    const from = (events[0] as KeelEvent).ts;
    let c = captureIo();
    expect(await runCli(['export', '--db', db, '--from', String(from), '--to', String(from + 1)], c.io)).toBe(
      EXIT.ok,
    );
    expect(lines(c.stdout())).toHaveLength(events.filter((e) => e.ts === from).length);
    c = captureIo();
    expect(await runCli(['export', '--db', db, '--from', '2030-01-01T00:00:00Z'], c.io)).toBe(EXIT.ok);
    expect(c.stdout()).toBe('');
    expect(c.stderr()).toContain('exported 0 event(s)');
  });

  it('rejects bad options with exit 2 and a missing log with exit 3', async () => {
    const { db } = await recorded();
    const cases: [string[], string][] = [
      [['export', '--db', db, '--format', 'xml'], '--format must be ecs or es-bulk'],
      [['export', '--db', db, '--index', 'keel'], '--index applies to --format es-bulk only'],
      [
        ['export', '--db', db, '--format', 'es-bulk', '--index', 'Bad Index'],
        'is not a valid Elasticsearch index name',
      ],
      [['export', '--db', db, '--from', 'yesterday'], '--from must be an ISO date/time'],
      [
        ['export', '--db', db, '--from', '2026-02-01', '--to', '2026-01-01'],
        '--to must be later than --from',
      ],
    ];
    for (const [argv, message] of cases) {
      const c = captureIo();
      expect(await runCli(argv, c.io), argv.join(' ')).toBe(EXIT.usage);
      expect(c.stderr()).toContain(message);
    }
    const c = captureIo();
    expect(await runCli(['export', '--db', `${db}.missing`], c.io)).toBe(EXIT.error);
  });
});
