/**
 * Cheap and expensive vendor extraction for the tutorial's model cascade: GPT-3.5 screens every
 * invoice ($0.002) and GPT-4 ($0.03) answers only those the cheap model is unsure of.
 */
import { cascade, type Agent, type Composite } from '../src/index.js';
import { vendorExtraction, type Invoice, type VendorField } from './invoice.js';
import { simulatedInvoiceModel } from './invoice-model.js';
import type { ReadyAgentOptions } from './options.js';

/**
 * Vendor extraction on `gpt-3.5-turbo`, named `vendor_extraction_cheap`, not cached (a cascade
 * decides on fresh answers).
 *
 * @example
 * const cheap = cheapVendorExtraction({ seed: 42 });
 */
export function cheapVendorExtraction(options: ReadyAgentOptions = {}): Agent<Invoice, VendorField> {
  return vendorExtraction({
    name: 'vendor_extraction_cheap',
    model: 'gpt-3.5-turbo',
    cache: false,
    ...options,
  });
}

/**
 * Vendor extraction on `gpt-4`, named `vendor_extraction_gpt4`, not cached.
 *
 * @example
 * const expensive = expensiveVendorExtraction({ seed: 42 });
 */
export function expensiveVendorExtraction(options: ReadyAgentOptions = {}): Agent<Invoice, VendorField> {
  return vendorExtraction({ name: 'vendor_extraction_gpt4', model: 'gpt-4', cache: false, ...options });
}

/** Options of {@link vendorCascade}. */
export interface VendorCascadeOptions extends Omit<ReadyAgentOptions, 'name' | 'model'> {
  /** Confidence the cheap model needs for its answer to stand (default 0.9, the tutorial's). */
  threshold?: number;
}

/**
 * `cascade([cheap, expensive], { threshold })` over one shared provider: GPT-3.5 first, GPT-4 when
 * its confidence is under the threshold or it failed.
 *
 * @example
 * const extract = named('cascade', vendorCascade({ seed: 42, threshold: 0.9 })); // ≈ 70 % answered by GPT-3.5
 */
export function vendorCascade(options: VendorCascadeOptions = {}): Composite<Invoice, VendorField> {
  const { threshold = 0.9, ...rest } = options;
  const provider = rest.provider ?? simulatedInvoiceModel({ seed: rest.seed ?? 0 });
  return cascade(
    [cheapVendorExtraction({ ...rest, provider }), expensiveVendorExtraction({ ...rest, provider })],
    {
      threshold,
    },
  );
}
