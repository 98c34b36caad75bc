import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { simulatedInvoiceModel } from '../../agents/invoice-model.js';
import { startInvoiceService, type InvoiceService } from '../../demos/embed.js';
import { tmpDb } from './helpers.js';

let service: InvoiceService | undefined;
afterEach(async () => {
  await service?.close();
  service = undefined;
});

const instant = { latencyMs: { p50: 0, p95: 0 } };
const provider = simulatedInvoiceModel({
  rates: {},
  hallucinationRate: 0,
  models: { 'gpt-4': instant, 'gpt-3.5-turbo': instant },
});

async function post(body: string): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${service?.url}/invoices`, { method: 'POST', body });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

describe('the embedded invoice service (demos/embed.ts)', () => {
  it('answers a processed invoice with its value and cost, a bad invoice with its root cause', async () => {
    service = await startInvoiceService({ port: 0, db: tmpDb(), provider });
    expect(service.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);

    const ok = await post(
      JSON.stringify({
        id: 'INV-1',
        text: 'INVOICE INV-1\nVendor: Acme Corp\nDate: 2025-12-01\nTotal: USD 120.00',
      }),
    );
    expect(ok.status).toBe(200);
    expect(ok.json.value).toMatchObject({ vendor: 'Acme Corp', amount: 120, tier: 'clerk' });
    expect(ok.json.costUsd).toBeGreaterThan(0);

    const missing = await post(
      JSON.stringify({ id: 'INV-2', text: 'INVOICE INV-2\nVendor: Acme Corp\nTotal: USD 1.00' }),
    );
    expect(missing.status).toBe(422);
    expect(missing.json.category).toBe('missing_field');
    // The agent's name once, though its own error message starts with it too.
    expect(missing.json.error).toBe('date_extraction: invoice INV-2 has no date');

    const garbage = await post('not json');
    expect(garbage.status).toBe(400);
  });
});

describe('npx tsx demos/embed.ts', () => {
  it('serves on PORT until SIGTERM, then drains and exits 0', async () => {
    const script = fileURLToPath(new URL('../../demos/embed.ts', import.meta.url));
    const db = tmpDb();
    const child = spawn(process.execPath, ['--import', 'tsx', script], {
      env: { ...process.env, PORT: '0', KEEL_DB: db },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      const url = await new Promise<string>((resolve, reject) => {
        child.stdout.on('data', () => {
          const m = /invoice service on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
          if (m) resolve(m[1]!);
        });
        void exited.then((code) => reject(new Error(`exited ${code} before listening: ${err}`)));
      });
      const res = await fetch(`${url}/`);
      expect(res.status).toBe(404);
      expect(await res.json()).toEqual({ error: 'POST /invoices' });
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(out).toContain('drained and closed');
      expect(existsSync(db)).toBe(true);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });

  it('refuses a PORT that is not a port', async () => {
    const script = fileURLToPath(new URL('../../demos/embed.ts', import.meta.url));
    const child = spawn(process.execPath, ['--import', 'tsx', script], {
      env: { ...process.env, PORT: 'http', KEEL_DB: tmpDb() },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    child.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    expect(code).toBe(2);
    expect(err).toContain('PORT must be a TCP port');
  });
});
