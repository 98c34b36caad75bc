/**
 * Figures per tenant (`RunOptions.tenant`) — the report's tenant table and the live
 * `rt.stats().tenants`: its workflows, model calls and cost (from the cost tracker), failed agent
 * outcomes and error rate, and workflow P95 latency.
 * Memory is bounded by the number of tenants (at most {@link MAX_TENANTS}; later ones are counted
 * together under {@link OTHER_TENANTS}), never by the number of events.
 */
import type { TenantCost } from '../cost/tracker.js';
import type { KeelEvent } from '../eventlog/events.js';
import { failureCategory, isOutcomeEvent } from '../eventlog/outcome.js';
import { PercentileFold } from './percentiles.js';

/** Most tenants the table lists one by one. */
export const MAX_TENANTS = 1_000;
/** Row of the tenants past {@link MAX_TENANTS}. */
export const OTHER_TENANTS = '(other tenants)';

/** One row of the report's tenant table. */
export interface TenantRow {
  tenant: string;
  /** Workflows of the tenant started in the log. */
  workflows: number;
  /** Model calls that incurred cost (attempts, retries included). */
  calls: number;
  /** Actual cost, USD. */
  costUsd: number;
  /** Agent outcomes (successes, failures, rejections) and the failures among them. */
  outcomes: number;
  errors: number;
  /** `errors / outcomes` (0 with no outcome). */
  errorRate: number;
  /** P95 of the tenant's completed and failed workflows' latency, ms (0 with none). */
  p95LatencyMs: number;
}

interface Line {
  workflows: number;
  outcomes: number;
  errors: number;
  latency: PercentileFold;
}

/** The fold behind the tenant table. */
export class TenantFold {
  private readonly lines = new Map<string, Line>();

  apply(e: KeelEvent): void {
    const tenant = e.payload.tenant;
    if (tenant === undefined) return;
    if (e.type === 'workflow.started') this.line(tenant).workflows++;
    else if (e.type === 'workflow.completed' || e.type === 'workflow.failed')
      this.line(tenant).latency.record(e.payload.latencyMs);
    else if (isOutcomeEvent(e)) {
      const line = this.line(tenant);
      line.outcomes++;
      if (failureCategory(e) !== undefined) line.errors++;
    }
  }

  /** The rows, most expensive first, with calls and cost from the cost tracker's `byTenant`. */
  rows(costs: readonly TenantCost[]): TenantRow[] {
    const cost = new Map<string, { calls: number; usd: number }>();
    for (const c of costs) {
      const key = this.lines.has(c.tenant) ? c.tenant : OTHER_TENANTS;
      const sum = cost.get(key) ?? { calls: 0, usd: 0 };
      sum.calls += c.calls;
      sum.usd += c.usd;
      cost.set(key, sum);
    }
    return [...this.lines]
      .map(([tenant, l]) => ({
        tenant,
        workflows: l.workflows,
        calls: cost.get(tenant)?.calls ?? 0,
        costUsd: cost.get(tenant)?.usd ?? 0,
        outcomes: l.outcomes,
        errors: l.errors,
        errorRate: l.outcomes === 0 ? 0 : l.errors / l.outcomes,
        p95LatencyMs: l.latency.count === 0 ? 0 : l.latency.percentile(95),
      }))
      .sort((a, b) => b.costUsd - a.costUsd || (a.tenant < b.tenant ? -1 : a.tenant > b.tenant ? 1 : 0));
  }

  private line(tenant: string): Line {
    let l = this.lines.get(tenant);
    if (l === undefined) {
      const key = this.lines.size < MAX_TENANTS ? tenant : OTHER_TENANTS;
      l = this.lines.get(key);
      if (l === undefined) {
        l = { workflows: 0, outcomes: 0, errors: 0, latency: new PercentileFold() };
        this.lines.set(key, l);
      }
    }
    return l;
  }
}
