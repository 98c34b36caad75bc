import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/main.js';
import { demoRegistry } from '../../demos/index.js';
import { captureIo } from './io.js';
import { tempDir } from './logs.js';

const tmp = tempDir();
afterAll(() => tmp.cleanup());

describe('keel demo --serve-metrics', () => {
  it('runs the demo, then serves its log as Prometheus metrics on loopback until stopped', async () => {
    const stop = new AbortController();
    let scraped = '';
    const cap = captureIo({
      signal: stop.signal,
      onOut: (text) => {
        const url = /serving (http:\/\/127\.0\.0\.1:\d+)\/metrics/.exec(text)?.[1];
        if (!url) return;
        void fetch(`${url}/metrics`)
          .then((r) => r.text())
          .then((body) => {
            scraped = body;
          })
          .finally(() => stop.abort());
      },
    });
    const code = await runCli(
      ['demo', 'fraud', '--count', '10', '--db', tmp.path('serve.db'), '--quiet', '--serve-metrics', '0'],
      cap.io,
      { demos: demoRegistry },
    );
    expect(code).toBe(0);
    expect(scraped).toMatch(/llm_calls_total\{model="[^"]+",task_type="fraud"\} \d+/);
    expect(scraped).toMatch(/vote_agents_used_count \d+/);
  });

  it('refuses a bad port before running anything', async () => {
    const cap = captureIo();
    expect(
      await runCli(
        ['demo', 'fraud', '--count', '5', '--db', tmp.path('bad.db'), '--serve-metrics', 'http'],
        cap.io,
        { demos: demoRegistry },
      ),
    ).toBe(2);
    expect(cap.stderr()).toMatch(/--serve-metrics must be a port/);
    expect(cap.stdout()).toBe('');
  });
});
