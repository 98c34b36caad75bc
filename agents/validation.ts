/**
 * Vendor validation: is this vendor in the vendor registry? The tutorial's example of what to cache
 * (vendors change rarely): the agent takes the vendor name alone, so every invoice of a vendor
 * within 24 h shares one cached answer.
 */
import { AgentError, agent, type Agent, type AgentContext } from '../src/index.js';
import { askModel } from './answer.js';
import { simulatedInvoiceModel } from './invoice-model.js';
import { READY_AGENT_DEFAULTS, policiesOf, type ReadyAgentOptions } from './options.js';

/** What {@link vendorValidation} is asked. */
export interface VendorQuery {
  vendor: string;
}

/** What {@link vendorValidation} returns for an approved vendor. */
export interface VendorRecord {
  vendor: string;
  /** Registry id, e.g. `V-48213`. */
  vendorId: string;
}

/**
 * Checks a vendor against the registry (`vendor_validation` task type). Fails with
 * `validation_error` when the registry does not list the vendor as approved, and when the answer
 * is not a `{ vendorId, status }` record. Cached 24 h by default.
 *
 * @example
 * const validate = vendorValidation({ seed: 42 }); // cache: { ttlMs: 86_400_000 }
 * const { value } = await rt.run(validate, { vendor: 'Acme Corp' }); // { vendor: 'Acme Corp', vendorId: 'V-…' }
 */
export function vendorValidation(options: ReadyAgentOptions = {}): Agent<VendorQuery, VendorRecord> {
  const provider = options.provider ?? simulatedInvoiceModel({ seed: options.seed ?? 0 });
  const policies = policiesOf(options, 'vendor_validation', { ttlMs: READY_AGENT_DEFAULTS.cacheTtlMs });
  const name = policies.name;
  return agent<VendorQuery, VendorRecord>({
    ...policies,
    providerName: provider.name,
    taskType: 'vendor_validation',
    run: async (query: VendorQuery, context: AgentContext) => {
      const answer = await askModel(
        provider,
        name,
        context,
        { task: 'validate_vendor', vendor: query.vendor },
        `Look up "${query.vendor}" in the vendor registry. Answer {"vendorId": string, "status": "approved" | "unknown" | "blocked"}.`,
      );
      const record = answer.value as { vendorId?: unknown; status?: unknown } | null;
      if (typeof record?.vendorId !== 'string' || typeof record.status !== 'string')
        throw new AgentError(
          'validation_error',
          `${name}: expected {"vendorId", "status"} for "${query.vendor}", got ${JSON.stringify(answer.value)}`,
          { usage: answer.usage },
        );
      if (record.status !== 'approved')
        throw new AgentError(
          'validation_error',
          `${name}: vendor "${query.vendor}" is ${record.status} in the registry; hold the invoice for review`,
          { usage: answer.usage },
        );
      return {
        value: { vendor: query.vendor, vendorId: record.vendorId },
        usage: answer.usage,
        model: answer.model,
        ...(answer.confidence !== undefined ? { confidence: answer.confidence } : {}),
      };
    },
  });
}
