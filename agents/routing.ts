/**
 * Approval routing: who approves an invoice of this vendor and tier. Cached 24 h by default —
 * the tutorial's "approval routing reuse" (the same approver for a vendor).
 */
import { AgentError, agent, type Agent, type AgentContext } from '../src/index.js';
import { askModel } from './answer.js';
import { APPROVERS, type ApprovalTier } from './approvers.js';
import { simulatedInvoiceModel } from './invoice-model.js';
import { READY_AGENT_DEFAULTS, policiesOf, type ReadyAgentOptions } from './options.js';

/** What {@link approvalRouting} is asked: the vendor and the approval tier of the total. */
export interface RoutingQuery {
  vendor: string;
  /** From {@link approvalTier}. */
  tier: ApprovalTier;
}

/** What {@link approvalRouting} returns. */
export interface Routing {
  /** An approver of the query's tier, from {@link APPROVERS}. */
  approver: string;
}

/**
 * Picks the approver (`routing` task type, the tutorial's < 10 % target). Fails with
 * `hallucination` when the model names someone outside the tier's approvers and
 * `validation_error` when the answer has no approver.
 *
 * @example
 * const route = approvalRouting({ seed: 42 });
 * const { value } = await rt.run(route, { vendor: 'Acme Corp', tier: approvalTier(1_234.5) }); // { approver: '…' }
 */
export function approvalRouting(options: ReadyAgentOptions = {}): Agent<RoutingQuery, Routing> {
  const provider = options.provider ?? simulatedInvoiceModel({ seed: options.seed ?? 0 });
  const policies = policiesOf(options, 'approval_routing', { ttlMs: READY_AGENT_DEFAULTS.cacheTtlMs });
  const name = policies.name;
  return agent<RoutingQuery, Routing>({
    ...policies,
    providerName: provider.name,
    taskType: 'routing',
    run: async (query: RoutingQuery, context: AgentContext) => {
      const list = APPROVERS[query.tier];
      const answer = await askModel(
        provider,
        name,
        context,
        { task: 'route', vendor: query.vendor, tier: query.tier },
        `Who approves a ${query.tier}-tier invoice from "${query.vendor}"? Pick one of: ${list.join(', ')}. Answer {"approver": string}.`,
      );
      const approver = (answer.value as { approver?: unknown } | null)?.approver;
      if (typeof approver !== 'string' || approver === '')
        throw new AgentError(
          'validation_error',
          `${name}: the answer names no approver: ${JSON.stringify(answer.value)}`,
          { usage: answer.usage },
        );
      if (!list.includes(approver))
        throw new AgentError(
          'hallucination',
          `${name}: "${approver}" is not a ${query.tier} approver; the model made it up`,
          { usage: answer.usage },
        );
      return {
        value: { approver },
        usage: answer.usage,
        model: answer.model,
        ...(answer.confidence !== undefined ? { confidence: answer.confidence } : {}),
      };
    },
  });
}
