/**
 * `keel report` by tenant (issue 24): the normal report has a per-tenant table (workflows, calls,
 * cost, errors, P95 latency), and `--tenant acme` reports acme's workflows alone — from a log a real
 * runtime wrote, with a tenant whose agent fails, one that succeeds and untenanted work beside them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT } from '../../src/cli/io.js';
import { captureIo } from '../cli/io.js';
import { runCli } from '../../src/cli/main.js';
import { simulatedClock } from '../../src/core/clock.js';
import { renderHtml } from '../../src/report/html.js';
import type { Report } from '../../src/report/report.js';
import { createRuntime } from '../../src/runtime.js';
import { PRICING, cleanupDirs, counting, tempDb } from '../durable/helpers.js';

let db: string;

beforeAll(async () => {
  db = tempDb();
  const clock = simulatedClock(Date.UTC(2026, 4, 4, 10));
  const rt = createRuntime({ db, clock, seed: 1, pricing: PRICING, cache: false });
  const ok = counting('ok').agent;
  const bad = counting('bad', undefined, { fail: true }).agent;
  for (let i = 0; i < 3; i++) await rt.run(ok, { i }, { tenant: 'acme' });
  for (let i = 0; i < 2; i++) await rt.run(bad, { i }, { tenant: 'globex' }).catch(() => undefined);
  await rt.run(ok, { i: 9 });
  await rt.close();
});
afterAll(() => cleanupDirs());

async function reportOf(tenant?: string): Promise<Report> {
  const io = captureIo();
  const args = ['report', '--db', db, '--json', ...(tenant !== undefined ? ['--tenant', tenant] : [])];
  expect(await runCli(args, io.io)).toBe(EXIT.ok);
  return JSON.parse(io.stdout()) as Report;
}

describe('keel report and tenants', () => {
  it('lists every tenant with its workflows, calls, cost, errors and P95 latency', async () => {
    const io = captureIo();
    expect(await runCli(['report', '--db', db, '--json'], io.io)).toBe(EXIT.ok);
    const report = JSON.parse(io.stdout()) as Report;
    const acme = report.tenants.find((t) => t.tenant === 'acme');
    const globex = report.tenants.find((t) => t.tenant === 'globex');
    expect(report.tenants.map((t) => t.tenant).sort()).toEqual(['acme', 'globex']);
    expect(acme).toMatchObject({ workflows: 3, calls: 3, outcomes: 3, errors: 0, errorRate: 0 });
    expect(globex).toMatchObject({ workflows: 2, outcomes: 2, errors: 2, errorRate: 1 });
    expect(acme?.costUsd).toBeGreaterThan(0);
    // The whole log is still reported: four workflows of ok (3 acme + 1 untenanted) and two of bad.
    expect(report.workflows.map((w) => [w.name, w.started])).toEqual([
      ['bad', 2],
      ['ok', 4],
    ]);

    const text = captureIo();
    expect(await runCli(['report', '--db', db], text.io)).toBe(EXIT.ok);
    expect(text.stdout()).toContain('TENANTS (by cost)');
    expect(text.stdout()).toMatch(/globex +2 +\d+ +\$[\d.]+ +2 of 2 +100\.0%/);
  });

  it("--tenant acme reports acme's workflows only", async () => {
    const io = captureIo();
    expect(await runCli(['report', '--db', db, '--json', '--tenant', 'acme'], io.io)).toBe(EXIT.ok);
    const report = JSON.parse(io.stdout()) as Report;
    expect(report.settings.tenant).toBe('acme');
    expect(report.workflows.map((w) => [w.name, w.started, w.failed])).toEqual([['ok', 3, 0]]);
    expect(report.tenants.map((t) => t.tenant)).toEqual(['acme']);
    expect(report.cost.summary.calls).toBe(3);
    expect(report.rootCauses.overall.failures).toBe(0);

    const text = captureIo();
    expect(await runCli(['report', '--db', db, '--tenant', 'acme'], text.io)).toBe(EXIT.ok);
    expect(text.stdout()).toContain('TENANT acme');
    expect(text.stdout()).not.toContain('globex');
  });

  it('the HTML report has the same tenant table, and --tenant narrows it to one', async () => {
    const all = renderHtml(await reportOf());
    const section = /<section id="tenants">.*?<\/section>/s.exec(all)?.[0] ?? '';
    expect(section).toContain('Tenants (by cost)');
    expect(section).toMatch(/<td>acme<\/td><td class="num">3<\/td><td class="num">3<\/td>/);
    expect(section).toMatch(
      /<td>globex<\/td><td class="num">2<\/td>.*<td class="num bad">2 of 2<\/td><td class="num">100\.0%<\/td>/,
    );
    const one = renderHtml(await reportOf('acme'));
    expect(one).toContain('<h2>Tenant acme</h2>');
    expect(one).not.toContain('globex');
  });

  it('refuses a malformed --tenant naming the problem', async () => {
    const io = captureIo();
    expect(await runCli(['report', '--db', db, '--tenant', 'bob@example.com'], io.io)).toBe(EXIT.usage);
    expect(io.stderr()).toMatch(/--tenant "bob@example.com" is not a tenant id: .*contains "@"/);
  });
});
