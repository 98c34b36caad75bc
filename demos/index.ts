/**
 * The demo topologies, runnable from code (`runDemo('fraud', options)`) and from the CLI
 * (`keel demo fraud`). Each writes its event log to a SQLite file and returns what that log shows.
 */
import { formatCascadeDemo, runCascadeDemo, type CascadeDemoResult } from './cascade.js';
import { formatChaosDemo, runChaosDemo, type ChaosDemoResult } from './chaos.js';
import { formatFraudDemo, runFraudDemo, type FraudDemoResult } from './fraud.js';
import { formatInvoiceDemo, runInvoiceDemo, type InvoiceDemoResult } from './invoice.js';
import {
  APPROVAL_WORKFLOW,
  formatInvoiceApprovalDemo,
  invoiceApprovalWorkflow,
  runInvoiceApprovalDemo,
  type InvoiceApprovalDemoResult,
} from './invoice-approval.js';
import {
  SUPPORT_WORKFLOW,
  formatSupportDemo,
  runSupportDemo,
  supportTopology,
  type SupportDemoOptions,
  type SupportDemoResult,
} from './support.js';
import { CASCADE_WORKFLOW, GPT4_ONLY_WORKFLOW } from './cascade.js';
import { CHAOS_BREAKER, CHAOS_WORKFLOW } from './chaos.js';
import { ConfigError, named, vote, type Topology } from '../src/index.js';
import type { DemoRegistry } from '../src/cli/demo.js';
import { invoiceWorkflow } from '../agents/invoice-workflow.js';
import { simulatedInvoiceModel } from '../agents/invoice-model.js';
import { fraudScreeners } from '../agents/fraud.js';
import { expensiveVendorExtraction, vendorCascade } from '../agents/cascade.js';
import { vendorExtraction } from '../agents/invoice.js';
import { scenarioTopologies } from './invoice-scenarios.js';

export { runInvoiceDemo, formatInvoiceDemo, TUTORIAL_INVOICE_FIGURES } from './invoice.js';
export type { InvoiceDemoResult, InvoiceRun, SlaLatency, TaskErrorRate } from './invoice.js';
export {
  runInvoiceApprovalDemo,
  formatInvoiceApprovalDemo,
  invoiceApprovalWorkflow,
  APPROVAL_WORKFLOW,
  APPROVAL_TIMEOUT_MS,
  APPROVAL_SCHEMA,
} from './invoice-approval.js';
export type {
  InvoiceApprovalDemoOptions,
  InvoiceApprovalDemoResult,
  WaitingInvoice,
  ApprovalRequest,
  ApprovedInvoice,
  ApprovalDecision,
} from './invoice-approval.js';
export { runFraudDemo, formatFraudDemo } from './fraud.js';
export type { FraudDemoResult, VoteStats } from './fraud.js';
export {
  runCascadeDemo,
  formatCascadeDemo,
  CASCADE_WORKFLOW,
  GPT4_ONLY_WORKFLOW,
  TUTORIAL_THRESHOLDS,
  TUTORIAL_THRESHOLD_TABLE,
} from './cascade.js';
export type {
  CascadeDemoOptions,
  CascadeDemoResult,
  CascadeWhatIfContext,
  CascadeWhatIfRow,
  ThresholdFigures,
  VariantCost,
} from './cascade.js';
export {
  runChaosDemo,
  formatChaosDemo,
  CHAOS_WORKFLOW,
  CHAOS_OUTAGE,
  CHAOS_BREAKER,
  CHAOS_TIMELINE_MS,
} from './chaos.js';
export type { ChaosDemoResult, ChaosPhase, ChaosTransition } from './chaos.js';
export { runSupportDemo, formatSupportDemo, SUPPORT_WORKFLOW, SUPPORT_BREAKER } from './support.js';
export type { SupportDemoOptions, SupportDemoResult, SupportConversation } from './support.js';
export { WEEKLY_VOLUME, DEFAULT_CONCURRENCY } from './harness.js';
export type { DemoOptions, LatencySummary, TutorialFigure } from './harness.js';
export { invoiceStream, TUTORIAL_INVOICE_MIX, CLEAN_INVOICE_MIX } from './invoices.js';
export type { InvoiceMix, InvoiceStreamOptions } from './invoices.js';
export { transactionStream, TUTORIAL_TRANSACTION_MIX } from './transactions.js';
export type { TransactionMix } from './transactions.js';

/** The demos, in the order `keel demo all` runs them. */
export const DEMO_NAMES = ['invoice', 'fraud', 'cascade', 'chaos'] as const;

/** Demos beside those: run by name only (`keel demo support`), not by `keel demo all`. */
export const MORE_DEMO_NAMES = ['support'] as const;

/** A demo's name. */
export type DemoName = (typeof DEMO_NAMES)[number] | (typeof MORE_DEMO_NAMES)[number];

/** Any demo's result (`demo` tells which). */
export type DemoResult =
  | InvoiceDemoResult
  | InvoiceApprovalDemoResult
  | FraudDemoResult
  | CascadeDemoResult
  | ChaosDemoResult
  | SupportDemoResult;

/** What {@link runDemo} takes: every demo's options; `approveAbove` turns the invoice demo into its approval scenario. */
export interface RunDemoOptions extends SupportDemoOptions {
  /** Invoice demo only: invoices above this amount wait for a person (`waitFor('approval')`). */
  approveAbove?: number;
}

/**
 * Workflows each demo runs unless told otherwise: 1,000 invoices or transactions per run (fraud and
 * cascade run twice, once per variant; invoice four times: production, latency parallel and
 * sequential, caching); 2,400 chaos requests (10 a second over four minutes).
 */
export const DEFAULT_DEMO_COUNTS: Readonly<Record<DemoName, number>> = Object.freeze({
  invoice: 1_000,
  fraud: 1_000,
  cascade: 1_000,
  chaos: 2_400,
  support: 4,
});

/** True when `name` is a demo's name. */
export function isDemoName(name: unknown): name is DemoName {
  return (
    typeof name === 'string' &&
    ((DEMO_NAMES as readonly string[]).includes(name) ||
      (MORE_DEMO_NAMES as readonly string[]).includes(name))
  );
}

/**
 * Runs one demo by name.
 *
 * @example
 * const result = await runDemo('cascade', { db: 'keel.db', count: 500, seed: 42 });
 * console.log(formatDemo(result));
 */
export function runDemo(name: DemoName, options: RunDemoOptions): Promise<DemoResult> {
  const { approveAbove, ...rest } = options;
  if (approveAbove !== undefined && name !== 'invoice')
    return Promise.reject(
      new ConfigError(
        'approveAbove',
        `applies to the invoice demo only, not "${name}"; drop it or run the invoice demo`,
      ),
    );
  switch (name) {
    case 'invoice':
      return approveAbove === undefined
        ? runInvoiceDemo(rest)
        : runInvoiceApprovalDemo({ ...rest, approveAbove });
    case 'fraud':
      return runFraudDemo(options);
    case 'cascade':
      return runCascadeDemo(options);
    case 'chaos':
      return runChaosDemo(options);
    case 'support':
      return runSupportDemo(rest);
  }
}

/**
 * A demo result's printed summary.
 *
 * @example
 * console.log(formatDemo(await runDemo('chaos', { db: 'keel.db', count: 2_400, seed: 42 })));
 */
export function formatDemo(result: DemoResult): string {
  switch (result.demo) {
    case 'invoice':
      return formatInvoiceDemo(result);
    case 'invoice_approval':
      return formatInvoiceApprovalDemo(result);
    case 'fraud':
      return formatFraudDemo(result);
    case 'cascade':
      return formatCascadeDemo(result);
    case 'chaos':
      return formatChaosDemo(result);
    case 'support':
      return formatSupportDemo(result);
  }
}

/**
 * Every demo topology by workflow name, for `keel replay` (and `rt.replay(id, { topologies })`).
 * Recorded outputs replace the simulated models during replay, so the seed does not change what is
 * replayed; it only builds the same agents.
 *
 * @example
 * const reports = await rt.replay('all', { topologies: demoTopologies() });
 */
export function demoTopologies(seed = 42): Record<string, Topology<never, unknown>> {
  const model = simulatedInvoiceModel({ seed });
  return {
    invoice: invoiceWorkflow({ seed }),
    invoice_sequential: invoiceWorkflow({ seed, sequential: true }),
    [APPROVAL_WORKFLOW]: invoiceApprovalWorkflow({ seed }),
    ...scenarioTopologies(seed),
    fraud_full: named('fraud_full', vote(fraudScreeners({ seed }), { stop: 'all', launch: 'parallel' })),
    fraud_adaptive: named('fraud_adaptive', vote(fraudScreeners({ seed }), { stop: 'decided' })),
    [CASCADE_WORKFLOW]: named(CASCADE_WORKFLOW, vendorCascade({ provider: model, threshold: 0.9 })),
    [GPT4_ONLY_WORKFLOW]: expensiveVendorExtraction({ provider: model }),
    [CHAOS_WORKFLOW]: vendorExtraction({ provider: model, cache: false, breaker: { ...CHAOS_BREAKER } }),
    [SUPPORT_WORKFLOW]: supportTopology(seed),
  };
}

/**
 * The demos as the `keel` command takes them: bin/keel.js hands this to `runCli(argv, io, { demos })`
 * (the library never imports the demos), so `keel demo <name>` runs them and `keel replay` replays
 * their logs without `--topologies`.
 */
export const demoRegistry: DemoRegistry = Object.freeze({
  names: [...DEMO_NAMES, ...MORE_DEMO_NAMES],
  all: DEMO_NAMES,
  defaultCounts: DEFAULT_DEMO_COUNTS,
  run: (name: string, options: RunDemoOptions): Promise<DemoResult> => {
    if (!isDemoName(name)) {
      return Promise.reject(
        new TypeError(
          `unknown demo "${name}": choose one of ${[...DEMO_NAMES, ...MORE_DEMO_NAMES].join(', ')}`,
        ),
      );
    }
    return runDemo(name, options);
  },
  format: (result: { readonly demo: string }): string => formatDemo(result as DemoResult),
  topologies: () => demoTopologies(),
});
