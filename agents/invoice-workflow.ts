/**
 * The tutorial's invoice pipeline as one topology: extract vendor, amount and date at once, then
 * validate the vendor (cached 24 h by vendor), then route for approval (cached 24 h by vendor and
 * tier): `named('invoice', seq(par(vendor, amount, date), validate, route))`.
 */
import {
  map,
  named,
  parWith,
  seq,
  type CachePolicy,
  type Composite,
  type ModelProvider,
  type Topology,
} from '../src/index.js';
import { approvalTier, type ApprovalTier } from './approvers.js';
import {
  amountExtraction,
  dateExtraction,
  vendorExtraction,
  type AmountField,
  type DateField,
  type Invoice,
  type VendorField,
} from './invoice.js';
import { simulatedInvoiceModel } from './invoice-model.js';
import { approvalRouting, type Routing } from './routing.js';
import { vendorValidation, type VendorRecord } from './validation.js';

/** The three extracted fields. */
export type ExtractedInvoice = VendorField & AmountField & DateField;

/** What the invoice workflow returns: the fields, the vendor's registry id and the approver. */
export interface ProcessedInvoice extends ExtractedInvoice {
  vendorId: string;
  tier: ApprovalTier;
  approver: string;
}

/** Options of {@link invoiceWorkflow}; every field is optional. */
export interface InvoiceWorkflowOptions {
  /** Where every agent's model is called (default: one {@link simulatedInvoiceModel} seeded with `seed`). */
  provider?: ModelProvider;
  /** Seed of the default simulated model (default 0). */
  seed?: number;
  /**
   * Extract the three fields one after another instead of at once (default false): the tutorial's
   * "5 s + 6 s + 7 s = 18 s" baseline, kept for comparison.
   */
  sequential?: boolean;
  /** Workflow name (default `invoice`, or `invoice_sequential` when `sequential`). */
  name?: string;
  /** Cache policy of every agent (default 24 h: `{ ttlMs: 86_400_000 }`); `false` turns caching off. */
  cache?: CachePolicy;
  /** Model of the date extraction, a simple field (default `gpt-3.5-turbo`); the others use `gpt-4`. */
  dateModel?: string;
}

/**
 * A step that hands `step` only part of its input (`project`), so `step`'s cache key is that part
 * alone, and merges the answer back into the input.
 */
function projected<I, P, R, O>(
  name: string,
  project: (input: I) => P,
  step: Topology<P, R>,
  merge: (input: I, result: R) => O,
): Composite<I, O> {
  const passThrough = (input: I): I => input;
  const join = (outputs: unknown[]): O => merge(outputs[0] as I, outputs[1] as R);
  return named(name, parWith<I, O>({ join }, map(passThrough), seq(map(project), step)));
}

function joinFields(outputs: unknown[]): ExtractedInvoice {
  const [vendor, amount, date] = outputs as [VendorField, AmountField, DateField];
  return { vendor: vendor.vendor, amount: amount.amount, currency: amount.currency, date: date.date };
}

/**
 * The invoice pipeline. Events are logged under paths like `invoice/extract[0]/vendor_extraction`,
 * `invoice/validate[1]/seq[1]/vendor_validation` and `invoice/route[2]/seq[1]/approval_routing`.
 *
 * @example
 * const invoice = invoiceWorkflow({ seed: 42 });
 * const { value, latencyMs } = await rt.run(invoice, { id: 'INV-1', text });
 * const baseline = invoiceWorkflow({ seed: 42, sequential: true }); // same agents, one at a time
 */
export function invoiceWorkflow(options: InvoiceWorkflowOptions = {}): Composite<Invoice, ProcessedInvoice> {
  const provider = options.provider ?? simulatedInvoiceModel({ seed: options.seed ?? 0 });
  const cache = options.cache === undefined ? {} : { cache: options.cache };
  const extract = named(
    'extract',
    parWith<Invoice, ExtractedInvoice>(
      { join: joinFields, ...(options.sequential ? { concurrency: 1 } : {}) },
      vendorExtraction({ provider, ...cache }),
      amountExtraction({ provider, ...cache }),
      dateExtraction({ provider, model: options.dateModel ?? 'gpt-3.5-turbo', ...cache }),
    ),
  );
  const validate = projected(
    'validate',
    (fields: ExtractedInvoice) => ({ vendor: fields.vendor }),
    vendorValidation({ provider, ...cache }),
    (fields: ExtractedInvoice, record: VendorRecord) => ({ ...fields, vendorId: record.vendorId }),
  );
  const route = projected(
    'route',
    (fields: ExtractedInvoice & { vendorId: string }) => ({
      vendor: fields.vendor,
      tier: approvalTier(fields.amount),
    }),
    approvalRouting({ provider, ...cache }),
    (fields: ExtractedInvoice & { vendorId: string }, routing: Routing): ProcessedInvoice => ({
      ...fields,
      tier: approvalTier(fields.amount),
      approver: routing.approver,
    }),
  );
  const name = options.name ?? (options.sequential ? 'invoice_sequential' : 'invoice');
  return named(name, seq(extract, validate, route));
}
