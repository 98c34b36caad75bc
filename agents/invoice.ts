/**
 * Invoice field extraction: vendor, amount and date read from an invoice's OCR text by a model,
 * each agent classifying its own failures the tutorial's way — `ocr_error` (garbled characters),
 * `missing_field` (the field is not on the invoice), `validation_error` (negative amount, future
 * date) and `hallucination` (an answer that does not appear on the invoice).
 */
import {
  AgentError,
  agent,
  type Agent,
  type AgentContext,
  type AgentOutput,
  type CachePolicy,
} from '../src/index.js';
import { askModel, type ModelAnswer } from './answer.js';
import { simulatedInvoiceModel } from './invoice-model.js';
import { READY_AGENT_DEFAULTS, policiesOf, type ReadyAgentOptions } from './options.js';

/** A scanned invoice as the OCR produced it. */
export interface Invoice {
  /** Invoice number, e.g. `INV-000042`. A resubmitted duplicate repeats the id and the text. */
  id: string;
  /**
   * The OCR text: one `Label: value` line per field, e.g.
   * `INVOICE INV-000042\nVendor: Acme Corp\nDate: 2025-12-14\nTotal: USD 1,234.50`.
   */
  text: string;
}

/** What {@link vendorExtraction} returns. */
export interface VendorField {
  vendor: string;
}

/** What {@link amountExtraction} returns. */
export interface AmountField {
  /** The invoice total, in `currency`. */
  amount: number;
  /** ISO 4217 code, e.g. `USD`. */
  currency: string;
}

/** What {@link dateExtraction} returns. */
export interface DateField {
  /** Invoice date, `YYYY-MM-DD`. */
  date: string;
}

const DAY_CACHE: CachePolicy = { ttlMs: READY_AGENT_DEFAULTS.cacheTtlMs };
/** A letter next to a digit or OCR junk (`Acm3`, `C0rp`, `1,2O4`): the scan garbled the text. */
const OCR_ARTIFACT = /[A-Za-z][0-9@$|]|[0-9@$|][A-Za-z]/;
const ISO_DATE = /^\d{4}-\d{2}-\d{2}$/;
const AMOUNT = /^-?\d+(\.\d{1,2})?$/;

/** The model's answer as a non-empty string, or a `missing_field` / `validation_error` failure. */
function fieldText(answer: ModelAnswer, name: string, field: string, invoice: Invoice): string {
  const { value, usage } = answer;
  if (value === null || value === undefined || value === '')
    throw new AgentError('missing_field', `${name}: invoice ${invoice.id} has no ${field}`, { usage });
  if (typeof value !== 'string')
    throw new AgentError(
      'validation_error',
      `${name}: expected the ${field} as text, got ${JSON.stringify(value)}`,
      { usage },
    );
  return value.trim();
}

/** Fails with `hallucination` unless `text` appears on the invoice. */
function grounded(answer: ModelAnswer, name: string, field: string, text: string, invoice: Invoice): void {
  if (!invoice.text.includes(text))
    throw new AgentError(
      'hallucination',
      `${name}: the ${field} "${text}" does not appear on invoice ${invoice.id}; the model made it up`,
      { usage: answer.usage },
    );
}

function output<O>(answer: ModelAnswer, value: O): AgentOutput<O> {
  return {
    value,
    usage: answer.usage,
    model: answer.model,
    ...(answer.confidence !== undefined ? { confidence: answer.confidence } : {}),
  };
}

/**
 * Reads the vendor name (`vendor` task type, the tutorial's < 5 % error target). Fails with
 * `missing_field` when the invoice has none, `ocr_error` when the name is garbled (`Acm3 C0rp`),
 * `hallucination` when the answer is not on the invoice.
 *
 * @example
 * const vendor = vendorExtraction({ seed: 42 }); // gpt-4, 10 s timeout, 2 attempts, breaker "openai", 24 h cache
 * const { value } = await rt.run(vendor, { id: 'INV-1', text: 'INVOICE INV-1\nVendor: Acme Corp' });
 */
export function vendorExtraction(options: ReadyAgentOptions = {}): Agent<Invoice, VendorField> {
  const provider = options.provider ?? simulatedInvoiceModel({ seed: options.seed ?? 0 });
  const policies = policiesOf(options, 'vendor_extraction', DAY_CACHE);
  const name = policies.name;
  return agent<Invoice, VendorField>({
    ...policies,
    providerName: provider.name,
    taskType: 'vendor',
    run: async (invoice: Invoice, context: AgentContext) => {
      const answer = await askModel(
        provider,
        name,
        context,
        { task: 'vendor', invoiceId: invoice.id, text: invoice.text },
        `Who issued this invoice? Answer with the vendor name.\n\n${invoice.text}`,
      );
      const vendor = fieldText(answer, name, 'vendor name', invoice);
      if (OCR_ARTIFACT.test(vendor))
        throw new AgentError(
          'ocr_error',
          `${name}: the vendor name "${vendor}" on invoice ${invoice.id} is garbled by the scan (digits inside words)`,
          { usage: answer.usage },
        );
      grounded(answer, name, 'vendor name', vendor, invoice);
      return output(answer, { vendor });
    },
  });
}

/**
 * Reads the invoice total (`payment` task type, the tutorial's < 0.1 % target). Fails with
 * `missing_field`, `ocr_error` (`1,2O4.5O`), `hallucination`, or `validation_error` for the
 * edge case of a zero or negative amount.
 *
 * @example
 * const amount = amountExtraction({ seed: 42 });
 * const { value } = await rt.run(amount, invoice); // { amount: 1234.5, currency: 'USD' }
 */
export function amountExtraction(options: ReadyAgentOptions = {}): Agent<Invoice, AmountField> {
  const provider = options.provider ?? simulatedInvoiceModel({ seed: options.seed ?? 0 });
  const policies = policiesOf(options, 'amount_extraction', DAY_CACHE);
  const name = policies.name;
  return agent<Invoice, AmountField>({
    ...policies,
    providerName: provider.name,
    taskType: 'payment',
    validate: (field) =>
      field.amount > 0 || {
        category: 'validation_error',
        message: `${name}: the total must be positive, got ${field.amount} ${field.currency} (edge case: send to manual review)`,
      },
    run: async (invoice: Invoice, context: AgentContext) => {
      const answer = await askModel(
        provider,
        name,
        context,
        { task: 'amount', invoiceId: invoice.id, text: invoice.text },
        `What is the invoice total? Answer with the currency code and the amount as printed.\n\n${invoice.text}`,
      );
      const raw = fieldText(answer, name, 'total', invoice);
      grounded(answer, name, 'total', raw, invoice);
      const [currency = '', printed = ''] = raw.split(/\s+/, 2);
      const digits = printed.replace(/,/g, '');
      if (!/^[A-Z]{3}$/.test(currency) || !AMOUNT.test(digits))
        throw new AgentError(
          'ocr_error',
          `${name}: the total "${raw}" on invoice ${invoice.id} is not a readable amount (garbled by the scan)`,
          { usage: answer.usage },
        );
      return output(answer, { amount: Number(digits), currency });
    },
  });
}

/**
 * Reads the invoice date (`date` task type). Fails with `missing_field`, `ocr_error` (not a
 * readable date), `hallucination`, or `validation_error` for the edge case of a date in the future
 * of the runtime's clock.
 *
 * @example
 * const date = dateExtraction({ seed: 42, model: 'gpt-3.5-turbo' }); // a simple field: the cheap model will do
 */
export function dateExtraction(options: ReadyAgentOptions = {}): Agent<Invoice, DateField> {
  const provider = options.provider ?? simulatedInvoiceModel({ seed: options.seed ?? 0 });
  const policies = policiesOf(options, 'date_extraction', DAY_CACHE);
  const name = policies.name;
  return agent<Invoice, DateField>({
    ...policies,
    providerName: provider.name,
    taskType: 'date',
    run: async (invoice: Invoice, context: AgentContext) => {
      const answer = await askModel(
        provider,
        name,
        context,
        { task: 'date', invoiceId: invoice.id, text: invoice.text },
        `What is the invoice date? Answer as printed (YYYY-MM-DD).\n\n${invoice.text}`,
      );
      const date = fieldText(answer, name, 'date', invoice);
      const ms = ISO_DATE.test(date) ? Date.parse(`${date}T00:00:00Z`) : NaN;
      if (!Number.isFinite(ms))
        throw new AgentError(
          'ocr_error',
          `${name}: the date "${date}" on invoice ${invoice.id} is not readable (garbled by the scan)`,
          { usage: answer.usage },
        );
      grounded(answer, name, 'date', date, invoice);
      if (ms > context.clock.now())
        throw new AgentError(
          'validation_error',
          `${name}: invoice ${invoice.id} is dated ${date}, in the future (edge case: send to manual review)`,
          { usage: answer.usage },
        );
      return output(answer, { date });
    },
  });
}
