/** Reads `dashboards/keel.json`, the Grafana dashboard the Prometheus test checks query by query. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The parts of a Grafana dashboard the tests read. */
export interface Dashboard {
  schemaVersion: number;
  title: string;
  uid: string;
  __inputs: { name: string; type: string; pluginId: string }[];
  panels: Panel[];
  templating: { list: { name: string; type: string; query?: string }[] };
}

/** A dashboard panel (rows have no targets). */
export interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { type: string; uid: string };
  gridPos: { h: number; w: number; x: number; y: number };
  targets?: { refId: string; expr: string; datasource?: { type: string; uid: string } }[];
}

/** The dashboard as committed. */
export function loadDashboard(): Dashboard {
  const path = fileURLToPath(new URL('../../dashboards/keel.json', import.meta.url));
  return JSON.parse(readFileSync(path, 'utf8')) as Dashboard;
}

/**
 * Every PromQL expression of the dashboard, with the panel it belongs to, as Grafana sends it with
 * the dashboard's `prefix` variable set to `prefix` (the runtime's `metrics.prefix`).
 */
export function dashboardQueries(
  dashboard = loadDashboard(),
  prefix = '',
): { panel: string; expr: string }[] {
  return dashboard.panels.flatMap((p) =>
    (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr.replaceAll('${prefix}', prefix) })),
  );
}
