import { describe, expect, it } from 'vitest';
import { createMetrics } from '../../src/observability/metrics.js';
import { dashboardQueries, loadDashboard } from './dashboard.js';

describe('dashboards/keel.json', () => {
  const dashboard = loadDashboard();
  const panels = dashboard.panels.filter((p) => p.type !== 'row');

  it('is an importable dashboard with a ${DS_PROMETHEUS} datasource input', () => {
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
    expect(dashboard.uid).toBe('keel-overview');
    expect(dashboard.__inputs).toContainEqual(
      expect.objectContaining({ name: 'DS_PROMETHEUS', type: 'datasource', pluginId: 'prometheus' }),
    );
    for (const panel of panels) {
      expect(panel.datasource, panel.title).toEqual({ type: 'prometheus', uid: '${DS_PROMETHEUS}' });
      for (const target of panel.targets ?? [])
        expect(target.datasource?.uid, panel.title).toBe('${DS_PROMETHEUS}');
    }
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('has the panels the seed checklist asks for', () => {
    const titles = panels.map((p) => p.title);
    for (const wanted of [
      /spend vs budget/i,
      /P50 \/ P95 \/ P99 vs SLA/,
      /error rate vs target, per task type/i,
      /error budget remaining/i,
      /circuit breakers/i,
      /cache hit ratio/i,
      /vote agents used/i,
      /cascade escalation rate/i,
      /alerts/i,
    ])
      expect(
        titles.some((t) => wanted.test(t)),
        String(wanted),
      ).toBe(true);
    const latency = panels.find((p) => /vs SLA/.test(p.title));
    const exprs = (latency?.targets ?? []).map((t) => t.expr).join('\n');
    for (const q of ['0.50', '0.95', '0.99']) expect(exprs).toContain(`histogram_quantile(${q},`);
    expect(exprs).toContain('latency_sla_p95_seconds');
  });

  it('takes the metric prefix as a variable: every metric it queries is written ${prefix}name', () => {
    expect(dashboard.templating.list).toContainEqual(
      expect.objectContaining({ name: 'prefix', type: 'textbox', query: '' }),
    );
    for (const { panel, expr } of dashboardQueries(dashboard, 'PREFIXED_')) {
      const bare = expr.replace(/\bby\s*\([^)]*\)/g, '').replace(/\{[^}]*\}/g, '');
      const selectors = [...bare.matchAll(/\b([A-Za-z][A-Za-z0-9_]*)\s*(?=[[)/]|\s*$)/g)].map((m) => m[1]!);
      expect(selectors.length, `${panel}: ${expr}`).toBeGreaterThan(0);
      for (const s of selectors) expect(s, `${panel}: ${expr}`).toMatch(/^PREFIXED_/);
    }
  });

  it.each(['', 'keel_'])('queries only metrics that createMetrics exports (prefix %j)', (prefix) => {
    const registry = createMetrics({ slaP95Ms: 10_000, prefix }).registry;
    const names = new Set(
      registry.getMetricsAsArray().flatMap((m) => {
        const { name } = m as unknown as { name: string };
        return [name, `${name}_bucket`, `${name}_sum`, `${name}_count`];
      }),
    );
    const queries = dashboardQueries(dashboard, prefix);
    expect(queries.length).toBeGreaterThanOrEqual(15);
    const promqlWords = new Set(['sum', 'max', 'min', 'rate', 'increase', 'histogram_quantile']);
    for (const { panel, expr } of queries) {
      const withoutGrouping = expr.replace(/\bby\s*\([^)]*\)/g, '');
      const selectors = [...withoutGrouping.matchAll(/\b([a-z][a-z0-9_]*)\s*(?=[{[)])/g)].map((m) => m[1]!);
      const metricsUsed = selectors.filter((w) => !promqlWords.has(w));
      expect(metricsUsed.length, `${panel}: ${expr}`).toBeGreaterThan(0);
      for (const metric of metricsUsed) expect(names.has(metric), `${panel}: ${metric}`).toBe(true);
    }
  });
});
