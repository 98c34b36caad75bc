import fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { EXIT } from '../../src/cli/io.js';
import { runCli } from '../../src/cli/main.js';
import { captureIo } from './io.js';
import { invoices, openRuntime, recordCascade, runAll, tempDir, triage } from './logs.js';

let tmp: ReturnType<typeof tempDir> | undefined;
let stop: (() => Promise<unknown>) | undefined;
const stops: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  await stop?.();
  stop = undefined;
  for (const s of stops.splice(0)) await s();
  tmp?.cleanup();
  tmp = undefined;
});

/** Starts `keel serve` on 127.0.0.1, port 0; resolves with its URL once it listens. */
async function serve(
  db: string,
  extra: string[] = [],
): Promise<{ url: string; exit: Promise<number>; stderr: () => string }> {
  const controller = new AbortController();
  let listening: (url: string) => void = () => undefined;
  const url = new Promise<string>((resolve) => (listening = resolve));
  const c = captureIo({
    signal: controller.signal,
    onOut: (text) => {
      const m = /serving (http:\/\/127\.0\.0\.1:\d+)\/metrics/.exec(text);
      if (m) listening(m[1] as string);
    },
  });
  const exit = runCli(['serve', '--db', db, '--port', '0', ...extra], c.io);
  stop = () => {
    controller.abort();
    return exit;
  };
  const first = await Promise.race([url, exit.then((code) => `exited ${code}: ${c.stderr()}`)]);
  expect(first).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  return { url: first, exit, stderr: () => c.stderr() };
}

/** A `keel serve` of its own (several run at once): its URL and how to stop it. */
async function serveAlone(db: string, extra: string[] = []) {
  const s = await serve(db, extra);
  const stopIt = stop as () => Promise<unknown>;
  stop = undefined;
  stops.push(stopIt);
  return {
    ...s,
    scrape: async () => (await fetch(`${s.url}/metrics`)).text(),
    stop: async () => {
      stops.splice(stops.indexOf(stopIt), 1);
      await stopIt();
      expect(await s.exit).toBe(EXIT.ok);
    },
  };
}

/** Prometheus's `increase()` over a counter's samples: a drop is a reset, counted from 0. */
function increase(samples: number[]): number {
  let total = 0;
  for (let i = 1; i < samples.length; i++) {
    const [prev, cur] = [samples[i - 1] as number, samples[i] as number];
    total += cur >= prev ? cur - prev : cur;
  }
  return total;
}

function calls(metrics: string, model: string): number {
  const m = new RegExp(
    `^llm_calls_total\\{[^}]*model="${model.replace(/\./g, '\\.')}"[^}]*\\} (\\d+)$`,
    'm',
  ).exec(metrics);
  return m ? Number(m[1]) : 0;
}

describe('keel serve', () => {
  it('serves /metrics rebuilt from the log, follows new events, answers the probes and stops cleanly', async () => {
    tmp = tempDir();
    const db = tmp.path('keel.db');
    // confidences 0.70, 0.77, 0.84 at threshold 0.9: every invoice escalates
    await recordCascade(db, 0.9, invoices(3), 'none');
    const { url, exit } = await serve(db);

    // The first answer is the state before the log (every counter at 0), so that Prometheus sees
    // the log arrive as an increase; every later one is the log.
    let res = await fetch(`${url}/metrics`);
    expect(res.status).toBe(200);
    let body = await res.text();
    expect(body).toMatch(/^llm_calls_total\{[^}]*model="gpt-4"[^}]*\} 0$/m);
    expect(calls(body, 'gpt-4')).toBe(0);
    body = await (await fetch(`${url}/metrics`)).text();
    expect(calls(body, 'gpt-3.5-turbo')).toBe(3);
    expect(calls(body, 'gpt-4')).toBe(3);

    // a runtime keeps writing to the same file: the next scrape sees it (0.91 and 0.98: no escalation)
    const rt = openRuntime(db);
    await runAll(rt, triage(0.9), invoices(5).slice(3));
    await rt.close();
    body = await (await fetch(`${url}/metrics`)).text();
    expect(calls(body, 'gpt-3.5-turbo')).toBe(5);
    expect(calls(body, 'gpt-4')).toBe(3);

    res = await fetch(`${url}/healthz`);
    expect([res.status, await res.text()]).toEqual([200, 'ok\n']);
    expect((await fetch(`${url}/readyz`)).status).toBe(200);
    expect((await fetch(`${url}/nope`)).status).toBe(404);

    const done = stop?.();
    stop = undefined;
    await done;
    expect(await exit).toBe(EXIT.ok);
    await expect(fetch(`${url}/metrics`)).rejects.toThrow();
  });

  it('a restart answers what a serve that never stopped answers: Prometheus does not count the log twice', async () => {
    tmp = tempDir();
    const db = tmp.path('keel.db');
    await recordCascade(db, 0.9, invoices(3), 'none');
    // `steady` runs throughout; `restarted` is stopped and started again over the same log.
    const steady = await serveAlone(db, ['--state', tmp.path('steady.json')]);
    let restarted = await serveAlone(db);
    const seen = { steady: [] as number[], restarted: [] as number[] };
    const scrape = async (): Promise<[string, string]> => {
      const [a, b] = [await steady.scrape(), await restarted.scrape()];
      seen.steady.push(calls(a, 'gpt-3.5-turbo'));
      seen.restarted.push(calls(b, 'gpt-3.5-turbo'));
      return [a, b];
    };
    await scrape(); // the zeros
    await scrape(); // the log
    await restarted.stop();
    // Its state file, beside the log by default, names the log whose zeros were served.
    expect(fs.existsSync(`${db}.serve.json`)).toBe(true);

    const rt = openRuntime(db);
    await runAll(rt, triage(0.9), invoices(5).slice(3));
    await rt.close();
    restarted = await serveAlone(db);
    const [a, b] = await scrape();
    expect(b).toBe(a); // every series, counters and histograms included
    expect(seen).toEqual({ steady: [0, 3, 5], restarted: [0, 3, 5] });
    expect(increase(seen.restarted)).toBe(increase(seen.steady));
    // (Answering 0 again after the restart, as before, made it 0, 3, 0, 5: an increase of 8.)
    expect(increase([0, 3, 0, 5])).toBe(8);
    await restarted.stop();

    // Another log at the same path is new to Prometheus: its first scrape answers 0 again.
    fs.rmSync(db);
    await recordCascade(db, 0.9, invoices(5).slice(3), 'none');
    const replaced = await serveAlone(db);
    expect(calls(await replaced.scrape(), 'gpt-3.5-turbo')).toBe(0);
    expect(calls(await replaced.scrape(), 'gpt-3.5-turbo')).toBe(2);
    await replaced.stop();

    // A state file that cannot be written is named once, and serving goes on.
    const unwritable = await serveAlone(db, ['--state', tmp.path('no/such/dir/state.json')]);
    expect(calls(await unwritable.scrape(), 'gpt-3.5-turbo')).toBe(0);
    expect(calls(await unwritable.scrape(), 'gpt-3.5-turbo')).toBe(2);
    expect(unwritable.stderr()).toMatch(/cannot write the state file .*no\/such\/dir\/state\.json.*--state/);
    await unwritable.stop();
  });

  it('refuses a non-loopback host without --allow-remote, and bad ports, with exit 2', async () => {
    tmp = tempDir();
    const db = tmp.path('keel.db');
    await recordCascade(db, 0.9, invoices(1), 'none');
    const cases: [string[], string][] = [
      [['serve', '--db', db, '--host', '0.0.0.0', '--port', '0'], 'is not a loopback address'],
      [['serve', '--db', db, '--port', 'http'], '--port must be a whole number in [0, 65535]'],
      [['serve', '--db', db, '--port', '70000'], '--port must be a whole number in [0, 65535]'],
      [['serve', '--db', db, '--prefix', '9bad'], '--prefix must be a Prometheus name prefix'],
      [['serve', '--db', db, '--budget-usd', 'lots'], '--budget-usd must be a number > 0, e.g. 100'],
      [['serve', '--db', db, '--sla-ms', '-5'], '--sla-ms must be a number > 0, e.g. 10000'],
      [
        ['serve', '--db', db, '--weekly-volume', 'vendor'],
        '--weekly-volume must be task=tasks-per-week pairs',
      ],
    ];
    for (const [argv, message] of cases) {
      const c = captureIo();
      expect(await runCli(argv, c.io), argv.join(' ')).toBe(EXIT.usage);
      expect(c.stderr()).toContain(message);
    }
    const c = captureIo();
    expect(await runCli(['serve', '--db', `${db}.missing`, '--port', '0'], c.io)).toBe(EXIT.error);
  });
});
