/**
 * A real Prometheus server for tests: started on loopback with a temp data dir, scraping one target
 * every second, stopped (and its dir removed) by `stop()`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface QueryResponse {
  status: 'success' | 'error';
  error?: string;
  data?: { resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] };
}

export const pause = (ms: number): Promise<void> => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (typeof address !== 'object' || address === null) throw new Error('no port');
  return address.port;
}

export interface PrometheusServer {
  query(expr: string): Promise<QueryResponse>;
  /** Polls (bounded: ~30 s) until `expr` has a sample equal to `expected`. */
  until(expr: string, expected: (value: number) => boolean): Promise<void>;
  stop(): Promise<void>;
}

/** Starts Prometheus scraping `target` (`host:port`) every second; resolves once it is ready. */
export async function startPrometheus(target: string): Promise<PrometheusServer> {
  const dir = mkdtempSync(join(tmpdir(), 'keel-prometheus-'));
  const port = await freePort();
  const config = join(dir, 'prometheus.yml');
  writeFileSync(
    config,
    [
      'global:',
      '  scrape_interval: 1s',
      '  scrape_timeout: 1s',
      '  evaluation_interval: 1s',
      'scrape_configs:',
      '  - job_name: keel',
      '    static_configs:',
      `      - targets: ['${target}']`,
      '',
    ].join('\n'),
  );
  let log = '';
  const child: ChildProcess = spawn(
    'prometheus',
    [
      `--config.file=${config}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  child.stderr?.on('data', (chunk: Buffer) => {
    log += chunk.toString();
  });
  const url = `http://127.0.0.1:${port}`;
  const stop = async (): Promise<void> => {
    if (child.exitCode === null) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      await Promise.race([exited, pause(10_000)]);
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    rmSync(dir, { recursive: true, force: true });
  };
  for (let attempt = 0; ; attempt++) {
    const ready = await fetch(`${url}/-/ready`).then(
      (r) => r.ok,
      () => false,
    );
    if (ready) break;
    if (attempt >= 150 || child.exitCode !== null) {
      await stop();
      throw new Error(`Prometheus did not become ready. Its log:\n${log}`);
    }
    await pause(200);
  }
  const query = async (expr: string): Promise<QueryResponse> => {
    const res = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(expr)}`);
    return (await res.json()) as QueryResponse;
  };
  return {
    query,
    async until(expr, expected) {
      let last: unknown;
      for (let attempt = 0; attempt < 150; attempt++) {
        const r = await query(expr).catch((e: unknown) => {
          last = e;
          return undefined;
        });
        if (r) last = r;
        const value = r?.data?.result[0]?.value[1];
        if (value !== undefined && expected(Number(value))) return;
        await pause(200);
      }
      const up = await query('up').catch(() => undefined);
      throw new Error(
        `Prometheus never saw the expected value of ${expr} (last answer ${JSON.stringify(last)}, up ${JSON.stringify(up?.data)}). Its log:\n${log}`,
      );
    },
    stop,
  };
}
