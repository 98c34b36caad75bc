import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT, type Io } from '../../src/cli/io.js';
import { runCli } from '../../src/cli/main.js';
import type { NewEvent } from '../../src/eventlog/events.js';
import { openSqliteStore } from '../../src/eventlog/sqlite.js';
import type { Report } from '../../src/report/report.js';

let dir: string;
let db: string;
const T0 = Date.UTC(2026, 4, 4, 10);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'keel-report-cli-'));
  db = join(dir, 'keel.db');
  const store = openSqliteStore({ path: db });
  const events: NewEvent[] = [];
  for (let i = 0; i < 30; i++) {
    const id = `wf${i}`;
    const ts = T0 + i * 60_000;
    const latencyMs = 2_000 + i * 200;
    events.push(
      {
        ts,
        workflowId: id,
        type: 'workflow.started',
        payload: { name: 'invoice', topology: {}, input: { i }, inputHash: 'h' },
      },
      {
        ts: ts + 10,
        workflowId: id,
        type: 'cost.incurred',
        payload: {
          path: 'invoice/vendor',
          agent: 'vendor',
          model: 'gpt-4',
          taskType: 'vendor',
          attempt: 1,
          usage: { inputTokens: 800, outputTokens: 200 },
          costUsd: 0.03,
          estimateUsd: 0.03,
        },
      },
      i % 10 === 3
        ? {
            ts: ts + latencyMs,
            workflowId: id,
            type: 'agent.failed',
            payload: {
              path: 'invoice/vendor',
              agent: 'vendor',
              taskType: 'vendor',
              model: 'gpt-4',
              category: 'ocr_error',
              message: 'unreadable',
              attempts: 1,
              latencyMs,
              costUsd: 0.03,
            },
          }
        : {
            ts: ts + latencyMs,
            workflowId: id,
            type: 'agent.succeeded',
            payload: {
              path: 'invoice/vendor',
              agent: 'vendor',
              taskType: 'vendor',
              model: 'gpt-4',
              output: 'ACME',
              attempts: 1,
              latencyMs,
              usage: { inputTokens: 800, outputTokens: 200 },
              costUsd: 0.03,
            },
          },
      i % 10 === 3
        ? {
            ts: ts + latencyMs,
            workflowId: id,
            type: 'workflow.failed',
            payload: {
              category: 'ocr_error',
              message: 'unreadable',
              latencyMs,
              costUsd: 0.03,
              agentsCalled: 1,
            },
          }
        : {
            ts: ts + latencyMs,
            workflowId: id,
            type: 'workflow.completed',
            payload: { output: 'ACME', latencyMs, costUsd: 0.03, agentsCalled: 1 },
          },
    );
  }
  await store.append(events);
  await store.close();
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function capture(): Io & { stdout: () => string; stderr: () => string } {
  const out: string[] = [];
  const err: string[] = [];
  return {
    out: (t) => void out.push(t),
    err: (t) => void err.push(t),
    tty: false,
    stdout: () => out.join('\n'),
    stderr: () => err.join('\n'),
  };
}

describe('keel report', () => {
  it('prints the tables for a log, plain text when stdout is not a terminal', async () => {
    const io = capture();
    expect(await runCli(['report', '--db', db], io)).toBe(EXIT.ok);
    const text = io.stdout();
    expect(text).toContain('WORKFLOWS');
    expect(text).toMatch(/invoice +30 +27 +3 +0 +0/);
    expect(text).toContain('LATENCY (SLA: P95 ≤ 10 s)');
    expect(text).toMatch(/P95 [\d.]+ s vs SLA 10 s ✓/);
    expect(text).toContain('- Total spend: $0.90');
    expect(text).toContain('- OCR errors: 3 (100%) ← PRIMARY ROOT CAUSE');
    expect(text).not.toContain('\u001b[');
    expect(io.stderr()).toBe('');
  });

  it('--json prints the report object, with --sla-ms and --budget-usd applied', async () => {
    const io = capture();
    expect(
      await runCli(['report', '--db', db, '--json', '--sla-ms', '5000', '--budget-usd', '1.5'], io),
    ).toBe(EXIT.ok);
    const report = JSON.parse(io.stdout()) as Report;
    expect(report.version).toBe(1);
    expect(report.settings).toMatchObject({ slaP95Ms: 5_000, budgetUsd: 1.5, timeZone: 'UTC' });
    expect(report.span.events).toBe(120);
    expect(report.cost.days[0]?.budgetRatio).toBeCloseTo(0.9 / 1.5, 12);
    const [invoice] = report.latency.workflows;
    expect(invoice?.slaCompliance).toBeCloseTo(16 / 30, 12); // 2.0 s … 5.0 s of 2.0 s … 7.8 s
    expect(invoice?.meetsSla).toBe(false);
  });

  it('--html writes one self-contained file and says where; with --json the note goes to stderr', async () => {
    const file = join(dir, 'out', '..', 'report.html');
    const io = capture();
    expect(await runCli(['report', '--db', db, '--html', file], io)).toBe(EXIT.ok);
    const written = join(dir, 'report.html');
    expect(io.stdout()).toContain(`HTML report written to ${written}`);
    expect(readFileSync(written, 'utf8')).toMatch(/^<!doctype html>/);

    rmSync(written);
    const json = capture();
    expect(await runCli(['report', '--db', db, '--json', '--html', written], json)).toBe(EXIT.ok);
    expect(() => JSON.parse(json.stdout()) as unknown).not.toThrow();
    expect(json.stderr()).toContain(`HTML report written to ${written}`);
    expect(existsSync(written)).toBe(true);
  });

  it('says what to do when the log is missing or is not a database (exit 3)', async () => {
    const missing = capture();
    expect(await runCli(['report', '--db', join(dir, 'nope.db')], missing)).toBe(EXIT.error);
    expect(missing.stderr()).toMatch(/nope\.db does not exist\. Pass --db/);

    const junk = join(dir, 'junk.db');
    writeFileSync(junk, 'this is not a sqlite file, just text '.repeat(200));
    const corrupt = capture();
    expect(await runCli(['report', '--db', junk], corrupt)).toBe(EXIT.error);
    expect(corrupt.stderr()).toMatch(/junk\.db is not a SQLite database/);
    expect(corrupt.stdout()).toBe('');
  });

  it('refuses bad options with exit 2, naming the option', async () => {
    const cases: [string[], RegExp][] = [
      [['--sla-ms', 'fast'], /--sla-ms must be a number > 0, e\.g\. 10000; got "fast"/],
      [['--budget-usd=-3'], /--budget-usd must be a number > 0, e\.g\. 100; got "-3"/],
      [['--time-zone', 'Mars/Olympus_Mons'], /--time-zone "Mars\/Olympus_Mons" is not an IANA time zone/],
    ];
    for (const [args, message] of cases) {
      const io = capture();
      expect(await runCli(['report', '--db', db, ...args], io), args.join(' ')).toBe(EXIT.usage);
      expect(io.stderr()).toMatch(message);
      expect(io.stdout()).toBe('');
    }
  });

  it('fails with exit 3 when the HTML file cannot be written', async () => {
    const io = capture();
    const target = join(dir, 'no-such-dir', 'report.html');
    expect(await runCli(['report', '--db', db, '--html', target], io)).toBe(EXIT.error);
    expect(io.stderr()).toContain(`could not write the HTML report to ${target}`);
  });
});
