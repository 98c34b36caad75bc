/**
 * `formatReport()`: a {@link Report} as terminal text — aligned tables with units, in the
 * tutorial's words ("P95 8.2 s vs SLA 10 s ✓", "- OCR errors: 45 (62%) ← PRIMARY ROOT CAUSE", the
 * daily cost dashboard). Colour only when asked (a TTY); text from the log is stripped of control
 * characters so a hostile name cannot drive the terminal.
 */
import { formatCostDashboard } from '../cost/dashboard.js';
import {
  BREAKER_LABELS,
  count,
  duration,
  pct0,
  pct1,
  span,
  timeFormat,
  usd,
  type TimeFormat,
} from './format.js';
import type { Report } from './report.js';

/** Options of {@link formatReport}. */
export interface FormatReportOptions {
  /** ANSI colours and bold headings (default false: plain text for files and pipes). */
  color?: boolean;
  /** Most alerts listed (default 20, newest; the JSON output has them all). */
  maxAlerts?: number;
  /** Most breaker transitions listed per breaker (default 10, newest). */
  maxTransitions?: number;
}

type Paint = (text: string) => string;
interface Style {
  head: Paint;
  good: Paint;
  bad: Paint;
  dim: Paint;
}

const plain: Paint = (t) => t;
const ansi =
  (code: string): Paint =>
  (t) =>
    `\u001b[${code}m${t}\u001b[0m`;
const PLAIN: Style = { head: plain, good: plain, bad: plain, dim: plain };
const COLOUR: Style = { head: ansi('1'), good: ansi('32'), bad: ansi('31'), dim: ansi('2') };

/** C0 and C1 control characters, DEL, and the Unicode line and paragraph separators. */
function isControl(code: number): boolean {
  return code < 0x20 || (code >= 0x7f && code <= 0x9f) || code === 0x2028 || code === 0x2029;
}

/**
 * Text from the log with control characters and line breaks replaced, so one value stays on one
 * line and cannot emit escape sequences.
 */
function clean(text: string): string {
  let i = 0;
  while (i < text.length && !isControl(text.charCodeAt(i))) i++;
  if (i === text.length) return text;
  let out = text.slice(0, i);
  for (; i < text.length; i++) {
    const code = text.charCodeAt(i);
    out += isControl(code) ? '\ufffd' : text[i];
  }
  return out;
}

/** Visible width of plain text (code points; ANSI codes are added after padding). */
const width = (s: string): number => [...s].length;

/**
 * Aligned columns: `align` has one letter per column, `l` or `r`. Cells are plain text; `paint`
 * may colour a cell after it is padded.
 */
function table(
  head: readonly string[],
  rows: readonly (readonly string[])[],
  align: string,
  style: Style,
  paint?: (row: number, col: number, padded: string) => string,
): string[] {
  const widths = head.map((h, c) => Math.max(width(h), ...rows.map((r) => width(r[c] ?? ''))));
  const pad = (cell: string, c: number): string => {
    const fill = ' '.repeat(Math.max(0, (widths[c] ?? 0) - width(cell)));
    return align[c] === 'r' ? fill + cell : cell + fill;
  };
  const out = [`  ${style.dim(head.map(pad).join('  ').trimEnd())}`];
  rows.forEach((r, i) => {
    const cells = r.map((cell, c) => {
      const padded = pad(cell, c);
      return paint ? paint(i, c, padded) : padded;
    });
    out.push(`  ${cells.join('  ').trimEnd()}`);
  });
  return out;
}

/**
 * Renders the report as text, one section per concern: workflows, latency vs SLA, cost vs budget,
 * error rates vs targets, alerts, root causes, breakers, votes and cascades, tool calls and time to
 * first token.
 *
 * @example
 * const report = buildReport(store.iterate(), { slaP95Ms: 10_000, budgetUsd: 100 });
 * process.stdout.write(formatReport(report, { color: process.stdout.isTTY }));
 */
export function formatReport(report: Report, options: FormatReportOptions = {}): string {
  const style = options.color ? COLOUR : PLAIN;
  const time = timeFormat(report.settings.timeZone);
  const lines: string[] = [];
  const section = (title: string): void => {
    lines.push('', style.head(title));
  };

  const s = report.span;
  if (s.events === 0 || s.firstTs === undefined || s.lastTs === undefined) {
    lines.push(style.head('Keel report'), 'The log holds no events yet: run a workflow, then report again.');
    return `${lines.join('\n')}\n`;
  }
  lines.push(
    `${style.head('Keel report')} · ${count(s.events)} events (seq ${s.firstSeq ?? '?'}–${s.lastSeq ?? '?'}) · ` +
      `${time(s.firstTs)} → ${time(s.lastTs)} ${report.settings.timeZone} (${span(s.lastTs - s.firstTs)})`,
  );

  workflows(report, lines, section, style);
  latency(report, lines, section, style);
  cost(report, lines, section, style);
  errors(report, lines, section, style);
  tenants(report, lines, section, style);
  alerts(report, lines, section, style, time, options.maxAlerts ?? 20);
  rootCauses(report, lines, section, style);
  breakers(report, lines, section, style, time, options.maxTransitions ?? 10);
  votesAndCascades(report, lines, section);
  tools(report, lines, section, style);
  limits(report, lines, section, style);
  return `${lines.join('\n')}\n`;
}

type Section = (title: string) => void;

function workflows(report: Report, lines: string[], section: Section, style: Style): void {
  section('WORKFLOWS');
  if (report.workflows.length === 0) {
    lines.push('  No workflows in the log.');
    return;
  }
  const rows = report.workflows.map((w) => [
    clean(w.name),
    count(w.started),
    count(w.completed),
    count(w.failed),
    count(w.cancelled),
    count(w.interrupted),
    count(w.running),
    count(w.waiting),
    count(w.resumed),
  ]);
  lines.push(
    ...table(
      ['name', 'started', 'completed', 'failed', 'cancelled', 'interrupted', 'running', 'waiting', 'resumed'],
      rows,
      'lrrrrrrrr',
      style,
      (_r, c, cell) => (c === 3 && cell.trim() !== '0' ? style.bad(cell) : cell),
    ),
  );
}

function latency(report: Report, lines: string[], section: Section, style: Style): void {
  const sla = report.latency.slaP95Ms;
  section(`LATENCY (SLA: P95 ≤ ${duration(sla)})`);
  const groups = [
    ['workflow', report.latency.workflows],
    ['agent', report.latency.agents],
  ] as const;
  let any = false;
  for (const [label, list] of groups) {
    if (list.length === 0) continue;
    any = true;
    const rows = list.map((l) => [
      clean(l.name),
      count(l.count),
      duration(l.p50Ms),
      duration(l.p90Ms),
      duration(l.p95Ms),
      duration(l.p99Ms),
      duration(l.maxMs),
      pct1(l.slaCompliance),
      `P95 ${duration(l.p95Ms)} vs SLA ${duration(sla)} ${l.meetsSla ? '✓' : '✗'}${l.alerting ? ' (alerting)' : ''}`,
    ]);
    lines.push(
      ...table(
        [label, 'count', 'P50', 'P90', 'P95', 'P99', 'max', '≤ SLA', ''],
        rows,
        'lrrrrrrrl',
        style,
        (r, c, cell) => (c === 8 ? (list[r]?.meetsSla ? style.good(cell) : style.bad(cell)) : cell),
      ),
    );
    if (label === 'workflow') lines.push('');
  }
  if (!any) lines.push('  No latencies in the log.');
  if (lines[lines.length - 1] === '') lines.pop();
}

function cost(report: Report, lines: string[], section: Section, style: Style): void {
  const c = report.cost;
  section(`COST${c.budgetUsd !== undefined ? ` (budget ${usd(c.budgetUsd)}/day)` : ''}`);
  const oneDay = c.days.length === 1 ? c.days[0]?.day : undefined;
  const summary = oneDay !== undefined ? { ...c.summary, day: oneDay } : c.summary;
  const dashboard = formatCostDashboard(summary, {
    ...(oneDay !== undefined && c.budgetUsd !== undefined ? { budgetUsd: c.budgetUsd } : {}),
    alertAt: report.settings.budgetAlertAt,
  });
  for (const line of dashboard) lines.push(`  ${clean(line)}`);
  if (c.summary.calls > 0) {
    const s = c.summary.savings.bySource;
    lines.push(
      `  - Estimated ${usd(c.summary.estimatedUsd)} vs actual ${usd(c.summary.actualUsd)}; ` +
        `saved by cache ${count(s.cache.events)}×, votes ${count(s.vote.events)}×, cascades ${count(s.cascade.events)}×`,
    );
  }
  if (c.days.length === 0) return;
  lines.push('');
  const models = c.models.slice(0, 6);
  const rows = c.days.map((d) => {
    const byModel = new Map(d.byModel.map((m) => [m.model, m.usd]));
    return [
      d.day,
      usd(d.usd),
      d.budgetRatio === undefined ? '–' : pct0(d.budgetRatio),
      ...models.map((m) => usd(byModel.get(m) ?? 0)),
      usd(d.savedUsd),
    ];
  });
  const head = ['day', 'spend', 'of budget', ...models.map(clean), 'saved'];
  const alertAt = report.settings.budgetAlertAt;
  lines.push(
    ...table(head, rows, `lrr${'r'.repeat(models.length)}r`, style, (r, col, cell) => {
      const ratio = c.days[r]?.budgetRatio;
      return col === 2 && ratio !== undefined && ratio >= alertAt ? style.bad(cell) : cell;
    }),
  );
}

function errors(report: Report, lines: string[], section: Section, style: Style): void {
  section(`ERROR RATES (window: last ${count(report.settings.errorWindowSize)} tasks per task type)`);
  const list = report.errors.taskTypes;
  if (list.length === 0) {
    lines.push('  No agent outcomes in the log.');
    return;
  }
  const rows = list.map((t) => [
    clean(t.taskType),
    count(t.outcomes),
    count(t.failures),
    pct1(t.errorRate),
    t.target === undefined ? '–' : `${pct1(t.target)} ${t.meetsTarget ? '✓' : '✗'}`,
    `${pct1(t.window.errorRate)} of ${count(t.window.samples)}${t.window.alerting ? ' (alerting)' : ''}`,
  ]);
  lines.push(
    ...table(
      ['task type', 'outcomes', 'failures', 'rate', 'target', 'window now'],
      rows,
      'lrrrrl',
      style,
      (r, c, cell) => {
        const t = list[r];
        if (c === 4 && t?.meetsTarget !== undefined)
          return t.meetsTarget ? style.good(cell) : style.bad(cell);
        if (c === 5 && t?.window.alerting) return style.bad(cell);
        return cell;
      },
    ),
  );
}

/** Per-tenant table (only when the log has tenant workflows). */
function tenants(report: Report, lines: string[], section: Section, style: Style): void {
  // Older report JSON has no tenant table.
  const rows = (report.tenants as Report['tenants'] | undefined) ?? [];
  if (rows.length === 0) return;
  section(
    report.settings.tenant !== undefined ? `TENANT ${clean(report.settings.tenant)}` : 'TENANTS (by cost)',
  );
  lines.push(
    ...table(
      ['tenant', 'workflows', 'calls', 'cost', 'errors', 'error rate', 'P95 latency'],
      rows.map((t) => [
        clean(t.tenant),
        count(t.workflows),
        count(t.calls),
        usd(t.costUsd),
        `${count(t.errors)} of ${count(t.outcomes)}`,
        pct1(t.errorRate),
        t.p95LatencyMs === 0 ? '–' : duration(t.p95LatencyMs),
      ]),
      'lrrrrrr',
      style,
    ),
  );
}

function alerts(
  report: Report,
  lines: string[],
  section: Section,
  style: Style,
  time: TimeFormat,
  max: number,
): void {
  const a = report.alerts;
  section(`ALERTS (${count(a.raised)} raised, ${count(a.resolved)} resolved)`);
  if (a.items.length === 0) {
    lines.push('  None.');
    return;
  }
  const shown = a.items.slice(-max);
  if (shown.length < a.raised + a.resolved) {
    lines.push(
      style.dim(
        `  newest ${shown.length} of ${count(a.raised + a.resolved)} (--json lists ${a.items.length})`,
      ),
    );
  }
  const rows = shown.map((i) => [
    time(i.ts),
    i.status === 'resolved' ? 'resolved' : i.severity,
    i.kind,
    `${clean(i.title)}${i.source === 'report' ? ' [not in log: report settings]' : ''}`,
  ]);
  lines.push(
    ...table(['time', 'severity', 'kind', 'alert'], rows, 'llll', style, (r, c, cell) => {
      const sev = shown[r]?.severity;
      return c === 1 && (sev === 'critical' || sev === 'high') && shown[r]?.status === 'firing'
        ? style.bad(cell)
        : cell;
    }),
  );
}

function rootCauses(report: Report, lines: string[], section: Section, style: Style): void {
  section('ROOT CAUSES');
  for (const line of report.rootCauses.text.split('\n')) {
    const text = clean(line);
    lines.push(text === '' ? '' : `  ${text.includes('PRIMARY ROOT CAUSE') ? style.bad(text) : text}`);
  }
}

function breakers(
  report: Report,
  lines: string[],
  section: Section,
  style: Style,
  time: TimeFormat,
  max: number,
): void {
  section('CIRCUIT BREAKERS');
  if (report.breakers.length === 0) {
    lines.push('  No breaker changed state.');
    return;
  }
  for (const b of report.breakers) {
    const state = BREAKER_LABELS[b.state];
    const paint = b.state === 'closed' ? style.good : style.bad;
    lines.push(
      `  ${clean(b.name)}: ${paint(state)} now · opened ${count(b.opened)}× · open ${span(b.openMs)}, half-open ${span(b.halfOpenMs)} · ${count(b.transitionCount)} transitions`,
    );
    const shown = b.transitions.slice(-max);
    const rows = shown.map((t) => [
      time(t.ts),
      `${BREAKER_LABELS[t.from]} → ${BREAKER_LABELS[t.to]}`,
      `${clean(t.reason)}${t.to === 'open' ? ` (${count(t.failures)} failures)` : ''}`,
    ]);
    lines.push(...table(['time', 'change', 'reason'], rows, 'lll', style).map((l) => `  ${l}`));
  }
}

function votesAndCascades(report: Report, lines: string[], section: Section): void {
  section('VOTES');
  if (report.votes.length === 0) lines.push('  No votes in the log.');
  for (const v of report.votes) {
    lines.push(
      `  ${clean(v.path)}: ${count(v.decided)} decided · ${v.voters} voters · ${v.meanAgentsUsed.toFixed(1)} agents on average · ` +
        `early stop ${pct0(v.earlyStopShare)} (${count(v.skippedAgents)} calls skipped) · saved ${usd(v.savedUsd)}`,
    );
    lines.push(`    agents used: ${v.agentsUsed.map((u) => `${u.agents} × ${count(u.count)}`).join(' · ')}`);
  }
  section('CASCADES');
  if (report.cascades.length === 0) lines.push('  No cascades in the log.');
  for (const c of report.cascades) {
    const stages = c.stages
      .map((s) => `stage ${s.stage} ${clean(s.agent)} ${pct0(s.share)} (${count(s.answered)})`)
      .join(' · ');
    lines.push(
      `  ${clean(c.path)}: ${count(c.answered)} answered · ${stages} · ${count(c.escalations)} escalations · saved ${usd(c.savedUsd)}`,
    );
  }
}

function tools(report: Report, lines: string[], section: Section, style: Style): void {
  const { calls, ttft } = report.tools;
  section('TOOLS');
  if (calls.length === 0) lines.push('  No tool calls in the log.');
  else
    lines.push(
      ...table(
        ['agent', 'tool', 'calls', 'failed', 'failure rate', 'P95'],
        calls.map((t) => [
          clean(t.agent),
          clean(t.tool),
          count(t.calls),
          count(t.failures),
          pct1(t.failureRate),
          duration(t.p95LatencyMs),
        ]),
        'llrrrr',
        style,
        (r, c, cell) => (c === 3 && (calls[r]?.failures ?? 0) > 0 ? style.bad(cell) : cell),
      ),
    );
  section('TIME TO FIRST TOKEN');
  if (ttft.length === 0) lines.push('  No streamed model calls in the log.');
  else
    lines.push(
      ...table(
        ['agent', 'count', 'P50', 'P95'],
        ttft.map((t) => [clean(t.agent), count(t.count), duration(t.p50Ms), duration(t.p95Ms)]),
        'lrrr',
        style,
      ),
    );
}

/** Reasons and their counts, e.g. `queue_timeout 12, queue_full 3`. */
function reasons(by: Record<string, number>): string {
  return Object.entries(by)
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
    .map(([reason, n]) => `${clean(reason)} ${count(n)}`)
    .join(', ');
}

/** Rate limits and bulkheads; printed only when the log has a wait, a shed or a rejection. */
function limits(report: Report, lines: string[], section: Section, style: Style): void {
  const { rateLimits, bulkheads } = report.limits;
  if (rateLimits.length > 0) {
    section('RATE LIMITS');
    lines.push(
      ...table(
        ['key', 'waited', 'P95 wait', 'max wait', 'shed', 'why shed'],
        rateLimits.map((r) => [
          clean(r.key),
          count(r.waited),
          duration(r.p95WaitMs),
          duration(r.maxWaitMs),
          count(r.shed),
          reasons(r.shedBy),
        ]),
        'lrrrrl',
        style,
        (r, c, cell) => (c === 4 && (rateLimits[r]?.shed ?? 0) > 0 ? style.bad(cell) : cell),
      ),
    );
  }
  if (bulkheads.length > 0) {
    section('BULKHEADS');
    lines.push(
      ...table(
        ['agent', 'rejected', 'why'],
        bulkheads.map((b) => [clean(b.agent), count(b.rejected), reasons(b.rejectedBy)]),
        'lrl',
        style,
        (_r, c, cell) => (c === 1 ? style.bad(cell) : cell),
      ),
    );
  }
}
