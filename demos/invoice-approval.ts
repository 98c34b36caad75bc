/**
 * Demo: the invoice pipeline with a person in the loop (`keel demo invoice --approve-above 10000`).
 * Every invoice goes through `named('invoice', seq(par(vendor, amount, date), validate, route))`;
 * one whose amount is above the threshold then waits for a person with
 * `waitFor('approval', { timeoutMs, schema })`: its workflow is suspended durably (a
 * `workflow.waiting` event, nothing held in memory) and the demo exits. The approval arrives later,
 * from another process — `keel signal --db keel.db <workflowId> approval '{"approved":true}'` — and
 * the workflow ends there; unanswered for {@link APPROVAL_TIMEOUT_MS}, the next `keel resume` fails it
 * with category `timeout`.
 *
 * Virtual time starts at the wall clock's now (or an hour after the log's last event), so the
 * timeout recorded in the log is a real deadline for the `keel signal` that follows.
 */
import { existsSync } from 'node:fs';
import { z } from 'zod';
import type { Invoice } from '../agents/invoice.js';
import { invoiceWorkflow, type ProcessedInvoice } from '../agents/invoice-workflow.js';
import {
  ConfigError,
  branch,
  map,
  named,
  openSqliteStore,
  parWith,
  realClock,
  seq,
  simulatedClock,
  waitFor,
  type Clock,
  type Composite,
} from '../src/index.js';
import { isWorkflowWaitingError } from '../src/errors.js';
import { checkDemoOptions, drive, openDemoRuntime, type DemoOptions } from './harness.js';
import { CLEAN_INVOICE_MIX, invoiceStream } from './invoices.js';

/** Workflow name of the approval scenario (`keel signal` and `keel resume` find it by this name). */
export const APPROVAL_WORKFLOW = 'invoice_approval';
/** How long a person has to answer: 72 hours. Part of the topology (a change is a new version). */
export const APPROVAL_TIMEOUT_MS = 72 * 3_600_000;
/** What a person answers: approved or not, optionally who and why. */
export const APPROVAL_SCHEMA = z.object({
  approved: z.boolean(),
  by: z.string().optional(),
  note: z.string().optional(),
});
/** A person's answer. */
export type ApprovalDecision = z.infer<typeof APPROVAL_SCHEMA>;

/** The workflow's input: an invoice and the amount above which it waits for a person. */
export type ApprovalRequest = Invoice & { approveAbove: number };

/** What the workflow returns: the processed invoice and how it was approved. */
export type ApprovedInvoice = ProcessedInvoice & {
  approval: ApprovalDecision | { approved: true; by: 'auto' };
};

/**
 * `invoice_approval`: the invoice pipeline, then — for an amount above `input.approveAbove` — a
 * wait for the `approval` signal. The threshold travels in the input (recorded at the start), so a
 * resumed or signalled workflow decides as it did when it started.
 *
 * @example
 * const flow = invoiceApprovalWorkflow({ seed: 42 });
 * await rt.run(flow, { ...invoice, approveAbove: 10_000 }); // rejects with WorkflowWaitingError above it
 */
export function invoiceApprovalWorkflow(
  options: { seed?: number } = {},
): Composite<ApprovalRequest, ApprovedInvoice> {
  type Carried = ProcessedInvoice & { approveAbove: number };
  const pipeline = parWith<ApprovalRequest, Carried>(
    {
      join: ([request, processed]) => ({
        ...(processed as ProcessedInvoice),
        approveAbove: (request as ApprovalRequest).approveAbove,
      }),
    },
    map((request: ApprovalRequest) => request),
    invoiceWorkflow({ seed: options.seed ?? 0 }),
  );
  const withoutThreshold = ({ approveAbove: _threshold, ...invoice }: Carried): ProcessedInvoice => invoice;
  const person = parWith<Carried, ApprovedInvoice>(
    {
      join: ([invoice, decision]) => ({
        ...withoutThreshold(invoice as Carried),
        approval: decision as ApprovalDecision,
      }),
    },
    map((invoice: Carried) => invoice),
    waitFor('approval', { timeoutMs: APPROVAL_TIMEOUT_MS, schema: APPROVAL_SCHEMA }),
  );
  const automatic = map((invoice: Carried): ApprovedInvoice => ({
    ...withoutThreshold(invoice),
    approval: { approved: true, by: 'auto' },
  }));
  return named(
    APPROVAL_WORKFLOW,
    seq(
      pipeline,
      branch((invoice: Carried) => invoice.amount > invoice.approveAbove, person, automatic),
    ),
  );
}

/** Options of {@link runInvoiceApprovalDemo}. */
export interface InvoiceApprovalDemoOptions extends DemoOptions {
  /** Invoices above this amount wait for a person, a number >= 0 (e.g. 10_000). */
  approveAbove: number;
}

/** One invoice waiting for a person. */
export interface WaitingInvoice {
  workflowId: string;
  invoiceId: string;
  vendor: string;
  amount: number;
  currency: string;
  /** Until when a signal is accepted (ms since epoch). */
  timeoutAt: number;
  /** The exact command that approves it. */
  approve: string;
}

/** What {@link runInvoiceApprovalDemo} did. */
export interface InvoiceApprovalDemoResult {
  demo: 'invoice_approval';
  seed: number;
  count: number;
  db: string;
  approveAbove: number;
  timeoutMs: number;
  /** Approved without a person (at or under the threshold). */
  autoApproved: number;
  /** Waiting for a person, in invoice order. */
  waiting: WaitingInvoice[];
  /** Failed in the pipeline (extraction, validation, routing). */
  failed: number;
}

/** Quotes an argument for a POSIX shell when it needs it. */
function shellArg(s: string): string {
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`;
}

/** Virtual time starting at the wall clock's now, or an hour after the log's last event when later. */
async function approvalClock(options: DemoOptions): Promise<Clock> {
  if (options.clock) return options.clock;
  let start = realClock.now();
  if (existsSync(options.db)) {
    const store = openSqliteStore({ path: options.db, readonly: true });
    try {
      const last = store.query({ afterSeq: Math.max(0, store.lastSeq() - 1) })[0];
      if (last && last.ts + 3_600_000 > start) start = last.ts + 3_600_000;
    } finally {
      await store.close();
    }
  }
  return simulatedClock(start);
}

/**
 * Runs `count` clean invoices through {@link invoiceApprovalWorkflow}; those above `approveAbove`
 * are left waiting in the log for `keel signal`.
 *
 * @example
 * const r = await runInvoiceApprovalDemo({ db: 'keel.db', count: 200, seed: 42, approveAbove: 10_000 });
 * console.log(r.waiting.map((w) => w.approve).join('\n'));
 */
export async function runInvoiceApprovalDemo(
  options: InvoiceApprovalDemoOptions,
): Promise<InvoiceApprovalDemoResult> {
  checkDemoOptions(options);
  const { approveAbove, count, seed, db } = options;
  if (typeof approveAbove !== 'number' || !Number.isFinite(approveAbove) || approveAbove < 0)
    throw new ConfigError(
      'approveAbove',
      `must be an amount >= 0 above which invoices wait for a person, e.g. 10000; got ${String(approveAbove)}`,
    );
  const clock = await approvalClock(options);
  const workflow = invoiceApprovalWorkflow({ seed });
  const { rt } = await openDemoRuntime(options, clock);
  const waitingIds: { workflowId: string; invoiceId: string }[] = [];
  let autoApproved = 0;
  let failed = 0;
  try {
    const work = async (): Promise<void> => {
      let done = 0;
      const runs: Promise<void>[] = [];
      for (const invoice of {
        [Symbol.iterator]: () => invoiceStream({ seed, count, mix: CLEAN_INVOICE_MIX, nowMs: clock.now() }),
      }) {
        const workflowId = `approval-${seed}-${invoice.id}`;
        runs.push(
          rt
            .run(workflow, { ...invoice, approveAbove }, { workflowId })
            .then(
              () => {
                autoApproved++;
              },
              (e: unknown) => {
                if (isWorkflowWaitingError(e)) waitingIds.push({ workflowId, invoiceId: invoice.id });
                else if (typeof (e as { category?: unknown } | null)?.category === 'string') failed++;
                else throw e;
              },
            )
            .finally(() => options.onProgress?.(++done, count)),
        );
      }
      await Promise.all(runs);
    };
    await drive(clock, work());
  } finally {
    await rt.close();
  }
  // What each waiting workflow extracted, and its deadline, read back from the log.
  const store = openSqliteStore({ path: db, readonly: true });
  const waiting: WaitingInvoice[] = [];
  try {
    for (const { workflowId, invoiceId } of waitingIds) {
      const events = store.query({ workflowId });
      const wait = events.find((e) => e.type === 'workflow.waiting');
      const fields: Record<string, unknown> = {};
      for (const e of events) {
        if (e.type === 'agent.succeeded' && typeof e.payload.output === 'object' && e.payload.output !== null)
          Object.assign(fields, e.payload.output);
      }
      const dbFlag = db === 'keel.db' ? '' : ` --db ${shellArg(db)}`;
      waiting.push({
        workflowId,
        invoiceId,
        vendor: typeof fields.vendor === 'string' ? fields.vendor : '?',
        amount: typeof fields.amount === 'number' ? fields.amount : Number.NaN,
        currency: typeof fields.currency === 'string' ? fields.currency : '',
        timeoutAt: wait?.type === 'workflow.waiting' ? (wait.payload.timeoutAt ?? 0) : 0,
        approve: `keel signal${dbFlag} ${shellArg(workflowId)} approval '{"approved":true}'`,
      });
    }
  } finally {
    await store.close();
  }
  waiting.sort((a, b) => a.invoiceId.localeCompare(b.invoiceId));
  return {
    demo: 'invoice_approval',
    seed,
    count,
    db,
    approveAbove,
    timeoutMs: APPROVAL_TIMEOUT_MS,
    autoApproved,
    waiting,
    failed,
  };
}

/** The approval demo's printed summary: who waits, and the exact commands that answer. */
export function formatInvoiceApprovalDemo(r: InvoiceApprovalDemoResult): string {
  const hours = r.timeoutMs / 3_600_000;
  const dbFlag = r.db === 'keel.db' ? '' : ` --db ${shellArg(r.db)}`;
  const lines = [
    `Invoice approvals — invoices above ${r.approveAbove.toLocaleString('en-US')} wait for a person (${hours} h to answer)`,
    `  ${r.count} invoices: ${r.autoApproved} approved automatically, ${r.waiting.length} waiting for approval, ${r.failed} failed`,
  ];
  if (r.waiting.length > 0) {
    lines.push('', '  Waiting (the process has exited; the log holds them):');
    for (const w of r.waiting) {
      const amount = `${w.currency} ${w.amount.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;
      lines.push(`    ${w.workflowId}  ${w.vendor}  ${amount}  until ${new Date(w.timeoutAt).toISOString()}`);
    }
    lines.push('', '  Approve one (from any process, after any restart):');
    for (const w of r.waiting) lines.push(`    ${w.approve}`);
    lines.push(
      '',
      `  Reject with '{"approved":false}'. List them: keel workflows${dbFlag} --status waiting.`,
      `  Unanswered after ${hours} h, keel resume${dbFlag} fails them with category timeout.`,
    );
  }
  return lines.join('\n');
}
