/**
 * `keel report`: the whole runtime's story — workflows, latency vs SLA, cost vs budget, error rates
 * vs targets, alerts, breakers, votes, cascades, tool calls, time to first token and root causes — rebuilt from the event log in one
 * pass, printed as terminal tables or as one self-contained HTML file. `createReportFold` and
 * `foldEvents` stream it from any store, Postgres's asynchronous `iterate()` included.
 */
export { buildReport, createReportFold } from './build.js';
export type { ReportFold } from './build.js';
export { foldEvents } from '../eventlog/fold.js';
export type { EventFold } from '../eventlog/fold.js';
export { formatReport } from './terminal.js';
export type { FormatReportOptions } from './terminal.js';
export { renderHtml } from './html.js';
export type { RenderHtmlOptions } from './html.js';
export type * from './report.js';
