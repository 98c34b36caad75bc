/**
 * Embedding Keel in a Node service: the README's short example, kept here so it is type-checked.
 * One runtime per process; each HTTP request runs the invoice workflow; `close()` drains it.
 * Run it as a service (`PORT`, default 3000; `KEEL_DB`, default `keel.db`; SIGINT/SIGTERM drain it):
 *
 * ```sh
 * npx tsx demos/embed.ts
 * curl -s localhost:3000/invoices -d '{"id":"INV-1","text":"INVOICE INV-1\nVendor: Acme Corp\nDate: 2025-12-01\nTotal: USD 120.00"}'
 * ```
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import type { Invoice } from '../agents/invoice.js';
import { invoiceWorkflow } from '../agents/invoice-workflow.js';
import {
  SEED_PRICING,
  createRuntime,
  isAgentFailedError,
  isCircuitOpenError,
  type ModelProvider,
} from '../src/index.js';

/** Options of {@link startInvoiceService}. */
export interface InvoiceServiceOptions {
  /** TCP port on 127.0.0.1 (0 picks a free one). */
  port: number;
  /** The event log (default `keel.db`). */
  db?: string;
  /** Where models are called (default: the seeded simulated invoice model). */
  provider?: ModelProvider;
}

/** A running service. */
export interface InvoiceService {
  /** e.g. `http://127.0.0.1:3000`. */
  url: string;
  /** Stops taking requests, then closes the runtime (pending events are committed). */
  close(): Promise<void>;
}

/**
 * Starts an HTTP service: `POST /invoices` with an invoice's JSON runs the invoice workflow and
 * answers its result, cost and latency; a workflow failure answers 422 with its root cause, an
 * open breaker 503.
 *
 * @example
 * const service = await startInvoiceService({ port: 3000, db: 'keel.db' });
 * process.on('SIGTERM', () => void service.close());
 */
export async function startInvoiceService(options: InvoiceServiceOptions): Promise<InvoiceService> {
  const rt = createRuntime({
    db: options.db ?? 'keel.db',
    pricing: { ...SEED_PRICING },
    budget: { dailyUsd: 100, alertAt: 0.8, onExhausted: 'reject' },
    sla: { p95Ms: 10_000 },
  });
  const invoice = invoiceWorkflow(options.provider ? { provider: options.provider } : {});
  rt.on('alert', (alert) => console.warn(`[${alert.severity}] ${alert.title}`));

  const server: Server = createServer((req, res) => {
    const reply = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    };
    if (req.method !== 'POST' || req.url !== '/invoices') return reply(404, { error: 'POST /invoices' });
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      let input: Invoice;
      try {
        input = JSON.parse(body) as Invoice;
      } catch {
        return reply(400, { error: 'send the invoice as JSON: {"id": "...", "text": "..."}' });
      }
      rt.run(invoice, input).then(
        (result) => reply(200, result),
        (e: unknown) => {
          if (isCircuitOpenError(e)) reply(503, { error: e.message, retryInMs: e.retryInMs });
          else if (isAgentFailedError(e)) reply(422, { category: e.category, error: e.message });
          else reply(500, { error: String(e) });
        },
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(options.port, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rt.close();
    },
  };
}

/** Run as a script: serve until SIGINT/SIGTERM, then drain (pending events are committed). */
async function main(): Promise<void> {
  const port = Number(process.env.PORT ?? 3000);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    console.error(`PORT must be a TCP port (0-65535), got "${process.env.PORT ?? ''}"`);
    process.exitCode = 2;
    return;
  }
  const db = process.env.KEEL_DB ?? 'keel.db';
  const service = await startInvoiceService({ port, db });
  console.log(`invoice service on ${service.url} (log: ${db}); POST ${service.url}/invoices`);
  const stop = (): void => {
    service.close().then(
      () => console.log('drained and closed'),
      (e: unknown) => {
        console.error(String(e));
        process.exitCode = 1;
      },
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((e: unknown) => {
    console.error(String(e));
    process.exitCode = 1;
  });
}
