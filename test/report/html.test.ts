import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSqliteStore } from '../../src/eventlog/sqlite.js';
import { buildReport } from '../../src/report/build.js';
import { renderHtml } from '../../src/report/html.js';
import type { Report } from '../../src/report/report.js';
import { Log } from './events.js';
import { FIXTURE_SETTINGS, buildFixture, type Fixture } from './fixture.js';

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
const SKIP = CHROMIUM === undefined && !process.env.CI;
if (SKIP) {
  console.warn(
    'test/report/html.test.ts: Chromium is not installed, so the headless HTML checks are skipped. ' +
      'Install it (apt-get install -y chromium) to run them; in CI they always run.',
  );
}

let fixture: Fixture | undefined;
let report: Report;
let html: string;
let work: string;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'keel-html-'));
  fixture = await buildFixture();
  const store = openSqliteStore({ path: fixture.db, readonly: true });
  try {
    report = buildReport(store.iterate(), {
      budgetUsd: FIXTURE_SETTINGS.budgetUsd,
      errorTargets: FIXTURE_SETTINGS.errorTargets,
      errorWindowSize: FIXTURE_SETTINGS.windowSize,
    });
  } finally {
    await store.close();
  }
  html = renderHtml(report);
}, 120_000);

afterAll(() => {
  if (fixture) rmSync(fixture.dir, { recursive: true, force: true });
  if (work) rmSync(work, { recursive: true, force: true });
});

/** A log whose every free-text field tries to break out of the page. */
function hostileReport(): Report {
  const log = new Log();
  const T = Date.UTC(2026, 0, 1);
  const evil = '<script>alert("x")</script>';
  log.workflow('w1', `inv${evil}`, T, 12_000);
  log.outcome(T + 1, `<img src=x onerror=alert(1)>`, 'ocr_error', `agent"><svg onload=alert(2)>`);
  log.add(
    'breaker.transitioned',
    { breaker: `b'<iframe src=//evil>`, from: 'closed', to: 'open', reason: '&<>"\'', failures: 1 },
    T + 2,
  );
  log.add(
    'alert.raised',
    { id: 'a', kind: 'custom', severity: 'high', title: `</title></svg>${evil}`, data: null },
    T + 3,
  );
  log.add(
    'vote.decided',
    { path: `v${evil}`, value: 1, confidence: 1, agentsUsed: 2, total: 3, savedUsd: 0 },
    T + 4,
  );
  log.add('cascade.accepted', { path: `c${evil}`, stage: 0, agent: `a${evil}`, savedUsd: 0 }, T + 5);
  log.cost(T + 6, `m${evil}`, 1);
  return buildReport(log.events, { budgetUsd: 5 });
}

describe('renderHtml: one self-contained file', () => {
  it('references nothing outside itself and forbids every request by policy', () => {
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(html).toContain(`<meta http-equiv="Content-Security-Policy" content="default-src 'none'`);
    expect(html).not.toMatch(/<(script|link|img|iframe|object|embed)\b/i);
    expect(html).not.toMatch(/\b(src|href)\s*=/i);
    expect(html).not.toMatch(/url\(|@import|@font-face/i);
    expect(html).not.toMatch(/https?:|\/\/[a-z]/i);
  });

  it('draws every chart the brief names, each with a title', () => {
    const kinds = [...html.matchAll(/<svg class="chart" data-chart="([a-z-]+)"/g)].map((m) => m[1]);
    for (const kind of ['latency', 'cost', 'error-rate', 'breakers', 'votes', 'cascade', 'rca']) {
      expect(kinds, kind).toContain(kind);
    }
    expect(html.match(/<svg class="chart"[^>]*><title>[^<]+<\/title>/g)?.length).toBe(kinds.length);
  });

  it('escapes every string from the log', () => {
    const page = renderHtml(hostileReport());
    expect(page).not.toMatch(/<(script|img|iframe)\b/i);
    expect(page).not.toMatch(/<svg onload/i);
    expect(page).not.toContain('</title></svg><script');
    expect(page).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;');
    expect(page).toContain('&lt;img src=x onerror=alert(1)&gt;');
    expect(page).toContain('&amp;&lt;&gt;&quot;&#39;');
  });
});

/** Chromium's own background services (updates, time, sign-in), not requests of the page. */
const BROWSER_SERVICE =
  /^(CONNECT |[A-Z]+ https?:\/\/)[^/\s]*(google\.com|googleapis\.com|gvt1\.com|gstatic\.com)[:/\s]/;

describe.skipIf(SKIP)('the HTML report in headless Chromium', () => {
  let proxy: Server;
  let port = 0;
  const requests: string[] = [];

  beforeAll(async () => {
    if (CHROMIUM === undefined) {
      throw new Error('Chromium is required in CI: install it with apt-get install -y chromium');
    }
    // Every request the browser makes goes through this proxy, so any network attempt is seen.
    proxy = createServer((socket) => {
      socket.once('data', (data) => {
        requests.push(data.toString('latin1').split('\r\n')[0] ?? '');
        socket.destroy();
      });
      socket.on('error', () => undefined);
    });
    await new Promise<void>((ok) => proxy.listen(0, '127.0.0.1', ok));
    const address = proxy.address();
    port = typeof address === 'object' && address !== null ? address.port : 0;
  });

  afterAll(async () => {
    await new Promise<void>((ok) => (proxy ? proxy.close(() => ok()) : ok()));
  });

  /** Opens `file` in headless Chromium with `extra` flags; resolves with its stdout and stderr. */
  function chromium(
    file: string,
    ...extra: string[]
  ): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const profile = mkdtempSync(join(work, 'profile-'));
    const args = [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--hide-scrollbars',
      `--user-data-dir=${profile}`,
      `--proxy-server=http://127.0.0.1:${port}`,
      '--proxy-bypass-list=<-loopback>',
      '--enable-logging=stderr',
      '--v=0',
      '--window-size=1280,2400',
      ...extra,
      pathToFileURL(file).href,
    ];
    return new Promise((done, fail) => {
      const child = spawn(CHROMIUM as string, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
      const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
      child.on('error', fail);
      child.on('close', (code) => {
        clearTimeout(timer);
        rmSync(profile, { recursive: true, force: true });
        done({ code, stdout, stderr });
      });
    });
  }

  /** Messages the page wrote to the console (errors, CSP violations, blocked loads). */
  const consoleLines = (stderr: string): string[] => stderr.split('\n').filter((l) => l.includes(':CONSOLE'));
  const pageRequests = (): string[] => requests.filter((r) => !BROWSER_SERVICE.test(r));

  it('renders with no console message and no network request', async () => {
    const file = join(work, 'report.html');
    writeFileSync(file, html);
    const { code, stdout, stderr } = await chromium(file, '--dump-dom');
    expect(code).toBe(0);
    expect(stdout).toContain('<main>');
    expect(stdout.match(/<svg class="chart"/g)?.length).toBe(html.match(/<svg class="chart"/g)?.length);
    expect(consoleLines(stderr)).toEqual([]);
    expect(pageRequests()).toEqual([]);
  }, 90_000);

  it('lays out every chart with drawn marks inside a 1280 px window', async () => {
    // A copy with a measuring script: the report itself runs none (its policy forbids scripts).
    const probe = `<script>
      const out = { charts: [], errors: [], scrollWidth: 0 };
      addEventListener('error', (e) => out.errors.push(String(e.message)));
      for (const svg of document.querySelectorAll('svg.chart')) {
        const box = svg.getBoundingClientRect();
        let marks = 0;
        for (const m of svg.querySelectorAll('.mark')) {
          const b = m.getBBox();
          if (b.width > 0 || b.height > 0) marks++;
        }
        out.charts.push({ kind: svg.dataset.chart, width: box.width, height: box.height, marks });
      }
      out.scrollWidth = document.documentElement.scrollWidth;
      const pre = document.createElement('pre');
      pre.id = 'probe';
      pre.textContent = JSON.stringify(out);
      document.body.append(pre);
    </script>`;
    const file = join(work, 'probe.html');
    writeFileSync(
      file,
      html
        .replace("default-src 'none';", "default-src 'none'; script-src 'unsafe-inline';")
        .replace('</body>', `${probe}</body>`),
    );
    const { code, stdout } = await chromium(file, '--dump-dom');
    expect(code).toBe(0);
    const json = /<pre id="probe">([^<]*)<\/pre>/.exec(stdout)?.[1] ?? '{}';
    const result = JSON.parse(
      json
        .replace(/&quot;/g, '"')
        .replace(/&lt;/g, '<')
        .replace(/&gt;/g, '>')
        .replace(/&amp;/g, '&'),
    ) as {
      charts: { kind: string; width: number; height: number; marks: number }[];
      errors: string[];
      scrollWidth: number;
    };
    expect(result.errors).toEqual([]);
    expect(result.charts.length).toBe(html.match(/<svg class="chart"/g)?.length);
    for (const c of result.charts) {
      expect(c.width, c.kind).toBeGreaterThan(400);
      expect(c.height, c.kind).toBeGreaterThan(100);
      expect(c.marks, `${c.kind} has drawn marks`).toBeGreaterThan(0);
    }
    expect(result.scrollWidth).toBeLessThanOrEqual(1280);
  }, 90_000);

  it('keeps injected markup inert: a hostile log renders with no console message and no request', async () => {
    const file = join(work, 'hostile.html');
    writeFileSync(file, renderHtml(hostileReport()));
    const before = pageRequests().length;
    const { code, stdout, stderr } = await chromium(file, '--dump-dom');
    expect(code).toBe(0);
    expect(stdout).not.toMatch(/<(script|img|iframe)\b/i);
    expect(consoleLines(stderr)).toEqual([]);
    expect(pageRequests().length).toBe(before);
  }, 90_000);

  it('takes a 1280 px wide screenshot', async () => {
    const file = join(work, 'report.html');
    writeFileSync(file, html);
    const png = join(work, 'report.png');
    const { code } = await chromium(file, `--screenshot=${png}`);
    expect(code).toBe(0);
    const bytes = readFileSync(png);
    expect(bytes.subarray(1, 4).toString('latin1')).toBe('PNG');
    expect(bytes.readUInt32BE(16)).toBe(1280); // IHDR width
    expect(bytes.readUInt32BE(20)).toBe(2400);
    // docs/report.png is the demo's report: test/report/demo-charts.test.ts writes it.
  }, 90_000);
});
