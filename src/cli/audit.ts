/**
 * `keel audit verify|anchor|query|trace` and `keel retention apply`: the auditor's commands. Every
 * read opens the log read-only.
 */
import { readFileSync, existsSync } from 'node:fs';
import type { Command } from 'commander';
import {
  ERROR_CATEGORIES,
  isKnownEventType,
  type ErrorCategory,
  type KeelEvent,
  type KeelEventType,
} from '../eventlog/events.js';
import type { ChainHeads, EventFilter, EventStream } from '../eventlog/store.js';
import { realClock } from '../core/clock.js';
import {
  CliError,
  EXIT,
  STORE_OPTION_HELP,
  SCHEMA_OPTION_HELP,
  logName,
  openLog,
  positiveInt,
  timeArg,
  type Io,
  type LogFlags,
} from './io.js';

/** What `keel audit anchor` prints and `verify --anchor` checks. */
export interface AnchorRecord {
  db: string;
  at: string;
  heads: ChainHeads;
}

function readAnchor(value: string): AnchorRecord {
  const text = existsSync(value) ? readFileSync(value, 'utf8') : value;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new CliError(
      `--anchor must be the JSON printed by "keel audit anchor" (or a file holding it); could not parse it`,
    );
  }
  const heads = (parsed as { heads?: unknown }).heads as ChainHeads | undefined;
  if (!heads || typeof heads.audit?.seq !== 'number' || typeof heads.audit.hash !== 'string') {
    throw new CliError(
      '--anchor is missing heads.audit.{seq,hash}: use the JSON printed by "keel audit anchor"',
    );
  }
  return parsed as AnchorRecord;
}

/** The payload fields that matter for a one-line decision trace. */
function summary(e: KeelEvent): string {
  const p = e.payload as Record<string, unknown>;
  const pick = (...keys: string[]): string =>
    keys
      .filter((k) => p[k] !== undefined)
      .map((k) => `${k}=${typeof p[k] === 'string' ? p[k] : JSON.stringify(p[k])}`)
      .join(' ');
  switch (e.type) {
    case 'workflow.started':
      return pick('name', 'inputHash');
    case 'workflow.completed':
      return pick('output', 'costUsd', 'latencyMs', 'agentsCalled');
    case 'workflow.failed':
      return pick('category', 'message', 'costUsd', 'latencyMs');
    case 'agent.invoked':
      return pick('path', 'model');
    case 'agent.succeeded':
      return pick('path', 'output', 'confidence', 'attempts', 'costUsd', 'cached');
    case 'agent.failed':
      return pick('path', 'category', 'message', 'attempts');
    case 'agent.retried':
      return pick('path', 'attempt', 'category', 'delayMs');
    case 'agent.rejected':
      return pick('path', 'category', 'reason');
    case 'cost.incurred':
      return pick('path', 'model', 'attempt', 'costUsd', 'usage');
    case 'cache.hit':
    case 'cache.miss':
    case 'cache.stale_served':
      return pick('path', 'ageMs', 'savedUsd', 'reason');
    case 'vote.cast':
      return pick('path', 'agent', 'value', 'weight');
    case 'vote.early_stop':
      return pick('path', 'cast', 'total', 'skipped', 'leader');
    case 'vote.decided':
      return pick('path', 'value', 'confidence', 'agentsUsed', 'savedUsd');
    case 'cascade.escalated':
      return pick('path', 'fromAgent', 'toAgent', 'confidence', 'reason');
    case 'cascade.accepted':
      return pick('path', 'stage', 'agent', 'confidence', 'savedUsd');
    default:
      return JSON.stringify(p);
  }
}

function filterFromOptions(o: {
  workflow?: string;
  type?: string[];
  from?: string;
  to?: string;
  limit?: string;
}): EventFilter {
  const filter: EventFilter = {};
  if (o.workflow) filter.workflowId = o.workflow;
  if (o.type?.length) {
    for (const t of o.type) {
      if (!isKnownEventType(t))
        throw new CliError(`--type "${t}" is not an event type; e.g. agent.failed, vote.decided`);
    }
    filter.type = o.type as KeelEventType[];
  }
  if (o.from) filter.fromTs = timeArg('--from', o.from);
  if (o.to) filter.toTs = timeArg('--to', o.to);
  if (o.limit) filter.limit = positiveInt('--limit', o.limit);
  return filter;
}

/** Registers the audit and retention commands. */
export function registerAudit(program: Command, io: Io, setExit: (code: number) => void): void {
  const audit = program
    .command('audit')
    .description('verify, anchor, query and trace the audit log (read-only)');

  audit
    .command('verify')
    .description('check the hash chains; exit 1 naming the first bad seq')
    .option('--db <file>', 'event log', 'keel.db')
    .option('--store <url>', STORE_OPTION_HELP)
    .option('--schema <name>', SCHEMA_OPTION_HELP)
    .option('--anchor <json|file>', 'also check the log still holds this anchor (from "keel audit anchor")')
    .option('--json', 'machine-readable output')
    .action(async (o: LogFlags & { anchor?: string; json?: boolean }) => {
      const anchor = o.anchor ? readAnchor(o.anchor) : undefined;
      const store = await openLog(o);
      try {
        const result = await store.verify();
        let anchorProblem: string | undefined;
        if (result.ok && anchor) {
          for (const cls of ['audit', 'operational'] as const) {
            const want = anchor.heads[cls];
            if (!want || want.seq === 0) continue;
            const got = await firstOf(store.iterateChained({ afterSeq: want.seq - 1, class: cls }));
            if (!got || got.event.seq !== want.seq) {
              anchorProblem = `anchored ${cls} seq ${want.seq} is missing from the log (truncated or pruned)`;
            } else if (got.hash !== want.hash) {
              anchorProblem = `anchored ${cls} seq ${want.seq} has hash ${got.hash}, the anchor says ${want.hash}: the log was rewritten`;
            }
            if (anchorProblem) break;
          }
        }
        const ok = result.ok && !anchorProblem;
        if (o.json)
          io.out(JSON.stringify({ ...result, ok, ...(anchorProblem ? { anchor: anchorProblem } : {}) }));
        else if (!result.ok) io.out(`FAILED at seq ${result.seq} (${result.reason}): ${result.detail}`);
        else if (anchorProblem) io.out(`FAILED: ${anchorProblem}`);
        else io.out(`OK: ${result.events} events, chains intact${anchor ? ', anchor matches' : ''}`);
        setExit(ok ? EXIT.ok : EXIT.failed);
      } finally {
        await store.close();
      }
    });

  audit
    .command('anchor')
    .description('print the head seq and hash of each chain, to store outside the box')
    .option('--db <file>', 'event log', 'keel.db')
    .option('--store <url>', STORE_OPTION_HELP)
    .option('--schema <name>', SCHEMA_OPTION_HELP)
    .action(async (o: LogFlags) => {
      const store = await openLog(o);
      try {
        const record: AnchorRecord = {
          db: logName(o),
          at: new Date(realClock.now()).toISOString(),
          heads: await store.heads(),
        };
        io.out(JSON.stringify(record));
      } finally {
        await store.close();
      }
    });

  audit
    .command('query')
    .description('filter events; prints JSON lines')
    .option('--db <file>', 'event log', 'keel.db')
    .option('--store <url>', STORE_OPTION_HELP)
    .option('--schema <name>', SCHEMA_OPTION_HELP)
    .option('--workflow <id>', 'one workflow')
    .option('--agent <name>', 'events of one agent')
    .option('--type <type...>', 'event types, e.g. agent.failed vote.decided')
    .option('--category <category>', `error category: ${ERROR_CATEGORIES.join(', ')}`)
    .option('--from <time>', 'ISO time or ms since epoch (inclusive)')
    .option('--to <time>', 'ISO time or ms since epoch (exclusive)')
    .option('--limit <n>', 'at most n events')
    .action(
      async (
        o: LogFlags & {
          workflow?: string;
          agent?: string;
          type?: string[];
          category?: string;
          from?: string;
          to?: string;
          limit?: string;
        },
      ) => {
        if (o.category && !ERROR_CATEGORIES.includes(o.category as ErrorCategory)) {
          throw new CliError(`--category "${o.category}" is not one of: ${ERROR_CATEGORIES.join(', ')}`);
        }
        const filter = filterFromOptions(o);
        const limit = filter.limit;
        delete filter.limit;
        const store = await openLog(o);
        try {
          let n = 0;
          for await (const e of store.iterate(filter)) {
            const p = e.payload as { agent?: unknown; category?: unknown };
            if (o.agent && p.agent !== o.agent) continue;
            if (o.category && p.category !== o.category) continue;
            io.out(JSON.stringify(e));
            if (limit !== undefined && ++n >= limit) break;
          }
        } finally {
          await store.close();
        }
      },
    );

  audit
    .command('trace')
    .description('every decision of one workflow, in order')
    .argument('<workflowId>', 'workflow id (from a result, a report or "audit query")')
    .option('--db <file>', 'event log', 'keel.db')
    .option('--store <url>', STORE_OPTION_HELP)
    .option('--schema <name>', SCHEMA_OPTION_HELP)
    .option('--json', 'machine-readable output')
    .action(async (workflowId: string, o: LogFlags & { json?: boolean }) => {
      const store = await openLog(o);
      try {
        const events = await store.query({ workflowId });
        if (events.length === 0) {
          throw new CliError(
            `no events for workflow "${workflowId}" in ${logName(o)} (check the id with "keel audit query --type workflow.started")`,
            EXIT.failed,
          );
        }
        if (o.json) {
          io.out(JSON.stringify(events));
          return;
        }
        const t0 = events[0]?.ts ?? 0;
        for (const e of events) {
          io.out(
            `${String(e.seq).padStart(8)}  +${String(e.ts - t0).padStart(6)}ms  ${e.type.padEnd(20)} ${summary(e)}`,
          );
        }
      } finally {
        await store.close();
      }
    });

  program
    .command('retention')
    .description('retention policies')
    .command('apply')
    .description('prune events past their retention through the sanctioned path (the chain still verifies)')
    .option('--db <file>', 'event log', 'keel.db')
    .option('--store <url>', STORE_OPTION_HELP)
    .option('--schema <name>', SCHEMA_OPTION_HELP)
    .option('--operational-days <n>', 'keep operational events this many days', '90')
    .option('--audit-days <n>', 'keep audit events this many days (7 years)', '2557')
    .option('--json', 'machine-readable output')
    .action(async (o: LogFlags & { operationalDays: string; auditDays: string; json?: boolean }) => {
      const opDays = positiveInt('--operational-days', o.operationalDays);
      const auditDays = positiveInt('--audit-days', o.auditDays);
      const store = await openLog(o, { writable: true });
      try {
        const now = realClock.now();
        const before = await store.verify();
        if (!before.ok) {
          throw new CliError(
            `the chain is already broken at seq ${before.seq} (${before.reason}); not pruning. Investigate with "keel audit verify"`,
            EXIT.failed,
          );
        }
        const results = [
          await store.prune({ class: 'operational', olderThan: now - opDays * 86_400_000 }),
          await store.prune({ class: 'audit', olderThan: now - auditDays * 86_400_000 }),
        ];
        const after = await store.verify();
        if (o.json) io.out(JSON.stringify({ results, verified: after.ok }));
        else {
          for (const r of results)
            io.out(`${r.class}: pruned ${r.pruned} events (through seq ${r.throughSeq})`);
          io.out(after.ok ? 'verify: OK' : `verify: FAILED at seq ${after.seq}`);
        }
        setExit(after.ok ? EXIT.ok : EXIT.failed);
      } finally {
        await store.close();
      }
    });
}

/** The first item of a stream, or undefined; closes the stream's cursor. */
async function firstOf<T>(stream: EventStream<T>): Promise<T | undefined> {
  for await (const item of stream) return item;
  return undefined;
}
