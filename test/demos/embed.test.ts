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

    const garbage = await post('not json');
    expect(garbage.status).toBe(400);
  });
});
