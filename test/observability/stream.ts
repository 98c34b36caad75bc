/**
 * A realistic synthetic event stream for the observability tests: what the runtime commits for an
 * invoice workflow (parallel extraction, a cache hit, a timeout and retry), an early-stopping fraud
 * vote, two cascades (one escalates), a payment workflow that fails and opens a breaker, a call the
 * open breaker rejects, a budget alert and monitor alerts.
 */
import {
  DEFAULT_EVENT_CLASS,
  EVENT_VERSIONS,
  SYSTEM_WORKFLOW_ID,
  type EventPayloads,
  type KeelEvent,
  type KeelEventType,
} from '../../src/eventlog/events.js';

/** Appends events with increasing `seq` and `ts`, like the store does. */
export class StreamBuilder {
  readonly events: KeelEvent[] = [];
  constructor(
    private seq = 1,
    public ts = Date.UTC(2026, 0, 1, 9),
  ) {}

  add<T extends KeelEventType>(
    type: T,
    workflowId: string,
    payload: EventPayloads[T],
    afterMs = 0,
  ): KeelEvent<T> {
    this.ts += afterMs;
    const event = {
      seq: this.seq++,
      ts: this.ts,
      workflowId,
      type,
      v: EVENT_VERSIONS[type],
      class: DEFAULT_EVENT_CLASS[type],
      payload,
    } as unknown as KeelEvent<T>;
    this.events.push(event as KeelEvent);
    return event;
  }
}

const usage = { inputTokens: 800, outputTokens: 200 };

/** One round of traffic; `round` keeps workflow ids distinct across calls. */
export function syntheticRound(b: StreamBuilder, round: number): void {
  // ── invoice: vendor (miss, one call), amount (cache hit), route (timeout, retry, success) ────
  const inv = `wf-invoice-${round}`;
  b.add('workflow.started', inv, {
    name: 'invoice',
    topology: { kind: 'seq' },
    input: { invoice: 'INV-1' },
    inputHash: 'h1',
  });
  const vendor = 'invoice/seq[0]/par[0]/vendor_extraction';
  b.add(
    'agent.invoked',
    inv,
    { path: vendor, agent: 'vendor_extraction', agentVersion: '1', taskType: 'vendor', model: 'gpt-4' },
    1,
  );
  b.add('cache.miss', inv, { path: vendor, agent: 'vendor_extraction', key: 'k1' }, 1);
  b.add(
    'cost.reserved',
    inv,
    { path: vendor, agent: 'vendor_extraction', model: 'gpt-4', taskType: 'vendor', estimateUsd: 0.045 },
    1,
  );
  b.add(
    'cost.incurred',
    inv,
    {
      path: vendor,
      agent: 'vendor_extraction',
      model: 'gpt-4',
      taskType: 'vendor',
      attempt: 1,
      usage,
      costUsd: 0.03,
      estimateUsd: 0.045,
    },
    2_500,
  );
  b.add('agent.succeeded', inv, {
    path: vendor,
    agent: 'vendor_extraction',
    taskType: 'vendor',
    model: 'gpt-4',
    output: { vendor: 'Acme Corp' },
    confidence: 0.95,
    attempts: 1,
    latencyMs: 2_502,
    usage,
    costUsd: 0.03,
  });
  const amount = 'invoice/seq[0]/par[1]/amount_extraction';
  b.add(
    'agent.invoked',
    inv,
    { path: amount, agent: 'amount_extraction', taskType: 'payment', model: 'gpt-4' },
    1,
  );
  b.add(
    'cache.hit',
    inv,
    { path: amount, agent: 'amount_extraction', key: 'k2', ageMs: 60_000, savedUsd: 0.03 },
    1,
  );
  b.add('agent.succeeded', inv, {
    path: amount,
    agent: 'amount_extraction',
    taskType: 'payment',
    model: 'gpt-4',
    output: { amount: 1200 },
    confidence: 0.99,
    attempts: 0,
    latencyMs: 1,
    usage: { inputTokens: 0, outputTokens: 0 },
    costUsd: 0,
    cached: true,
  });
  const route = 'invoice/seq[1]/routing';
  b.add(
    'agent.invoked',
    inv,
    { path: route, agent: 'routing', taskType: 'routing', model: 'gpt-3.5-turbo' },
    1,
  );
  b.add('cache.miss', inv, { path: route, agent: 'routing', key: 'k3' });
  b.add(
    'cost.reserved',
    inv,
    { path: route, agent: 'routing', model: 'gpt-3.5-turbo', taskType: 'routing', estimateUsd: 0.003 },
    1,
  );
  b.add('agent.timed_out', inv, { path: route, agent: 'routing', attempt: 1, timeoutMs: 10_000 }, 10_000);
  b.add('agent.retried', inv, {
    path: route,
    agent: 'routing',
    attempt: 1,
    category: 'timeout',
    message: 'attempt timed out',
    delayMs: 200,
  });
  b.add(
    'cost.reserved',
    inv,
    { path: route, agent: 'routing', model: 'gpt-3.5-turbo', taskType: 'routing', estimateUsd: 0.003 },
    200,
  );
  b.add(
    'cost.incurred',
    inv,
    {
      path: route,
      agent: 'routing',
      model: 'gpt-3.5-turbo',
      taskType: 'routing',
      attempt: 2,
      usage: { inputTokens: 500, outputTokens: 100 },
      costUsd: 0.0012,
      estimateUsd: 0.003,
    },
    1_300,
  );
  b.add('agent.succeeded', inv, {
    path: route,
    agent: 'routing',
    taskType: 'routing',
    model: 'gpt-3.5-turbo',
    output: 'ap-queue',
    confidence: 0.9,
    attempts: 2,
    latencyMs: 11_501,
    usage: { inputTokens: 500, outputTokens: 100 },
    costUsd: 0.0012,
  });
  b.add(
    'workflow.completed',
    inv,
    {
      output: { vendor: 'Acme Corp', amount: 1200, queue: 'ap-queue' },
      latencyMs: 14_012,
      costUsd: 0.0312,
      agentsCalled: 3,
    },
    1,
  );

  // ── fraud vote: 3 of 5 screeners agree, the vote stops early ─────────────────────────────────
  const fraud = `wf-fraud-${round}`;
  b.add(
    'workflow.started',
    fraud,
    { name: 'fraud_vote', topology: { kind: 'vote' }, input: { invoice: 'INV-1' }, inputHash: 'h2' },
    5,
  );
  for (let i = 0; i < 3; i++) {
    const path = `fraud_vote/vote/fraud_screen_${i}`;
    const agent = `fraud_screen_${i}`;
    b.add('agent.invoked', fraud, { path, agent, taskType: 'fraud', model: 'gpt-3.5-turbo' }, 1);
    b.add(
      'cost.incurred',
      fraud,
      {
        path,
        agent,
        model: 'gpt-3.5-turbo',
        taskType: 'fraud',
        attempt: 1,
        usage,
        costUsd: 0.002,
        estimateUsd: 0.003,
      },
      900,
    );
    b.add('agent.succeeded', fraud, {
      path,
      agent,
      taskType: 'fraud',
      model: 'gpt-3.5-turbo',
      output: 'legit',
      confidence: 0.8,
      attempts: 1,
      latencyMs: 901,
      usage,
      costUsd: 0.002,
    });
    b.add('vote.cast', fraud, { path: 'fraud_vote/vote', agent, value: 'legit', weight: 1, index: i });
  }
  b.add('vote.early_stop', fraud, {
    path: 'fraud_vote/vote',
    cast: 3,
    total: 5,
    leader: 'legit',
    skipped: 2,
  });
  b.add('vote.decided', fraud, {
    path: 'fraud_vote/vote',
    value: 'legit',
    confidence: 1,
    agentsUsed: 3,
    total: 5,
    savedUsd: 0.004,
  });
  b.add(
    'workflow.completed',
    fraud,
    { output: 'legit', latencyMs: 2_705, costUsd: 0.006, agentsCalled: 3 },
    1,
  );

  // ── cascades: one escalates to gpt-4, one is accepted at the cheap stage ────────────────────
  for (const escalate of [true, false]) {
    const wf = `wf-cascade-${escalate ? 'up' : 'flat'}-${round}`;
    b.add(
      'workflow.started',
      wf,
      { name: 'vendor_cascade', topology: { kind: 'cascade' }, input: { invoice: 'INV-2' }, inputHash: 'h3' },
      5,
    );
    const cheap = 'vendor_cascade/cascade[0]/vendor_cheap';
    b.add(
      'agent.invoked',
      wf,
      { path: cheap, agent: 'vendor_cheap', taskType: 'vendor', model: 'gpt-3.5-turbo' },
      1,
    );
    b.add(
      'cost.incurred',
      wf,
      {
        path: cheap,
        agent: 'vendor_cheap',
        model: 'gpt-3.5-turbo',
        taskType: 'vendor',
        attempt: 1,
        usage,
        costUsd: 0.002,
        estimateUsd: 0.003,
      },
      700,
    );
    b.add('agent.succeeded', wf, {
      path: cheap,
      agent: 'vendor_cheap',
      taskType: 'vendor',
      model: 'gpt-3.5-turbo',
      output: 'Acme',
      confidence: escalate ? 0.6 : 0.93,
      attempts: 1,
      latencyMs: 701,
      usage,
      costUsd: 0.002,
    });
    if (escalate) {
      b.add('cascade.escalated', wf, {
        path: 'vendor_cascade/cascade',
        fromStage: 0,
        toStage: 1,
        fromAgent: 'vendor_cheap',
        toAgent: 'vendor_strong',
        confidence: 0.6,
        reason: 'confidence 0.6 < 0.9',
      });
      const strong = 'vendor_cascade/cascade[1]/vendor_strong';
      b.add(
        'agent.invoked',
        wf,
        { path: strong, agent: 'vendor_strong', taskType: 'vendor', model: 'gpt-4' },
        1,
      );
      b.add(
        'cost.incurred',
        wf,
        {
          path: strong,
          agent: 'vendor_strong',
          model: 'gpt-4',
          taskType: 'vendor',
          attempt: 1,
          usage,
          costUsd: 0.03,
          estimateUsd: 0.045,
        },
        3_000,
      );
      b.add('agent.succeeded', wf, {
        path: strong,
        agent: 'vendor_strong',
        taskType: 'vendor',
        model: 'gpt-4',
        output: 'Acme Corp',
        confidence: 0.95,
        attempts: 1,
        latencyMs: 3_001,
        usage,
        costUsd: 0.03,
      });
    }
    b.add('cascade.accepted', wf, {
      path: 'vendor_cascade/cascade',
      stage: escalate ? 1 : 0,
      agent: escalate ? 'vendor_strong' : 'vendor_cheap',
      confidence: escalate ? 0.95 : 0.93,
      savedUsd: escalate ? 0 : 0.028,
    });
    b.add(
      'workflow.completed',
      wf,
      {
        output: 'Acme Corp',
        latencyMs: escalate ? 3_705 : 702,
        costUsd: escalate ? 0.032 : 0.002,
        agentsCalled: escalate ? 2 : 1,
      },
      1,
    );
  }

  // ── payment: the provider fails twice, the breaker opens, the next call is rejected ─────────
  const pay = `wf-payment-${round}`;
  const payPath = 'payment_check/payment_extraction';
  b.add(
    'workflow.started',
    pay,
    { name: 'payment_check', topology: { kind: 'agent' }, input: { invoice: 'INV-3' }, inputHash: 'h4' },
    5,
  );
  b.add(
    'agent.invoked',
    pay,
    { path: payPath, agent: 'payment_extraction', taskType: 'payment', model: 'gpt-4' },
    1,
  );
  b.add('cost.reserved', pay, {
    path: payPath,
    agent: 'payment_extraction',
    model: 'gpt-4',
    taskType: 'payment',
    estimateUsd: 0.045,
  });
  b.add(
    'agent.retried',
    pay,
    {
      path: payPath,
      agent: 'payment_extraction',
      attempt: 1,
      category: 'provider_error',
      message: 'HTTP 503',
      delayMs: 400,
    },
    300,
  );
  b.add(
    'agent.failed',
    pay,
    {
      path: payPath,
      agent: 'payment_extraction',
      taskType: 'payment',
      model: 'gpt-4',
      category: 'provider_error',
      message: 'HTTP 503 after 2 attempts',
      attempts: 2,
      latencyMs: 1_000,
      costUsd: 0,
    },
    700,
  );
  b.add('breaker.transitioned', SYSTEM_WORKFLOW_ID, {
    breaker: 'openai',
    from: 'closed',
    to: 'open',
    reason: '5 consecutive failures',
    failures: 5,
  });
  b.add(
    'workflow.failed',
    pay,
    {
      category: 'provider_error',
      message: 'payment_extraction failed',
      path: payPath,
      latencyMs: 1_002,
      costUsd: 0,
      agentsCalled: 1,
    },
    1,
  );
  const rej = `wf-payment-rejected-${round}`;
  b.add(
    'workflow.started',
    rej,
    { name: 'payment_check', topology: { kind: 'agent' }, input: { invoice: 'INV-4' }, inputHash: 'h5' },
    5,
  );
  b.add(
    'agent.invoked',
    rej,
    { path: payPath, agent: 'payment_extraction', taskType: 'payment', model: 'gpt-4' },
    1,
  );
  b.add('agent.rejected', rej, {
    path: payPath,
    agent: 'payment_extraction',
    taskType: 'payment',
    category: 'circuit_open',
    reason: 'breaker openai is open',
  });
  b.add(
    'workflow.failed',
    rej,
    {
      category: 'circuit_open',
      message: 'payment_extraction rejected',
      path: payPath,
      latencyMs: 2,
      costUsd: 0,
      agentsCalled: 1,
    },
    1,
  );
  b.add('breaker.transitioned', SYSTEM_WORKFLOW_ID, {
    breaker: 'anthropic',
    from: 'open',
    to: 'halfOpen',
    reason: 'reset timeout elapsed',
    failures: 0,
  });

  // ── budget and monitor alerts ────────────────────────────────────────────────────────────────
  b.add('budget.alert', SYSTEM_WORKFLOW_ID, {
    scope: 'model:gpt-4',
    threshold: 0.8,
    spentUsd: 40,
    limitUsd: 50,
    day: '2026-01-01',
  });
  b.add('alert.raised', SYSTEM_WORKFLOW_ID, {
    id: `a-budget-${round}`,
    kind: 'budget',
    severity: 'high',
    title: 'gpt-4 budget at 80%',
    data: {},
  });
  b.add('alert.raised', SYSTEM_WORKFLOW_ID, {
    id: `a-err-${round}`,
    kind: 'error_rate',
    severity: 'critical',
    title: 'payment error rate above target',
    data: {},
  });
}

/** A full synthetic stream of `rounds` rounds. */
export function syntheticStream(rounds = 1, builder = new StreamBuilder()): KeelEvent[] {
  for (let r = 0; r < rounds; r++) syntheticRound(builder, r);
  return builder.events;
}
