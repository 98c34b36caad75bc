import { describe, expect, it } from 'vitest';
import { buildReport } from '../../src/report/build.js';
import { renderHtml } from '../../src/report/html.js';
import { formatReport } from '../../src/report/terminal.js';
import { Log } from './events.js';

const T0 = Date.UTC(2026, 0, 1, 9);

/** Tool calls and first tokens of a support agent and an agent with a hostile name. */
function toolLog(): Log {
  const log = new Log();
  log.workflow('wf-1', 'support', T0, 5_000);
  const call = (i: number, tool: string, agent: string, latencyMs: number, failed: boolean): void => {
    const base = { path: `support/${agent}`, agent, tool, callId: `c${i}`, step: 1 };
    if (failed)
      log.add(
        'tool.failed',
        { ...base, category: 'provider_error', message: 'Error: down', latencyMs, attempts: 3 },
        T0 + i,
        'wf-1',
      );
    else log.add('tool.succeeded', { ...base, result: {}, latencyMs, attempts: 1 }, T0 + i, 'wf-1');
  };
  // lookup_order: 100 calls of 1..100 ms, every tenth one failing.
  for (let i = 1; i <= 100; i++) call(i, 'lookup_order', 'support', i, i % 10 === 0);
  // refund: 4 calls, 3 failing; one reports no usable latency (still a call, no latency sample).
  call(101, 'refund', 'support', 2_000, true);
  call(102, 'refund', 'support', 3_000, true);
  call(103, 'refund', 'support', Number.NaN, true);
  call(104, 'refund', 'support', 1_000, false);
  call(105, 'x', 'evil\u001b[31m\nagent', 5, false);
  for (let i = 1; i <= 20; i++)
    log.add(
      'agent.first_token',
      { path: 'support/support', agent: 'support', model: 'gpt-4o', attempt: 1, ttftMs: i * 10 },
      T0 + 200 + i,
      'wf-1',
    );
  return log;
}

describe('keel report: tools and time to first token', () => {
  it('counts tool calls, failure rate and P95 latency per agent and tool, and TTFT percentiles', () => {
    const report = buildReport(toolLog().events);
    expect(report.tools.calls.map((t) => [t.agent, t.tool, t.calls, t.failures])).toEqual([
      ['evil\u001b[31m\nagent', 'x', 1, 0],
      ['support', 'lookup_order', 100, 10],
      ['support', 'refund', 4, 3],
    ]);
    const [, lookup, refund] = report.tools.calls;
    expect(lookup!.failureRate).toBeCloseTo(0.1, 10);
    expect(lookup!.p95LatencyMs).toBe(95);
    expect(refund!.failureRate).toBe(0.75);
    expect(refund!.p95LatencyMs).toBeGreaterThanOrEqual(3_000);
    expect(refund!.p95LatencyMs).toBeLessThan(3_004); // HDR precision: 3 significant digits
    expect(report.tools.ttft).toEqual([{ agent: 'support', count: 20, p50Ms: 100, p95Ms: 190 }]);
    // The report stays plain JSON.
    expect(JSON.parse(JSON.stringify(report.tools))).toEqual(report.tools);
  });

  it('prints the tables in the terminal and the HTML, hostile names defused', () => {
    const report = buildReport(toolLog().events);
    const text = formatReport(report);
    const tools = text.slice(text.indexOf('\nTOOLS'));
    expect(tools).toMatch(/support\s+lookup_order\s+100\s+10\s+10\.0\s?%\s+95 ms/);
    expect(tools).toMatch(/support\s+refund\s+4\s+3\s+75\.0\s?%/);
    expect(tools).toMatch(/TIME TO FIRST TOKEN\n.*\n\s+support\s+20\s+100 ms\s+190 ms/);
    expect(text).not.toContain('\u001b');
    const html = renderHtml(report);
    expect(html).toContain('<section id="tools">');
    expect(html).toContain('<td>lookup_order</td>');
    expect(html).not.toContain('\u001b[31m');

    const empty = formatReport(buildReport(new Log().events.concat(toolLog().events.slice(0, 2))));
    expect(empty).toContain('No tool calls in the log.');
    expect(empty).toContain('No streamed model calls in the log.');
  });
});
