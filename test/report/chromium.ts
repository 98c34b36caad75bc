/** Headless Chromium for the HTML report tests: open a page, dump its DOM after layout, screenshot. */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

/** The Debian binary, when installed. */
export const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));

/**
 * Opens `file` in headless Chromium (no network: a dead proxy, background services off) with
 * `extra` flags, e.g. `--dump-dom` or `--screenshot=out.png`; resolves with its exit code and output.
 */
export function runChromium(
  file: string,
  work: string,
  ...extra: string[]
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  if (CHROMIUM === undefined)
    throw new Error('Chromium is required: install it with apt-get install -y chromium');
  const profile = mkdtempSync(join(work, 'profile-'));
  const args = [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--hide-scrollbars',
    `--user-data-dir=${profile}`,
    '--proxy-server=http://127.0.0.1:9',
    ...(extra.some((a) => a.startsWith('--window-size=')) ? [] : ['--window-size=1280,2400']),
    ...extra,
    pathToFileURL(file).href,
  ];
  return new Promise((done, fail) => {
    const child = spawn(CHROMIUM, args, { stdio: ['ignore', 'pipe', 'pipe'] });
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

/**
 * Runs `script` (a function body that returns a JSON-serialisable value) in a copy of `html` after
 * layout, and returns its value: the report itself runs no script (its policy forbids them), so the
 * copy's policy is loosened for this one inline script.
 */
export async function measureInChromium<T>(html: string, work: string, script: string): Promise<T> {
  const { writeFileSync } = await import('node:fs');
  const probe =
    `<script>(function(){let out;try{out={ok:(function(){${script}})()}}catch(e){out={error:String(e&&e.stack||e)}}` +
    `const pre=document.createElement('pre');pre.id='probe';pre.textContent=JSON.stringify(out);document.body.append(pre);})()</script>`;
  const file = join(work, `probe-${Math.floor(performance.now() * 1000)}.html`);
  writeFileSync(
    file,
    html
      .replace("default-src 'none';", "default-src 'none'; script-src 'unsafe-inline';")
      .replace('</body>', `${probe}</body>`),
  );
  const { code, stdout, stderr } = await runChromium(file, work, '--dump-dom');
  if (code !== 0) throw new Error(`chromium exited with ${String(code)}: ${stderr.slice(-2000)}`);
  const json = /<pre id="probe">([^<]*)<\/pre>/.exec(stdout)?.[1];
  if (json === undefined) throw new Error(`the probe wrote nothing: ${stderr.slice(-2000)}`);
  const result = JSON.parse(
    json
      .replace(/&quot;/g, '"')
      .replace(/&lt;/g, '<')
      .replace(/&gt;/g, '>')
      .replace(/&amp;/g, '&'),
  ) as { ok?: T; error?: string };
  if (result.error !== undefined) throw new Error(`the probe failed: ${result.error}`);
  return result.ok as T;
}
