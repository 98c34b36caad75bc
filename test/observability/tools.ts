/**
 * The real Prometheus tools the observability tests run. Absent tools skip those tests locally
 * (with a message saying how to install them) but fail them in CI, where `.ci/run` installs them.
 */
import { spawnSync } from 'node:child_process';
import type { Registry } from 'prom-client';

/** True when `command --version` runs. */
function installed(command: string): boolean {
  const result = spawnSync(command, ['--version'], { stdio: 'ignore' });
  return result.error === undefined && result.status === 0;
}

/** Whether the tests that need `tools` should run; logs why when they are skipped. */
export function toolsAvailable(...tools: string[]): { run: boolean; missing: string[] } {
  const missing = tools.filter((t) => !installed(t));
  const inCi = process.env.CI !== undefined && process.env.CI !== '' && process.env.CI !== 'false';
  if (missing.length > 0 && !inCi)
    console.warn(
      `[observability] skipping tests that need ${missing.join(', ')}: not installed ` +
        '(apt-get install prometheus). In CI (CI set) these tests fail instead.',
    );
  return { run: missing.length === 0 || inCi, missing };
}

/** Fails with a clear message when a required tool is missing (in CI). */
export function assertInstalled(missing: readonly string[]): void {
  if (missing.length > 0)
    throw new Error(`${missing.join(', ')} not found on PATH; install them with: apt-get install prometheus`);
}

/** The value of one sample, matching `labels` exactly (for histograms pass `sample`, e.g. `x_count`). */
export async function sampleValue(
  registry: Registry,
  name: string,
  labels: Record<string, string> = {},
  sample = name,
): Promise<number | undefined> {
  const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === name);
  const wanted = Object.entries(labels);
  const found = metric?.values.find((v) => {
    const metricName = (v as { metricName?: string }).metricName ?? name;
    const have = v.labels as Record<string, string | number | undefined>;
    return (
      metricName === sample &&
      Object.keys(have).length === wanted.length &&
      wanted.every(([k, x]) => String(have[k]) === x)
    );
  });
  return found?.value;
}
