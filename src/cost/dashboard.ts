/**
 * The tutorial's "Daily Cost Dashboard" as text lines, printed from a {@link CostSummary}
 * (`keel report`, demos, logs).
 */
import type { CostSummary } from './tracker.js';

/** Options of {@link formatCostDashboard}. */
export interface DashboardOptions {
  /** Daily budget to compare the total with, USD (omit to show spend only). */
  budgetUsd?: number;
  /** Fraction of the budget from which the total is flagged `(ALERT!)` (default 0.8). */
  alertAt?: number;
}

const count = (n: number): string => n.toLocaleString('en-US');
/** Money with cents and thousands separators: `$1,234.50`. */
const money = (usd: number): string =>
  `$${usd.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;
/** A per-call price with as many decimals as it needs (2–4): `$0.03`, `$0.002`, `$0.0315`. */
const unitPrice = (usd: number): string => {
  const fixed = usd.toFixed(4).replace(/0+$/, '');
  const [whole = '0', frac = ''] = fixed.split('.');
  return `$${whole}.${frac.padEnd(2, '0')}`;
};
const pct = (p: number): string => `${Math.round(p)}%`;

/**
 * Renders the dashboard, one line per item:
 *
 * ```
 * Daily Cost Dashboard (2026-01-15, UTC)
 * - Total spend: $142.50 / $100.00 budget (ALERT!)
 * - gpt-4 calls: 3,200 × $0.03 = $96.00 (67%)
 * - Top expensive workflow: fraud_voting ($68.00/day)
 * - Savings: $540.00 (cache $540.00, votes $0.00, cascades $0.00); without them $900.00 (60% less)
 * ```
 *
 * @example
 * const lines = formatCostDashboard(tracker.summary({ day: '2026-01-15' }), { budgetUsd: 100 });
 * console.log(lines.join('\n'));
 */
export function formatCostDashboard(summary: CostSummary, options: DashboardOptions = {}): string[] {
  const perDay = summary.day !== undefined;
  const lines = [
    perDay
      ? `Daily Cost Dashboard (${summary.day}, ${summary.timeZone})`
      : `Cost Dashboard (all days, ${summary.timeZone})`,
  ];
  let total = `- Total spend: ${money(summary.actualUsd)}`;
  if (options.budgetUsd !== undefined) {
    total += ` / ${money(options.budgetUsd)} budget`;
    if (summary.actualUsd >= options.budgetUsd * (options.alertAt ?? 0.8)) total += ' (ALERT!)';
  }
  lines.push(total);
  for (const m of summary.byModel) {
    lines.push(
      `- ${m.model} calls: ${count(m.calls)} × ${unitPrice(m.avgUsd)} = ${money(m.usd)} (${pct(m.sharePct)})`,
    );
  }
  const top = summary.topWorkflows[0];
  if (top !== undefined) {
    lines.push(`- Top expensive workflow: ${top.name} (${money(top.usd)}${perDay ? '/day' : ''})`);
  }
  const s = summary.savings;
  if (s.totalUsd > 0) {
    lines.push(
      `- Savings: ${money(s.totalUsd)} (cache ${money(s.bySource.cache.usd)}, votes ${money(s.bySource.vote.usd)}, ` +
        `cascades ${money(s.bySource.cascade.usd)}); without them ${money(s.withoutSavingsUsd)} (${pct(s.reductionPct)} less)`,
    );
  }
  return lines;
}
