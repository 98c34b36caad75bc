/**
 * Demo: a support agent with two tools — `lookupOrder` and a flaky `refund` — on the simulated
 * provider, its answers streamed as they are generated (`rt.run$()` deltas). Conversations run one
 * after another: the first refund goes through, then the payments API goes down (a 503, retried
 * once); the refund's breaker (`tool:payments`, 2 failures) opens, later refunds fail fast without
 * calling it, and the model answers with a fallback. Then every conversation is replayed from the log: 0 model calls and
 * 0 tool executions. Every figure printed is read back from the log file.
 */
import { lastValueFrom, tap } from 'rxjs';
import { z } from 'zod';
import { llmAgent } from '../agents/llm.js';
import {
  SYSTEM_WORKFLOW_ID,
  isRunDelta,
  named,
  simulated,
  tool,
  type EventPayloads,
  type KeelEvent,
  type ModelRequest,
} from '../src/index.js';
import {
  checkDemoOptions,
  demoClock,
  drive,
  openDemoRuntime,
  openResults,
  readRange,
  round,
  usd,
  type DemoOptions,
} from './harness.js';

/** Workflow name of the support conversations. */
export const SUPPORT_WORKFLOW = 'support';
/** The refund tool's breaker: opens after 2 failures, stays open for a minute. */
export const SUPPORT_BREAKER = Object.freeze({
  name: 'payments',
  failureThreshold: 2,
  resetTimeoutMs: 60_000,
});
/** The model every turn is priced on. */
const MODEL = 'gpt-3.5-turbo';
/** The answer when the refund could not be made. */
const FALLBACK =
  'I could not issue the refund right now: our payments system is down. It is queued, and you will get an email once it goes through.';

/** Options of the support demo: the shared ones, and where the streamed answers go. */
export interface SupportDemoOptions extends DemoOptions {
  /** Receives each piece of answer text as the model streams it (e.g. `process.stdout.write`). */
  onText?: (text: string) => void;
}

/** One conversation, as the log tells it. */
export interface SupportConversation {
  workflowId: string;
  orderId: string;
  answer: string;
  /** True when the answer is the fallback (the refund failed). */
  fallback: boolean;
  /** Model turns made (each a priced call: `cost.incurred` with `step`). */
  modelTurns: number;
  /** Tool calls: `tool:outcome`, e.g. `refund:circuit_open`. */
  tools: string[];
  costUsd: number;
  /** Streamed text pieces (deltas) seen for it; not logged. */
  deltas: number;
  ttftMs: number | undefined;
}

/** What {@link runSupportDemo} found in the log. */
export interface SupportDemoResult {
  demo: 'support';
  seed: number;
  count: number;
  db: string;
  conversations: SupportConversation[];
  /** Executions of the tools' `execute` in the live run. */
  toolExecutions: { lookupOrder: number; refund: number };
  breaker: { name: string; transitions: { from: string; to: string; reason: string }[] };
  replay: {
    workflows: number;
    divergences: number;
    /** Model calls and tool executions the replay made: both 0. */
    modelCalls: number;
    toolExecutions: number;
  };
}

/** The support agent, on a fresh simulated provider; counts executions of each tool. */
function supportAgent(seed: number) {
  const executions = { lookupOrder: 0, refund: 0 };
  const provider = simulated({
    seed,
    latencyMs: { p50: 300, p95: 600 },
    usage: { input: { mean: 400, stddev: 50 }, output: { mean: 60, stddev: 10 } },
    toolTurn: (request: ModelRequest, step: number) => {
      const orderId = orderOf(request);
      if (step === 1) return [{ name: 'lookupOrder', args: { orderId } }];
      if (step === 2) return [{ name: 'refund', args: { orderId, amountUsd: 19.5 } }];
      return undefined;
    },
    respond: (request: ModelRequest) => {
      const last = [...(request.messages ?? [])].reverse().find((m) => m.role === 'tool');
      const failed = last?.content.includes('"error"') ?? true;
      return {
        value: { reply: failed ? FALLBACK : `Done: $19.50 for order ${orderOf(request)} is refunded.` },
        confidence: failed ? 0.6 : 0.95,
      };
    },
  });
  const lookupOrder = tool({
    description: 'Looks an order up by its id',
    schema: z.object({ orderId: z.string() }),
    execute: ({ orderId }: { orderId: string }) => {
      executions.lookupOrder++;
      return { orderId, status: 'delivered', totalUsd: 19.5 };
    },
    timeoutMs: 2_000,
  });
  const refund = tool({
    description: 'Refunds an order',
    schema: z.object({ orderId: z.string(), amountUsd: z.number().positive() }),
    // The payments API answers the first refund, then goes down: a 503, retried once, then the
    // breaker opens and later refunds fail fast without calling it.
    execute: ({ orderId, amountUsd }: { orderId: string; amountUsd: number }, { idempotencyKey }) => {
      executions.refund++;
      if (executions.refund > 1)
        throw Object.assign(new Error('payments API: 503 Service Unavailable'), { status: 503 });
      return { refundId: idempotencyKey, orderId, amountUsd };
    },
    retry: { attempts: 2, baseDelayMs: 100 },
    breaker: { ...SUPPORT_BREAKER },
  });
  const support = llmAgent({
    name: 'support',
    model: MODEL,
    provider,
    prompt: (q: { orderId: string; question: string }) => q.question,
    schema: z.object({ reply: z.string() }),
    tools: { lookupOrder, refund },
    maxSteps: 4,
  });
  return { topology: named(SUPPORT_WORKFLOW, support), provider, executions };
}

/** The support workflow's topology (for `keel replay` of a support log). */
export function supportTopology(seed = 42): ReturnType<typeof supportAgent>['topology'] {
  return supportAgent(seed).topology;
}

/** The order id in the user's message. */
function orderOf(request: ModelRequest): string {
  const user = request.messages?.find((m) => m.role === 'user')?.content ?? '';
  return /A-\d+/.exec(user)?.[0] ?? 'A-0';
}

/**
 * Runs the support demo: `count` conversations, one after another, each streamed; then replays
 * each from the log.
 *
 * @example
 * const r = await runSupportDemo({ db: 'keel.db', count: 4, seed: 42, onText: (t) => process.stdout.write(t) });
 * r.replay; // { workflows: 4, divergences: 0, modelCalls: 0, toolExecutions: 0 }
 */
export async function runSupportDemo(options: SupportDemoOptions): Promise<SupportDemoResult> {
  checkDemoOptions(options);
  const clock = await demoClock(options);
  const { rt, startSeq } = await openDemoRuntime(options, clock);
  const live = supportAgent(options.seed);
  const deltas = new Map<string, { count: number }>();
  const ids: string[] = [];
  let replayed: SupportDemoResult['replay'];
  try {
    for (let i = 0; i < options.count; i++) {
      const orderId = `A-${1001 + i}`;
      const question = `Please refund my order ${orderId}, it arrived broken.`;
      options.onText?.(`\n> ${question}\n`);
      const seen = { count: 0 };
      await drive(
        clock,
        lastValueFrom(
          rt.run$(live.topology, { orderId, question }).pipe(
            tap((item) => {
              if (isRunDelta(item)) {
                seen.count++;
                options.onText?.(item.text);
              } else if (item.type === 'workflow.started') {
                ids.push(item.workflowId);
                deltas.set(item.workflowId, seen);
              }
            }),
          ),
          { defaultValue: undefined },
        ).catch(() => undefined), // a failed conversation is in the log
      );
      options.onText?.('\n');
      options.onProgress?.(i + 1, options.count);
    }
    // The replay: fresh agents, whose model and tools count what they are asked to do.
    const again = supportAgent(options.seed);
    let divergences = 0;
    for (const id of ids) {
      const [report] = await rt.replay(id, { topologies: { [SUPPORT_WORKFLOW]: again.topology } });
      divergences += report?.divergences.length ?? 1;
    }
    replayed = {
      workflows: ids.length,
      divergences,
      modelCalls: again.provider.calls(),
      toolExecutions: again.executions.lookupOrder + again.executions.refund,
    };
  } finally {
    await rt.close();
  }
  const results = openResults(options);
  try {
    const events = readRange(results, startSeq, results.lastSeq());
    return {
      demo: 'support',
      seed: options.seed,
      count: options.count,
      db: options.db,
      conversations: ids.map((id) => conversationOf(id, events, deltas.get(id)?.count ?? 0)),
      toolExecutions: { ...live.executions },
      breaker: {
        name: `tool:${SUPPORT_BREAKER.name}`,
        transitions: events
          .filter((e) => e.workflowId === SYSTEM_WORKFLOW_ID && e.type === 'breaker.transitioned')
          .map((e) => e.payload as EventPayloads['breaker.transitioned'])
          .filter((p) => p.breaker === `tool:${SUPPORT_BREAKER.name}`)
          .map((p) => ({ from: p.from, to: p.to, reason: p.reason })),
      },
      replay: replayed,
    };
  } finally {
    await results.close();
  }
}

/** One conversation's figures, from its events. */
function conversationOf(workflowId: string, all: readonly KeelEvent[], deltas: number): SupportConversation {
  const events = all.filter((e) => e.workflowId === workflowId);
  let answer = '';
  let orderId = '';
  let costUsd = 0;
  let modelTurns = 0;
  let ttftMs: number | undefined;
  const tools: string[] = [];
  for (const e of events) {
    if (e.type === 'workflow.started')
      orderId = textOf((e.payload.input as { orderId?: unknown } | null)?.orderId);
    else if (e.type === 'agent.succeeded')
      answer = textOf((e.payload.output as { reply?: unknown } | null)?.reply);
    else if (e.type === 'cost.incurred') {
      modelTurns++;
      costUsd += e.payload.costUsd;
    } else if (e.type === 'tool.succeeded') tools.push(`${e.payload.tool}:ok`);
    else if (e.type === 'tool.failed') tools.push(`${e.payload.tool}:${e.payload.category}`);
    else if (e.type === 'agent.first_token') ttftMs ??= e.payload.ttftMs;
  }
  return {
    workflowId,
    orderId,
    answer,
    fallback: answer === FALLBACK,
    modelTurns,
    tools,
    costUsd: round(costUsd, 6),
    deltas,
    ttftMs,
  };
}

/** A logged string field, or '' when it is not a string. */
function textOf(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

/**
 * The support demo's summary, as printed by `keel demo support`.
 *
 * @example
 * console.log(formatSupportDemo(await runSupportDemo({ db: 'keel.db', count: 4, seed: 42 })));
 */
export function formatSupportDemo(r: SupportDemoResult): string {
  const rows = r.conversations.map(
    (c) =>
      `  ${c.orderId.padEnd(8)} ${String(c.modelTurns).padStart(5)} ${c.tools.join(', ').padEnd(44)} ${usd(c.costUsd, 4).padStart(8)} ${(c.ttftMs === undefined ? '-' : `${c.ttftMs} ms`).padStart(8)}  ${c.fallback ? 'fallback' : 'refunded'}`,
  );
  return [
    `Support — ${r.count} conversation(s), refund tool flaky (seed ${r.seed}), log ${r.db}`,
    '',
    `  ${'order'.padEnd(8)} ${'turns'.padStart(5)} ${'tool calls'.padEnd(44)} ${'cost'.padStart(8)} ${'TTFT'.padStart(8)}  answer`,
    ...rows,
    '',
    `  tool executions: lookupOrder ${r.toolExecutions.lookupOrder}, refund ${r.toolExecutions.refund}`,
    `  breaker "${r.breaker.name}": ` +
      (r.breaker.transitions.length === 0
        ? 'no transitions'
        : r.breaker.transitions.map((t) => `${t.from} → ${t.to} (${t.reason})`).join('; ')),
    `  replay: ${r.replay.workflows} workflow(s), ${r.replay.divergences} divergence(s), ` +
      `${r.replay.modelCalls} model calls, ${r.replay.toolExecutions} tool executions`,
  ].join('\n');
}
