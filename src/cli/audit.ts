/**
 * `keel audit verify|anchor|query|trace|open|interrupt` and `keel retention apply`: the auditor's
 * commands. Every read opens the log read-only; `interrupt --yes` and retention write.
 */
import { readFileSync, existsSync } from 'node:fs';
import type { Command } from 'commander';
import {
  ERROR_CATEGORIES,
  SYSTEM_WORKFLOW_ID,
  createRuntime,
  realClock,
  type ChainHeads,
  type ErrorCategory,
  type EventFilter,
  type EventStream,
  type KeelEvent,
  type KeelEventType,
} from '../index.js';
import {
  DEFAULT_INTERRUPTED_REASON,
  findOpenWorkflows,
  isKnownEventType,
  type OpenWorkflow,
} from '../analysis.js';
import {
  CliError,
  EXIT,
  STORE_OPTION_HELP,
  SCHEMA_OPTION_HELP,
  durationArg,
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
    case 'workflow.cancelled':
      return pick('reason', 'costUsd', 'latencyMs');
    case 'workflow.interrupted':
      return pick('reason', 'lastSeq', 'markedBy');
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
    case 'agent.first_token':
      return pick('path', 'model', 'attempt', 'ttftMs');
    case 'tool.called':
      return pick('path', 'step', 'tool', 'callId', 'args');
    case 'tool.succeeded':
      return pick('path', 'step', 'tool', 'callId', 'result', 'latencyMs', 'attempts');
    case 'tool.failed':
      return pick('path', 'step', 'tool', 'callId', 'category', 'message', 'latencyMs', 'attempts');
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

/** A short age: `45s`, `12m`, `3.5h`, `2.0d`. */
function age(ms: number): string {
  if (ms < 60_000) return `${Math.max(0, Math.round(ms / 1_000))}s`;
  if (ms < 3_600_000) return `${Math.round(ms / 60_000)}m`;
  if (ms < 86_400_000) return `${(ms / 3_600_000).toFixed(1)}h`;
  return `${(ms / 86_400_000).toFixed(1)}d`;
}

/** One line per open workflow: id, name, when it started, where it stopped. */
function openLines(list: readonly OpenWorkflow[], nowMs: number): string[] {
  return list.map(
    (w) =>
      `${w.workflowId}  ${w.name}  started ${new Date(w.startedTs).toISOString()} (${age(nowMs - w.startedTs)} ago)  ` +
      `${w.events} event(s), last seq ${w.lastSeq} ${w.lastType}`,
  );
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
        const check = anchor ? await checkAnchor(store, anchor) : undefined;
        const anchorProblem = check?.problem;
        const ok = result.ok && !anchorProblem;
        if (o.json)
          io.out(
            JSON.stringify({
              ...result,
              ok,
              ...(anchorProblem ? { anchor: anchorProblem } : {}),
              ...(check ? { sinceAnchor: check.since } : {}),
            }),
          );
        else {
          if (!result.ok) io.out(`FAILED at seq ${result.seq} (${result.reason}): ${result.detail}`);
          if (anchorProblem) io.out(`FAILED: ${anchorProblem}`);
          if (ok) io.out(`OK: ${result.events} events, chains intact${anchor ? ', anchor matches' : ''}`);
          if (check) {
            io.out(
              check.since.length === 0
                ? `Since the anchor (taken ${anchor?.at ?? 'at an unknown time'}): no pruning, no schema change.`
                : `Since the anchor (taken ${anchor?.at ?? 'at an unknown time'}):`,
            );
            for (const line of check.since) io.out(`  ${line.text}`);
          }
        }
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

  audit
    .command('open')
    .description(
      'list workflows that started and never ended (still running elsewhere, or cut off by a crash)',
    )
    .option('--db <file>', 'event log', 'keel.db')
    .option('--store <url>', STORE_OPTION_HELP)
    .option('--schema <name>', SCHEMA_OPTION_HELP)
    .option('--older-than <duration>', 'only those started longer ago than this, e.g. 30m, 2h, 1d')
    .option('--json', 'machine-readable output')
    .addHelpText(
      'after',
      '\nExit codes: 0 listed (even when none), 2 wrong arguments, 3 the log could not be read.',
    )
    .action(async (o: LogFlags & { olderThan?: string; json?: boolean }) => {
      const now = realClock.now();
      const startedBefore =
        o.olderThan !== undefined ? now - durationArg('--older-than', o.olderThan) : undefined;
      const store = await openLog(o);
      let open: OpenWorkflow[];
      try {
        open = await findOpenWorkflows(store, startedBefore !== undefined ? { startedBefore } : {});
      } finally {
        await store.close();
      }
      if (o.json) {
        io.out(JSON.stringify({ startedBefore: startedBefore ?? null, open }));
        return;
      }
      const scope =
        startedBefore !== undefined ? ` started before ${new Date(startedBefore).toISOString()}` : '';
      if (open.length === 0) {
        io.out(`no open workflows${scope} in ${logName(o)}`);
        return;
      }
      io.out(
        [
          ...openLines(open, now),
          `${open.length} open workflow(s)${scope}: started, never ended (still running somewhere, or cut off by a crash). ` +
            'Close the dead ones with "keel audit interrupt --older-than <duration> --yes".',
        ].join('\n'),
      );
    });

  audit
    .command('interrupt')
    .description('mark open workflows started before a cutoff as interrupted (one workflow.interrupted each)')
    .option('--db <file>', 'event log', 'keel.db')
    .option('--store <url>', STORE_OPTION_HELP)
    .option('--schema <name>', SCHEMA_OPTION_HELP)
    .option('--older-than <duration>', 'required: mark those started longer ago than this, e.g. 30m, 2h, 1d')
    .option('--reason <text>', 'why, stored in each event', DEFAULT_INTERRUPTED_REASON)
    .option('--yes', 'write the marks (without it: a dry run listing what would be marked)')
    .option('--json', 'machine-readable output')
    .addHelpText(
      'after',
      '\nKeel never guesses which workflows are dead: every open workflow older than --older-than is marked. ' +
        'On a log shared by several processes (--store), pick a cutoff longer than your longest workflow, or stop the fleet first.\n' +
        'Exit codes: 0 marked (or nothing to mark), 1 dry run that found workflows to mark (rerun with --yes), ' +
        '2 wrong arguments, 3 the log could not be opened or written.',
    )
    .action(async (o: LogFlags & { olderThan?: string; reason: string; yes?: boolean; json?: boolean }) => {
      if (o.olderThan === undefined) {
        throw new CliError(
          '--older-than is required: say how old an open workflow must be to be declared dead, e.g. --older-than 2h',
        );
      }
      const olderThanMs = durationArg('--older-than', o.olderThan);
      if (o.reason.trim() === '')
        throw new CliError('--reason must not be empty, e.g. --reason "node killed during deploy"');
      const now = realClock.now();
      const startedBefore = now - olderThanMs;
      const since = new Date(startedBefore).toISOString();
      if (!o.yes) {
        const store = await openLog(o);
        let open: OpenWorkflow[];
        try {
          open = await findOpenWorkflows(store, { startedBefore });
        } finally {
          await store.close();
        }
        if (o.json) io.out(JSON.stringify({ dryRun: true, startedBefore, wouldMark: open }));
        else if (open.length === 0) io.out(`nothing to mark: no open workflows started before ${since}`);
        else {
          io.out(
            [
              ...openLines(open, now),
              `dry run: would mark ${open.length} workflow(s) started before ${since} as interrupted. Rerun with --yes to write the marks.`,
            ].join('\n'),
          );
        }
        setExit(open.length > 0 ? EXIT.failed : EXIT.ok);
        return;
      }
      const store = await openLog(o, { writable: true });
      const rt = createRuntime({ store, metrics: false, tracing: false, cache: false, redact: false });
      try {
        const { marked } = await rt.markInterrupted({ startedBefore, reason: o.reason, markedBy: 'cli' });
        if (o.json) io.out(JSON.stringify({ dryRun: false, startedBefore, marked }));
        else if (marked.length === 0) io.out(`nothing to mark: no open workflows started before ${since}`);
        else {
          io.out(
            [
              ...marked.map(
                (w) => `${w.workflowId}  ${w.name}  interrupted after seq ${w.lastSeq} (mark: seq ${w.seq})`,
              ),
              `marked ${marked.length} workflow(s) started before ${since} as interrupted`,
            ].join('\n'),
          );
        }
      } finally {
        await rt.close();
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
          for (const r of results) {
            const strings =
              r.strings === undefined
                ? ''
                : 'deleted' in r.strings
                  ? `; ${r.strings.deleted} dictionary strings no remaining event uses deleted`
                  : '';
            io.out(`${r.class}: pruned ${r.pruned} events (through seq ${r.throughSeq})${strings}`);
            if (r.strings !== undefined && 'kept' in r.strings)
              io.err(
                `${r.class}: no dictionary string was deleted: ${r.strings.kept}. Run "keel audit verify" to find the row; the next prune that removes events deletes them once every row reads`,
              );
          }
          io.out(after.ok ? 'verify: OK' : `verify: FAILED at seq ${after.seq}`);
        }
        setExit(after.ok ? EXIT.ok : EXIT.failed);
      } finally {
        await store.close();
      }
    });
}

/** The first item of a stream, or undefined; closes the stream's cursor. */
/** One pruning or schema change recorded after an external anchor was taken. */
interface SinceAnchor {
  /** Seq of the `log.anchor` / `log.maintained` event. */
  seq: number;
  ts: number;
  type: 'log.anchor' | 'log.maintained';
  /** For a pruning: the class, the seq range, the count, and the time every pruned event was older than. */
  prunedClass?: string;
  fromSeq?: number;
  throughSeq?: number;
  count?: number;
  olderThanTs?: number;
  text: string;
}

function iso(ms: number): string {
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? `ts ${ms}` : d.toISOString();
}

/**
 * Checks an external anchor against the log: each anchored head is still there with its hash, or
 * was pruned by a retention anchor that links to it; and lists every pruning (seq range, count,
 * time bound) and schema change (migration, restored triggers) recorded after it was taken.
 */
async function checkAnchor(
  store: Awaited<ReturnType<typeof openLog>>,
  anchor: AnchorRecord,
): Promise<{ problem?: string; since: SinceAnchor[] }> {
  const system = await store.query({
    workflowId: SYSTEM_WORKFLOW_ID,
    type: ['log.anchor', 'log.maintained'],
  });
  const anchors = system.filter((e): e is KeelEvent<'log.anchor'> => e.type === 'log.anchor');
  const takenAt = Math.max(anchor.heads.audit.seq, anchor.heads.operational?.seq ?? 0);
  let problem: string | undefined;
  for (const cls of ['audit', 'operational'] as const) {
    const want = anchor.heads[cls];
    if (!want || want.seq === 0) continue;
    const got = await firstOf(store.iterateChained({ afterSeq: want.seq - 1, class: cls }));
    if (got && got.event.seq === want.seq) {
      if (got.hash !== want.hash) {
        problem = `anchored ${cls} seq ${want.seq} has hash ${got.hash}, the anchor says ${want.hash}: the log was rewritten`;
      }
    } else {
      const pruning = anchors.find(
        (a) => a.payload.prunedClass === cls && a.payload.prunedThroughSeq >= want.seq,
      );
      if (pruning === undefined) {
        problem = `anchored ${cls} seq ${want.seq} is missing from the log and no retention anchor says it was pruned (the log was truncated)`;
      } else if (
        pruning.payload.prunedThroughSeq === want.seq &&
        pruning.payload.lastPrunedHash !== want.hash
      ) {
        problem = `anchored ${cls} seq ${want.seq} was pruned by the retention anchor at seq ${pruning.seq}, whose lastPrunedHash differs from the anchor's hash: the log was rewritten`;
      }
    }
    if (problem) break;
  }
  const since: SinceAnchor[] = [];
  const previousThrough: Record<string, number> = {};
  for (const e of system) {
    if (e.type === 'log.anchor') {
      const p = e.payload;
      const before = previousThrough[p.prunedClass] ?? 0;
      // Audit retention carries the operational anchor forward: a copy is not a new pruning.
      if (p.prunedThroughSeq <= before) continue;
      const fromSeq = before + 1;
      previousThrough[p.prunedClass] = p.prunedThroughSeq;
      if (e.seq <= takenAt) continue;
      since.push({
        seq: e.seq,
        ts: e.ts,
        type: 'log.anchor',
        prunedClass: p.prunedClass,
        fromSeq,
        throughSeq: p.prunedThroughSeq,
        count: p.prunedCount,
        olderThanTs: p.olderThanTs,
        text: `seq ${e.seq} at ${iso(e.ts)}: retention pruned ${p.prunedCount} ${p.prunedClass} event(s) in seqs ${fromSeq}..${p.prunedThroughSeq}, all older than ${iso(p.olderThanTs)}`,
      });
    } else if (e.seq > takenAt) {
      const p = (e as KeelEvent<'log.maintained'>).payload;
      since.push({
        seq: e.seq,
        ts: e.ts,
        type: 'log.maintained',
        text: `seq ${e.seq} at ${iso(e.ts)}: ${p.action === 'migrated' ? 'schema migrated' : 'append-only triggers restored'} (${p.details.join('; ')})`,
      });
    }
  }
  return { ...(problem !== undefined ? { problem } : {}), since };
}

async function firstOf<T>(stream: EventStream<T>): Promise<T | undefined> {
  for await (const item of stream) return item;
  return undefined;
}
