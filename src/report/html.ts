/**
 * `renderHtml()`: a {@link Report} as ONE self-contained HTML file — inline CSS and inline SVG
 * charts, no script, no font, image or stylesheet to fetch, and a Content-Security-Policy that
 * forbids any request, so it opens the same from a laptop, a ticket attachment or an air-gapped
 * audit box. Every string from the log is escaped.
 */
import { formatCostDashboard } from '../cost/dashboard.js';
import {
  breakerChart,
  cascadeChart,
  costChart,
  errorChart,
  latencyChart,
  rcaChart,
  voteChart,
} from './charts.js';
import {
  BREAKER_LABELS,
  CATEGORY_LABELS,
  count,
  duration,
  pct0,
  pct1,
  span,
  timeFormat,
  usd,
  type TimeFormat,
} from './format.js';
import type { LatencyReport, Report } from './report.js';
import { esc } from './svg.js';

/** Options of {@link renderHtml}. */
export interface RenderHtmlOptions {
  /** Page title (default `Keel report`). */
  title?: string;
}

const FULL = 1200;
const HALF = 590;
/** Most charts drawn per list (workflows, agents, task types, votes, cascades); tables list them all. */
const MAX_CHARTS = 8;

const STYLE = `
:root{color-scheme:light}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans","Liberation Sans",Arial,sans-serif;color:#222;background:#f4f5f7}
main{max-width:1240px;margin:0 auto;padding:24px 20px 40px}
h1{font-size:26px;margin:0 0 4px}
h2{font-size:19px;margin:0 0 12px}
h3{font-size:15px;margin:16px 0 6px}
.meta{color:#555;margin:0}
section{background:#fff;border:1px solid #e1e3e6;border-radius:8px;padding:16px 20px;margin:16px 0}
.cards{display:grid;grid-template-columns:repeat(6,1fr);gap:12px;margin-top:16px}
.card{background:#fff;border:1px solid #e1e3e6;border-radius:8px;padding:12px 14px;min-width:0}
.card .l{color:#666;font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.card .v{font-size:21px;font-weight:600;margin:2px 0;overflow-wrap:anywhere}
.card .s{color:#555;font-size:12.5px;overflow-wrap:anywhere}
.ok{color:#2E7D32}.bad{color:#C62828}.muted{color:#666}
.grid{display:grid;grid-template-columns:1fr 1fr;gap:12px 16px}
svg.chart{width:100%;height:auto;display:block;font-size:12px;font-family:inherit;margin:4px 0}
svg.chart text{fill:#222}
svg.chart .chart-title{font-size:14px;font-weight:600}
svg.chart .axis-label{fill:#666}
table{border-collapse:collapse;width:100%;font-size:13px;margin-top:8px}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #eceef0;vertical-align:top;overflow-wrap:anywhere}
th{color:#555;font-weight:600;background:#fafbfc}
.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
ul.dash{margin:8px 0;padding-left:20px}
pre{background:#f6f7f9;border:1px solid #eceef0;border-radius:6px;padding:10px 12px;overflow-x:auto;font-size:12.5px;white-space:pre-wrap}
footer{color:#666;font-size:12px;text-align:center;margin-top:24px}
`;

/** A table cell: text (escaped) with an optional class. */
type Cell = string | { text: string; cls: string };

function table(head: readonly Cell[], rows: readonly (readonly Cell[])[]): string {
  const cell = (tag: 'th' | 'td', c: Cell): string =>
    typeof c === 'string' ? `<${tag}>${esc(c)}</${tag}>` : `<${tag} class="${c.cls}">${esc(c.text)}</${tag}>`;
  return (
    `<table><thead><tr>${head.map((h) => cell('th', h)).join('')}</tr></thead><tbody>` +
    rows.map((r) => `<tr>${r.map((c) => cell('td', c)).join('')}</tr>`).join('') +
    '</tbody></table>'
  );
}

const num = (text: string): Cell => ({ text, cls: 'num' });
const verdict = (ok: boolean | undefined, text: string): Cell =>
  ok === undefined ? text : { text: `${text} ${ok ? '✓' : '✗'}`, cls: ok ? 'ok' : 'bad' };

/** Charts side by side when there is more than one, full width otherwise. */
function charts(list: readonly ((width: number) => string)[]): string {
  if (list.length === 0) return '';
  if (list.length === 1) return (list[0] as (w: number) => string)(FULL);
  return `<div class="grid">${list.map((draw) => draw(HALF)).join('')}</div>`;
}

function card(label: string, value: string, sub: string, cls = ''): string {
  return (
    `<div class="card"><div class="l">${esc(label)}</div>` +
    `<div class="v${cls ? ` ${cls}` : ''}">${esc(value)}</div><div class="s">${esc(sub)}</div></div>`
  );
}

/**
 * Renders the report as a single HTML document (UTF-8 text): header cards, then workflows by
 * status (with the resumed and the waiting, as the terminal report), latency, cost,
 * error rates, alerts, breakers, votes and cascades, tool calls and time to first token, and root
 * causes, each a chart or a table or both.
 *
 * @example
 * const report = buildReport(store.iterate(), { budgetUsd: 100 });
 * writeFileSync('report.html', renderHtml(report));
 */
export function renderHtml(report: Report, options: RenderHtmlOptions = {}): string {
  const title = options.title ?? 'Keel report';
  const time = timeFormat(report.settings.timeZone);
  const body = [
    header(report, title, time),
    workflows(report),
    latency(report),
    cost(report),
    tenants(report),
    errors(report, time),
    alerts(report, time),
    breakers(report, time),
    votes(report),
    tools(report),
    limits(report),
    rootCauses(report),
  ].join('\n');
  const s = report.span;
  return (
    '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">\n' +
    `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">\n` +
    '<meta name="viewport" content="width=device-width, initial-scale=1">\n' +
    `<title>${esc(title)}</title>\n<style>${STYLE}</style></head>\n<body><main>\n${body}\n` +
    `<footer>Rebuilt from the event log alone${s.firstSeq !== undefined ? ` (seq ${s.firstSeq}–${s.lastSeq ?? s.firstSeq})` : ''} by keel report. ` +
    'Self-contained: no scripts, no fonts, no network.</footer>\n</main></body></html>\n'
  );
}

function header(report: Report, title: string, time: TimeFormat): string {
  const s = report.span;
  const set = report.settings;
  const when =
    s.firstTs !== undefined && s.lastTs !== undefined
      ? `${time(s.firstTs)} → ${time(s.lastTs)} ${set.timeZone} (${span(s.lastTs - s.firstTs)})`
      : 'empty log';
  const targets = Object.entries(set.errorTargets)
    .map(([k, v]) => `${k} ${pct1(typeof v === 'number' ? v : v.rate)}`)
    .join(', ');
  const meta =
    `${count(s.events)} events · ${when} · SLA P95 ≤ ${duration(set.slaP95Ms)}` +
    `${set.budgetUsd !== undefined ? ` · budget ${usd(set.budgetUsd)}/day` : ''} · targets: ${targets}`;

  const wf = report.workflows;
  const started = wf.reduce((a, w) => a + w.started, 0);
  const failed = wf.reduce((a, w) => a + w.failed, 0);
  const completed = wf.reduce((a, w) => a + w.completed, 0);
  const interrupted = wf.reduce((a, w) => a + w.interrupted, 0);
  const waiting = wf.reduce((a, w) => a + w.waiting, 0);
  const resumed = wf.reduce((a, w) => a + w.resumed, 0);
  const worst = report.latency.workflows.reduce<LatencyReport | undefined>(
    (w, l) => (w === undefined || l.p95Ms > w.p95Ms ? l : w),
    undefined,
  );
  const c = report.cost;
  const peak = c.days.reduce((m, d) => Math.max(m, d.budgetRatio ?? 0), 0);
  const withTarget = report.errors.taskTypes.filter((t) => t.meetsTarget !== undefined);
  const over = withTarget.filter((t) => t.meetsTarget === false);
  const openNow = report.breakers.filter((b) => b.state !== 'closed');
  const cards = [
    card(
      'Workflows',
      count(started),
      `${count(completed)} completed · ${count(failed)} failed` +
        (interrupted > 0 ? ` · ${count(interrupted)} interrupted` : '') +
        (waiting > 0 ? ` · ${count(waiting)} waiting` : '') +
        (resumed > 0 ? ` · ${count(resumed)} resumed` : ''),
    ),
    worst === undefined
      ? card('Latency', '–', 'no workflow latencies')
      : card(
          'Slowest P95',
          `${duration(worst.p95Ms)} ${worst.meetsSla ? '✓' : '✗'}`,
          `${worst.name} vs SLA ${duration(set.slaP95Ms)}`,
          worst.meetsSla ? 'ok' : 'bad',
        ),
    card(
      'Spend',
      usd(c.summary.actualUsd),
      c.budgetUsd !== undefined
        ? `peak day ${pct0(peak)} of ${usd(c.budgetUsd)}`
        : `saved ${usd(c.summary.savings.totalUsd)}`,
      c.budgetUsd !== undefined && peak >= set.budgetAlertAt ? 'bad' : '',
    ),
    card(
      'Error targets',
      withTarget.length === 0 ? '–' : `${withTarget.length - over.length} of ${withTarget.length} met`,
      over.length > 0 ? `over: ${over.map((t) => t.taskType).join(', ')}` : 'every task type within target',
      over.length > 0 ? 'bad' : withTarget.length > 0 ? 'ok' : '',
    ),
    card(
      'Alerts',
      count(report.alerts.raised),
      `${count(report.alerts.resolved)} resolved`,
      report.alerts.raised > 0 ? 'bad' : '',
    ),
    card(
      'Breakers',
      openNow.length === 0 ? 'all closed' : `${openNow.length} not closed`,
      `${count(report.breakers.reduce((a, b) => a + b.opened, 0))} openings`,
      openNow.length === 0 ? 'ok' : 'bad',
    ),
  ];
  return `<header><h1>${esc(title)}</h1><p class="meta">${esc(meta)}</p><div class="cards">${cards.join('')}</div></header>`;
}

/** Workflows by name and status: the terminal report's WORKFLOWS table. */
function workflows(report: Report): string {
  const wf = report.workflows;
  if (wf.length === 0)
    return '<section id="workflows"><h2>Workflows</h2><p class="muted">No workflows in the log.</p></section>';
  const head = [
    'started',
    'completed',
    'failed',
    'cancelled',
    'interrupted',
    'running',
    'waiting',
    'resumed',
  ];
  const rows = wf.map((w) => [
    w.name,
    num(count(w.started)),
    num(count(w.completed)),
    w.failed > 0 ? { text: count(w.failed), cls: 'num bad' } : num(count(w.failed)),
    num(count(w.cancelled)),
    num(count(w.interrupted)),
    num(count(w.running)),
    num(count(w.waiting)),
    num(count(w.resumed)),
  ]);
  return (
    '<section id="workflows"><h2>Workflows</h2>' +
    '<p class="muted">waiting: of the running, suspended in waitFor until a signal · resumed: continued after a crash, a signal or a timed-out wait</p>' +
    table(['workflow', ...head.map(num)], rows) +
    '</section>'
  );
}

function latencyRows(list: readonly LatencyReport[], sla: number): Cell[][] {
  return list.map((l) => [
    l.name,
    num(count(l.count)),
    num(duration(l.p50Ms)),
    num(duration(l.p90Ms)),
    num(duration(l.p95Ms)),
    num(duration(l.p99Ms)),
    num(duration(l.maxMs)),
    num(pct1(l.slaCompliance)),
    verdict(l.meetsSla, `P95 ${duration(l.p95Ms)} vs SLA ${duration(sla)}${l.alerting ? ' (alerting)' : ''}`),
  ]);
}

function latency(report: Report): string {
  const { slaP95Ms: sla, workflows, agents } = report.latency;
  const slowest = [...agents].sort((a, b) => b.p95Ms - a.p95Ms).slice(0, 4);
  const head = ['count', 'P50', 'P90', 'P95', 'P99', 'max', '≤ SLA'].map(num);
  return (
    `<section id="latency"><h2>Latency vs SLA (P95 ≤ ${esc(duration(sla))})</h2>` +
    (workflows.length === 0 ? '<p class="muted">No workflow latencies in the log.</p>' : '') +
    charts(workflows.slice(0, MAX_CHARTS).map((l) => (w: number) => latencyChart(l, sla, 'workflow', w))) +
    (workflows.length > 0 ? table(['workflow', ...head, 'SLA'], latencyRows(workflows, sla)) : '') +
    (slowest.length > 0 ? '<h3>Agents (the slowest P95 charted)</h3>' : '') +
    charts(slowest.map((l) => (w: number) => latencyChart(l, sla, 'agent', w))) +
    (agents.length > 0 ? table(['agent', ...head, 'SLA'], latencyRows(agents, sla)) : '') +
    '</section>'
  );
}

function cost(report: Report): string {
  const c = report.cost;
  const oneDay = c.days.length === 1 ? c.days[0]?.day : undefined;
  const dashboard = formatCostDashboard(oneDay !== undefined ? { ...c.summary, day: oneDay } : c.summary, {
    ...(oneDay !== undefined && c.budgetUsd !== undefined ? { budgetUsd: c.budgetUsd } : {}),
    alertAt: report.settings.budgetAlertAt,
  });
  const [heading, ...items] = dashboard;
  const s = c.summary.savings;
  const models = table(
    [
      'model',
      num('calls'),
      num('spend'),
      num('avg / call'),
      num('share'),
      num('input tokens'),
      num('output tokens'),
    ],
    c.summary.byModel.map((m) => [
      m.model,
      num(count(m.calls)),
      num(usd(m.usd)),
      num(usd(m.avgUsd)),
      num(pct0(m.sharePct / 100)),
      num(count(m.inputTokens)),
      num(count(m.outputTokens)),
    ]),
  );
  const savings = table(
    ['saved by', num('events'), num('USD')],
    (
      [
        ['cache hits', s.bySource.cache],
        ['early-stopped votes', s.bySource.vote],
        ['cascades answered early', s.bySource.cascade],
      ] as const
    ).map(([label, v]) => [label, num(count(v.events)), num(usd(v.usd))]),
  );
  const days = table(
    ['day', num('calls'), num('spend'), num('of budget'), num('saved')],
    c.days.map((d) => [
      d.day,
      num(count(d.calls)),
      num(usd(d.usd)),
      d.budgetRatio === undefined
        ? num('–')
        : {
            text: pct0(d.budgetRatio),
            cls: `num ${d.budgetRatio >= report.settings.budgetAlertAt ? 'bad' : ''}`,
          },
      num(usd(d.savedUsd)),
    ]),
  );
  return (
    '<section id="cost"><h2>Cost vs budget</h2>' +
    costChart(c, FULL) +
    `<h3>${esc(heading ?? 'Cost Dashboard')}</h3><ul class="dash">${items.map((i) => `<li>${esc(i.replace(/^- /, ''))}</li>`).join('')}</ul>` +
    `<p class="muted">Without caching, early-stopped votes and cascades: ${esc(usd(s.withoutSavingsUsd))} (${esc(pct0(s.reductionPct / 100))} saved). Estimated ${esc(usd(c.summary.estimatedUsd))} vs actual ${esc(usd(c.summary.actualUsd))}.</p>` +
    `<div class="grid"><div>${models}</div><div>${savings}</div></div>` +
    (c.days.length > 1 ? `<h3>By day</h3>${days}` : '') +
    '</section>'
  );
}

function errors(report: Report, time: TimeFormat): string {
  const e = report.errors;
  const list = e.taskTypes;
  return (
    `<section id="errors"><h2>Error rates vs targets</h2>` +
    (list.length === 0 ? '<p class="muted">No agent outcomes in the log.</p>' : '') +
    charts(list.slice(0, MAX_CHARTS).map((t) => (w: number) => errorChart(t, time, w))) +
    (list.length > 0
      ? table(
          [
            'task type',
            num('outcomes'),
            num('failures'),
            num('rate'),
            'target',
            'rolling window now',
            'primary cause',
          ],
          list.map((t) => [
            t.taskType,
            num(count(t.outcomes)),
            num(count(t.failures)),
            num(pct1(t.errorRate)),
            t.target === undefined ? '–' : verdict(t.meetsTarget, pct1(t.target)),
            t.window.alerting
              ? {
                  text: `${pct1(t.window.errorRate)} of last ${count(t.window.samples)} (alerting)`,
                  cls: 'bad',
                }
              : `${pct1(t.window.errorRate)} of last ${count(t.window.samples)}`,
            t.primaryCause === undefined ? '–' : CATEGORY_LABELS[t.primaryCause],
          ]),
        )
      : '') +
    '</section>'
  );
}

function alerts(report: Report, time: TimeFormat): string {
  const a = report.alerts;
  const shown = a.items.length < a.raised + a.resolved ? ` (newest ${a.items.length})` : '';
  return (
    `<section id="alerts"><h2>Alerts: ${esc(count(a.raised))} raised, ${esc(count(a.resolved))} resolved${esc(shown)}</h2>` +
    (a.items.length === 0
      ? '<p class="muted">No alerts.</p>'
      : table(
          ['time', 'severity', 'kind', 'alert', 'source'],
          a.items.map((i) => [
            time(i.ts),
            i.status === 'resolved'
              ? { text: 'resolved', cls: 'ok' }
              : i.severity === 'critical' || i.severity === 'high'
                ? { text: i.severity, cls: 'bad' }
                : i.severity,
            i.kind,
            i.title,
            i.source === 'log' ? 'log' : 'report settings',
          ]),
        )) +
    '</section>'
  );
}

function breakers(report: Report, time: TimeFormat): string {
  const list = report.breakers;
  const s = report.span;
  const rows = list.flatMap((b) =>
    b.transitions
      .slice(-50)
      .map((t) => [
        time(t.ts),
        b.name,
        `${BREAKER_LABELS[t.from]} → ${BREAKER_LABELS[t.to]}`,
        t.reason,
        num(count(t.failures)),
      ]),
  );
  return (
    '<section id="breakers"><h2>Circuit breakers</h2>' +
    (list.length === 0
      ? '<p class="muted">No breaker changed state.</p>'
      : breakerChart(list, s.firstTs ?? 0, s.lastTs ?? 0, time, FULL) +
        table(
          ['breaker', 'now', num('opened'), num('open for'), num('half-open for'), num('transitions')],
          list.map((b) => [
            b.name,
            { text: BREAKER_LABELS[b.state], cls: b.state === 'closed' ? 'ok' : 'bad' },
            num(count(b.opened)),
            num(span(b.openMs)),
            num(span(b.halfOpenMs)),
            num(count(b.transitionCount)),
          ]),
        ) +
        table(['time', 'breaker', 'change', 'reason', num('failures')], rows)) +
    '</section>'
  );
}

function votes(report: Report): string {
  const v = report.votes;
  const c = report.cascades;
  return (
    '<section id="votes"><h2>Votes and cascades</h2>' +
    (v.length === 0 && c.length === 0 ? '<p class="muted">No votes or cascades in the log.</p>' : '') +
    charts([
      ...v.slice(0, MAX_CHARTS).map((x) => (w: number) => voteChart(x, w)),
      ...c.slice(0, MAX_CHARTS).map((x) => (w: number) => cascadeChart(x, w)),
    ]) +
    (v.length > 0
      ? table(
          [
            'vote',
            num('decided'),
            num('voters'),
            num('mean agents'),
            num('early stops'),
            num('calls skipped'),
            num('saved'),
          ],
          v.map((x) => [
            x.path,
            num(count(x.decided)),
            num(count(x.voters)),
            num(x.meanAgentsUsed.toFixed(2)),
            num(`${count(x.earlyStops)} (${pct0(x.earlyStopShare)})`),
            num(count(x.skippedAgents)),
            num(usd(x.savedUsd)),
          ]),
        )
      : '') +
    (c.length > 0
      ? table(
          ['cascade', num('answered'), 'answered by stage', num('escalations'), num('saved')],
          c.map((x) => [
            x.path,
            num(count(x.answered)),
            x.stages.map((s) => `${s.stage} ${s.agent}: ${pct0(s.share)}`).join(' · '),
            num(count(x.escalations)),
            num(usd(x.savedUsd)),
          ]),
        )
      : '') +
    '</section>'
  );
}

function tools(report: Report): string {
  const { calls, ttft } = report.tools;
  return (
    '<section id="tools"><h2>Tool calls and time to first token</h2>' +
    (calls.length === 0 && ttft.length === 0
      ? '<p class="muted">No tool calls or streamed model calls in the log.</p>'
      : '') +
    (calls.length > 0
      ? table(
          ['agent', 'tool', num('calls'), num('failed'), num('failure rate'), num('P95')],
          calls.map((t) => [
            t.agent,
            t.tool,
            num(count(t.calls)),
            t.failures > 0 ? { text: count(t.failures), cls: 'num bad' } : num('0'),
            num(pct1(t.failureRate)),
            num(duration(t.p95LatencyMs)),
          ]),
        )
      : '') +
    (ttft.length > 0
      ? table(
          ['agent', num('streamed calls'), num('TTFT P50'), num('TTFT P95')],
          ttft.map((t) => [t.agent, num(count(t.count)), num(duration(t.p50Ms)), num(duration(t.p95Ms))]),
        )
      : '') +
    '</section>'
  );
}

/** Reasons and their counts, e.g. `queue_timeout 12, queue_full 3`. */
function reasons(by: Record<string, number>): string {
  return Object.entries(by)
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
    .map(([reason, n]) => `${reason} ${count(n)}`)
    .join(', ');
}

/** The terminal report's TENANTS table; empty when no workflow ran for a tenant. */
function tenants(report: Report): string {
  const rows = report.tenants;
  if (rows.length === 0) return '';
  const one = report.settings.tenant;
  return (
    `<section id="tenants"><h2>${one !== undefined ? `Tenant ${esc(one)}` : 'Tenants (by cost)'}</h2>` +
    table(
      [
        'tenant',
        num('workflows'),
        num('calls'),
        num('cost'),
        num('errors'),
        num('error rate'),
        num('P95 latency'),
      ],
      rows.map((t) => [
        t.tenant,
        num(count(t.workflows)),
        num(count(t.calls)),
        num(usd(t.costUsd)),
        t.errors > 0
          ? { text: `${count(t.errors)} of ${count(t.outcomes)}`, cls: 'num bad' }
          : num(`0 of ${count(t.outcomes)}`),
        num(pct1(t.errorRate)),
        num(t.p95LatencyMs === 0 ? '–' : duration(t.p95LatencyMs)),
      ]),
    ) +
    '</section>'
  );
}

/** Rate limits and bulkheads; empty when the log has no wait, shed or rejection. */
function limits(report: Report): string {
  const { rateLimits, bulkheads } = report.limits;
  if (rateLimits.length === 0 && bulkheads.length === 0) return '';
  return (
    '<section id="limits"><h2>Rate limits and bulkheads</h2>' +
    (rateLimits.length > 0
      ? table(
          ['key', num('waited'), num('P95 wait'), num('max wait'), num('shed'), 'why shed'],
          rateLimits.map((r) => [
            r.key,
            num(count(r.waited)),
            num(duration(r.p95WaitMs)),
            num(duration(r.maxWaitMs)),
            r.shed > 0 ? { text: count(r.shed), cls: 'num bad' } : num('0'),
            reasons(r.shedBy),
          ]),
        )
      : '') +
    (bulkheads.length > 0
      ? table(
          ['agent', num('rejected'), 'why'],
          bulkheads.map((b) => [b.agent, { text: count(b.rejected), cls: 'num bad' }, reasons(b.rejectedBy)]),
        )
      : '') +
    '</section>'
  );
}

function rootCauses(report: Report): string {
  const r = report.rootCauses;
  return (
    '<section id="rca"><h2>Root causes</h2>' +
    rcaChart(r.overall, FULL) +
    `<pre>${esc(r.text)}</pre>` +
    '</section>'
  );
}
