/**
 * Demo: a provider outage in the middle of steady traffic. Four minutes of vendor extraction at a
 * steady pace; from 60 s to 105 s every model call fails with a 503. The breaker (5 failures,
 * 60 s reset) opens, calls fail fast instead of waiting on a dead provider, one half-open probe
 * goes through once the reset timeout passes, and the breaker closes again. The log shows P95 and
 * error rate before, during and after the outage, and every breaker transition.
 */
import type { Invoice } from '../agents/invoice.js';
import { vendorExtraction } from '../agents/invoice.js';
import { simulatedInvoiceModel } from '../agents/invoice-model.js';
import { SYSTEM_WORKFLOW_ID, type BreakerState, type KeelEvent } from '../src/index.js';
import {
  checkDemoOptions,
  demoClock,
  drive,
  ms,
  openDemoRuntime,
  openResults,
  pct,
  percentile,
  readRange,
  round,
  runPaced,
  type DemoOptions,
} from './harness.js';
import { CLEAN_INVOICE_MIX, invoiceStream } from './invoices.js';

/** Workflow name of the chaos runs. */
export const CHAOS_WORKFLOW = 'chaos';
/** Length of the traffic timeline, ms: `count` requests are spread evenly over it. */
export const CHAOS_TIMELINE_MS = 240_000;
/** The outage, in ms after the first request: every call fails from 60 s to 105 s. */
export const CHAOS_OUTAGE = Object.freeze({ fromMs: 60_000, toMs: 105_000 });
/** The breaker of the demo: the tutorial's 5 failures and 60 s reset timeout. */
export const CHAOS_BREAKER = Object.freeze({ name: 'openai', failureThreshold: 5, resetTimeoutMs: 60_000 });

/** Requests started in one phase of the timeline. */
export interface ChaosPhase {
  /** Phase bounds in ms after the first request. */
  fromMs: number;
  toMs: number;
  requests: number;
  failed: number;
  errorRate: number;
  /** Calls the open breaker refused without calling the model (`agent.rejected`, `circuit_open`). */
  fastFails: number;
  /** Model calls actually made (attempts, retries included). */
  modelCalls: number;
  p50Ms: number;
  p95Ms: number;
}

/** A breaker transition, as logged. */
export interface ChaosTransition {
  /** ms after the first request. */
  atMs: number;
  from: BreakerState;
  to: BreakerState;
  reason: string;
}

/** What {@link runChaosDemo} found in the log. */
export interface ChaosDemoResult {
  demo: 'chaos';
  seed: number;
  count: number;
  db: string;
  /** ms between request starts. */
  intervalMs: number;
  outage: { fromMs: number; toMs: number };
  phases: { before: ChaosPhase; during: ChaosPhase; after: ChaosPhase };
  breaker: {
    name: string;
    transitions: ChaosTransition[];
    /** Times it opened. */
    opened: number;
    /** Times it went half-open (each lets one probe through). */
    probes: number;
    /** When it closed again after the outage, ms after the first request (null if it did not). */
    recoveredAtMs: number | null;
  };
}

interface Tracked {
  phase: 'before' | 'during' | 'after';
  latencyMs?: number;
  failed: boolean;
}

function phaseOf(atMs: number): Tracked['phase'] {
  return atMs < CHAOS_OUTAGE.fromMs ? 'before' : atMs < CHAOS_OUTAGE.toMs ? 'during' : 'after';
}

function analyse(
  options: DemoOptions,
  events: readonly KeelEvent[],
  t0: number,
  intervalMs: number,
): ChaosDemoResult {
  const byId = new Map<string, Tracked>();
  const counts = {
    before: { fastFails: 0, modelCalls: 0 },
    during: { fastFails: 0, modelCalls: 0 },
    after: { fastFails: 0, modelCalls: 0 },
  };
  const transitions: ChaosTransition[] = [];
  for (const e of events) {
    if (e.workflowId === SYSTEM_WORKFLOW_ID) {
      if (e.type === 'breaker.transitioned' && e.payload.breaker === CHAOS_BREAKER.name)
        transitions.push({
          atMs: e.ts - t0,
          from: e.payload.from,
          to: e.payload.to,
          reason: e.payload.reason,
        });
      continue;
    }
    if (e.type === 'workflow.started' && e.payload.name === CHAOS_WORKFLOW) {
      byId.set(e.workflowId, { phase: phaseOf(e.ts - t0), failed: false });
      continue;
    }
    const w = byId.get(e.workflowId);
    if (!w) continue;
    if (e.type === 'workflow.completed') w.latencyMs = e.payload.latencyMs;
    else if (e.type === 'workflow.failed') {
      w.latencyMs = e.payload.latencyMs;
      w.failed = true;
    } else if (e.type === 'agent.rejected' && e.payload.category === 'circuit_open')
      counts[w.phase].fastFails++;
    else if (e.type === 'cost.incurred') counts[w.phase].modelCalls++;
  }
  const phase = (name: Tracked['phase'], fromMs: number, toMs: number): ChaosPhase => {
    const latencies: number[] = [];
    let failed = 0;
    for (const w of byId.values()) {
      if (w.phase !== name) continue;
      latencies.push(w.latencyMs ?? 0);
      if (w.failed) failed++;
    }
    latencies.sort((a, b) => a - b);
    return {
      fromMs,
      toMs,
      requests: latencies.length,
      failed,
      errorRate: latencies.length ? round(failed / latencies.length) : 0,
      fastFails: counts[name].fastFails,
      modelCalls: counts[name].modelCalls,
      p50Ms: percentile(latencies, 50),
      p95Ms: percentile(latencies, 95),
    };
  };
  const end = options.count * intervalMs;
  const recovered = transitions.find((t) => t.to === 'closed' && t.atMs >= CHAOS_OUTAGE.fromMs);
  return {
    demo: 'chaos',
    seed: options.seed,
    count: options.count,
    db: options.db,
    intervalMs,
    outage: { ...CHAOS_OUTAGE },
    phases: {
      before: phase('before', 0, CHAOS_OUTAGE.fromMs),
      during: phase('during', CHAOS_OUTAGE.fromMs, CHAOS_OUTAGE.toMs),
      after: phase('after', CHAOS_OUTAGE.toMs, Math.max(end, CHAOS_OUTAGE.toMs)),
    },
    breaker: {
      name: CHAOS_BREAKER.name,
      transitions,
      opened: transitions.filter((t) => t.to === 'open').length,
      probes: transitions.filter((t) => t.to === 'halfOpen').length,
      recoveredAtMs: recovered ? recovered.atMs : null,
    },
  };
}

/**
 * Runs the chaos demo: `count` vendor extractions of clean invoices spread evenly over four
 * minutes, with a provider outage from 60 s to 105 s. At least ~100 requests are needed for the
 * outage to see the 5 failures that open the breaker.
 *
 * @example
 * const result = await runChaosDemo({ db: 'keel.db', count: 2_400, seed: 42 }); // 10 requests a second
 * result.breaker.transitions.map((t) => t.to); // ['open', 'halfOpen', 'closed']
 */
export async function runChaosDemo(options: DemoOptions): Promise<ChaosDemoResult> {
  checkDemoOptions(options);
  const clock = await demoClock(options);
  const t0 = clock.now();
  const intervalMs = CHAOS_TIMELINE_MS / options.count;
  const provider = simulatedInvoiceModel({
    seed: options.seed,
    faults: [{ fromMs: t0 + CHAOS_OUTAGE.fromMs, toMs: t0 + CHAOS_OUTAGE.toMs, kind: 'provider_error' }],
  });
  const extract = vendorExtraction({ provider, cache: false, breaker: { ...CHAOS_BREAKER } });
  const { rt, startSeq } = await openDemoRuntime(options, clock);
  try {
    const invoices = invoiceStream({
      seed: options.seed,
      count: options.count,
      mix: CLEAN_INVOICE_MIX,
      nowMs: t0,
    });
    await drive(
      clock,
      runPaced(
        invoices,
        options.count,
        intervalMs,
        clock,
        (invoice: Invoice) => rt.run(extract, invoice, { name: CHAOS_WORKFLOW }),
        options.onProgress,
      ),
    );
  } finally {
    await rt.close();
  }
  const results = openResults(options);
  try {
    return analyse(options, readRange(results, startSeq, results.lastSeq()), t0, intervalMs);
  } finally {
    await results.close();
  }
}

/**
 * The chaos demo's summary, as printed by `keel demo chaos`.
 *
 * @example
 * console.log(formatChaosDemo(await runChaosDemo({ db: 'keel.db', count: 2_400, seed: 1 })));
 */
export function formatChaosDemo(r: ChaosDemoResult): string {
  const row = (label: string, p: ChaosPhase): string =>
    `  ${label.padEnd(26)} ${String(p.requests).padStart(8)} ${pct(p.errorRate).padStart(7)} ${ms(p.p50Ms).padStart(8)} ${ms(p.p95Ms).padStart(8)} ${String(p.modelCalls).padStart(11)} ${String(p.fastFails).padStart(10)}`;
  const span = (p: ChaosPhase): string => `${ms(p.fromMs)}–${ms(p.toMs)}`;
  return [
    `Chaos — ${r.count.toLocaleString('en-US')} requests over ${ms(CHAOS_TIMELINE_MS)}, provider outage ${ms(r.outage.fromMs)}–${ms(r.outage.toMs)} (seed ${r.seed}), log ${r.db}`,
    '',
    `  ${'phase'.padEnd(26)} ${'requests'.padStart(8)} ${'errors'.padStart(7)} ${'P50'.padStart(8)} ${'P95'.padStart(8)} ${'model calls'.padStart(11)} ${'fast-fails'.padStart(10)}`,
    row(`before (${span(r.phases.before)})`, r.phases.before),
    row(`during (${span(r.phases.during)})`, r.phases.during),
    row(`after (${span(r.phases.after)})`, r.phases.after),
    '',
    `  breaker "${r.breaker.name}": opened ${r.breaker.opened}×, ${r.breaker.probes} half-open probe(s), ` +
      (r.breaker.recoveredAtMs === null ? 'not recovered' : `closed again at ${ms(r.breaker.recoveredAtMs)}`),
    ...r.breaker.transitions.map((t) => `    ${ms(t.atMs).padStart(8)}  ${t.from} → ${t.to}  (${t.reason})`),
  ].join('\n');
}
