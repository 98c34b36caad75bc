/**
 * The invoice demo's two tutorial scenarios, as models of the world whose figures the demo then
 * measures from its log:
 *
 * - **caching**: the tutorial's workload, three GPT-4 calls an invoice (extract the vendor,
 *   validate it, route the invoice for approval), each cached 24 h, on invoices of which 8 % are
 *   resubmitted duplicates and whose vendors repeat (a few of {@link CACHING_VENDORS} send most);
 * - **latency**: the tutorial's three extraction agents (about 5 s, 6 s and 7 s), retried with
 *   exponential backoff and no circuit breaker, on a deployment that starts cold — run in
 *   parallel, then one after another, as requests arrive at a steady pace.
 *
 * Internal to demos/.
 */
import {
  amountExtraction,
  dateExtraction,
  vendorExtraction,
  type AmountField,
  type DateField,
  type Invoice,
  type VendorField,
} from '../agents/invoice.js';
import { simulatedInvoiceModel } from '../agents/invoice-model.js';
import { approvalTier, type ApprovalTier } from '../agents/approvers.js';
import { approvalRouting, type Routing } from '../agents/routing.js';
import { vendorValidation, type VendorRecord } from '../agents/validation.js';
import {
  map,
  named,
  parWith,
  seq,
  type Composite,
  type FaultWindow,
  type RetryConfig,
  type Topology,
} from '../src/index.js';

/** Workflow name of the caching scenario. */
export const CACHING_WORKFLOW = 'invoice_caching';
/** Workflow names of the latency scenario, parallel and sequential. */
export const LATENCY_WORKFLOW = 'invoice_latency';
export const LATENCY_SEQUENTIAL_WORKFLOW = 'invoice_latency_sequential';

/**
 * Vendors in the caching scenario: a mid-size company's supplier base, a few of them sending
 * most invoices (Zipf, s = 1). With 8 % duplicates, this is what makes about 60 % of the lookups
 * hit: every duplicate's three calls, most validations (the vendor was seen today) and most
 * routings (the vendor and approval tier were).
 */
export const CACHING_VENDORS = 100;

/**
 * Latency of the tutorial's three agents ("5 s + 6 s + 7 s = 18 s"), as median and P95 in ms:
 * vendor about 5 s, amount about 6 s, date about 7 s with the longest tail.
 */
export const TUTORIAL_AGENT_LATENCY = Object.freeze({
  vendor: { p50: 4_700, p95: 5_100 },
  amount: { p50: 5_700, p95: 6_200 },
  date: { p50: 6_500, p95: 7_600 },
});

/** Provider failures per call in the latency scenario: 0.5 % 503s, 0.25 % 429s. */
const LATENCY_FAILURES = { provider_error: 0.005, rate_limited: 0.0025 };

/** The tutorial's retries: 3 attempts, exponential backoff from 1 s (full jitter). */
export const LATENCY_RETRY: RetryConfig = Object.freeze({
  attempts: 3,
  backoff: 'exponential',
  baseDelayMs: 1_000,
});

/** Cold start: for this long after a deployment, calls take {@link COLD_START_EXTRA_MS} more. */
export const COLD_START_MS = 2_500;
/** The tutorial's "first request after deployment takes 45 s". */
export const COLD_START_EXTRA_MS = 45_000;
/** Requests arrive one every this many ms in the latency scenario (4 a second). */
export const LATENCY_ARRIVAL_MS = 250;

/** The three extracted fields. */
type Fields = VendorField & AmountField & DateField;

function joinFields(outputs: unknown[]): Fields {
  const [vendor, amount, date] = outputs as [VendorField, AmountField, DateField];
  return { vendor: vendor.vendor, amount: amount.amount, currency: amount.currency, date: date.date };
}

/**
 * The latency scenario's pipeline: the three extraction agents, each on its own model endpoint
 * with the tutorial's latency, 10 s timeout, {@link LATENCY_RETRY}, no breaker, no cache.
 * `deployedAtMs` starts the cold window; omit it for replay (recorded outputs stand in).
 */
export function latencyWorkflow(
  seed: number,
  sequential: boolean,
  deployedAtMs?: number,
): Composite<Invoice, Fields> {
  const faults: FaultWindow[] =
    deployedAtMs === undefined
      ? []
      : [
          {
            fromMs: deployedAtMs,
            toMs: deployedAtMs + COLD_START_MS,
            kind: 'latency_spike',
            extraLatencyMs: COLD_START_EXTRA_MS,
          },
        ];
  const endpoint = (latencyMs: { p50: number; p95: number }) =>
    simulatedInvoiceModel({
      seed,
      rates: LATENCY_FAILURES,
      hallucinationRate: 0,
      models: { 'gpt-4': { latencyMs } },
      faults,
    });
  const policy = { cache: false, breaker: false, retry: LATENCY_RETRY } as const;
  return named(
    sequential ? LATENCY_SEQUENTIAL_WORKFLOW : LATENCY_WORKFLOW,
    parWith<Invoice, Fields>(
      { join: joinFields, ...(sequential ? { concurrency: 1 } : {}) },
      vendorExtraction({ provider: endpoint(TUTORIAL_AGENT_LATENCY.vendor), ...policy }),
      amountExtraction({ provider: endpoint(TUTORIAL_AGENT_LATENCY.amount), ...policy }),
      dateExtraction({ provider: endpoint(TUTORIAL_AGENT_LATENCY.date), model: 'gpt-4', ...policy }),
    ),
  );
}

/** The total printed on an invoice, for its approval tier (code, not a model call). */
function printedTier(invoice: Invoice): ApprovalTier {
  const m = /\nTotal: [A-Z]{3} (-?[\d,]+\.\d\d)/.exec(invoice.text);
  return approvalTier(m ? Number((m[1] ?? '0').replace(/,/g, '')) : 0);
}

/** What the caching scenario returns per invoice. */
export interface RoutedInvoice {
  vendor: string;
  vendorId: string;
  approver: string;
}

/**
 * The caching scenario's pipeline, the tutorial's three GPT-4 calls, each cached 24 h by what it
 * is asked: extract the vendor (keyed by the invoice), validate it (keyed by the vendor), route
 * the invoice (keyed by vendor and approval tier).
 */
export function cachingWorkflow(seed: number): Composite<Invoice, RoutedInvoice> {
  const provider = simulatedInvoiceModel({ seed });
  const keepInvoice = map((input: Invoice) => input);
  const extract = named(
    'extract',
    parWith<Invoice, { invoice: Invoice; vendor: string }>(
      {
        join: (o) => ({ invoice: o[0] as Invoice, vendor: (o[1] as VendorField).vendor }),
      },
      keepInvoice,
      vendorExtraction({ provider }),
    ),
  );
  type Extracted = { invoice: Invoice; vendor: string };
  const validate = named(
    'validate',
    parWith<Extracted, Extracted & { vendorId: string }>(
      { join: (o) => ({ ...(o[0] as Extracted), vendorId: (o[1] as VendorRecord).vendorId }) },
      map((x: Extracted) => x),
      seq(
        map((x: Extracted) => ({ vendor: x.vendor })),
        vendorValidation({ provider }),
      ),
    ),
  );
  type Validated = Extracted & { vendorId: string };
  const route = named(
    'route',
    parWith<Validated, RoutedInvoice>(
      {
        join: (o) => {
          const v = o[0] as Validated;
          return { vendor: v.vendor, vendorId: v.vendorId, approver: (o[1] as Routing).approver };
        },
      },
      map((x: Validated) => x),
      seq(
        map((x: Validated) => ({ vendor: x.vendor, tier: printedTier(x.invoice) })),
        approvalRouting({ provider }),
      ),
    ),
  );
  return named(CACHING_WORKFLOW, seq(extract, validate, route));
}

/** The scenarios' topologies by workflow name, for replay. */
export function scenarioTopologies(seed: number): Record<string, Topology<never, unknown>> {
  return {
    [CACHING_WORKFLOW]: cachingWorkflow(seed),
    [LATENCY_WORKFLOW]: latencyWorkflow(seed, false),
    [LATENCY_SEQUENTIAL_WORKFLOW]: latencyWorkflow(seed, true),
  };
}
