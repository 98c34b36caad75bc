/**
 * The retention side of an event log, for both stores: reading the chain heads and the retention
 * anchors, the prune plan (what to delete and which anchors to write), and the verify check that
 * a kept workflow end does not contradict what the anchors say they pruned. Written once as
 * {@link SqlProgram}s over a {@link SqlDialect}. Internal to src/eventlog.
 */
import { ConfigError } from '../../core/errors.js';
import {
  ANCHOR_CLOCK_SKEW_MS,
  GENESIS_HASH,
  anchorClaimOf,
  anchorRowPrevs,
  hexOf,
  isoTime,
  latestAnchors,
  type ChainRow,
  type StoredAnchorClaim,
} from '../chain.js';
import { isCorruptLogError } from '../errors.js';
import { EVENT_VERSIONS, SYSTEM_WORKFLOW_ID } from '../events.js';
import type { EventClass, EventPayloads, KeelEvent } from '../events.js';
import type { PruneResult, VerifyResult } from '../store.js';
import { anchorsSql, type SqlDialect } from './dialect.js';
import { PAGE_SIZE, chainRowFor } from './query.js';
import { row, rows, run, type SqlProgram } from './program.js';

/** A chain head: the seq and hash of a class's last event. */
export interface Head {
  seq: number;
  hash: string;
}

/** Highest seq and both heads: what a writer chains onto, and what a rolled-back one puts back. */
export interface ChainState {
  seq: number;
  audit: Head;
  operational: Head;
}

/** Every `log.anchor` event's claim (there are few: audit retention removes old ones). */
export function* loadAnchors(d: SqlDialect): SqlProgram<StoredAnchorClaim[]> {
  const claims: StoredAnchorClaim[] = [];
  const found: ChainRow[] = [];
  for (const raw of yield* rows<unknown[]>(anchorsSql(d))) {
    try {
      found.push(chainRowFor(d, raw));
    } catch (e) {
      // An undecodable anchor row claims nothing: the verify walk reports the row itself.
      if (!isCorruptLogError(e)) throw e;
    }
  }
  const prevs = anchorRowPrevs(found);
  for (const r of found) {
    const claim = anchorClaimOf(r, prevs.get(r[0]));
    if (claim !== undefined) claims.push(claim);
  }
  return claims;
}

/**
 * The heads rebuilt from the events: each class's last event, found by walking back from the end
 * (both classes interleave densely, so this is short), else its retention anchor's head, else
 * genesis. Only a log holding no events at all of one class walks it whole.
 */
export function* headsFromEvents(d: SqlDialect, maxSeq: number): SqlProgram<ChainState> {
  let anchors: Partial<Record<EventClass, StoredAnchorClaim>> | undefined;
  const sql = `SELECT seq, hash FROM ${d.events} WHERE class = ${d.param(1)} ORDER BY seq DESC LIMIT 1`;
  function* headOf(cls: EventClass): SqlProgram<Head> {
    const last = yield* row<[number, unknown]>(sql, [d.classValue(cls)]);
    if (last !== undefined) return { seq: last[0], hash: hexOf(last[1]) };
    anchors ??= latestAnchors(yield* loadAnchors(d));
    const a = anchors[cls];
    return a ? { seq: a.prunedThroughSeq, hash: a.lastPrunedHash } : { seq: 0, hash: GENESIS_HASH };
  }
  return { seq: maxSeq, audit: yield* headOf('audit'), operational: yield* headOf('operational') };
}

/** Refuses malformed `prune` options with a {@link ConfigError} naming the field. */
export function checkPruneOptions({ olderThan, class: cls }: { olderThan: number; class: EventClass }): void {
  if (typeof olderThan !== 'number' || Number.isNaN(olderThan)) {
    throw new ConfigError('prune.olderThan', `must be a time in ms since epoch, got ${String(olderThan)}`);
  }
  if (cls !== 'audit' && cls !== 'operational') {
    throw new ConfigError('prune.class', `must be 'audit' or 'operational', got ${JSON.stringify(cls)}`);
  }
}

/** What a prune deleted, and the anchors (in order) the store must chain next in the same transaction. */
export interface PruneDone {
  throughSeq: number;
  pruned: number;
  anchors: EventPayloads['log.anchor'][];
}

/**
 * Retention of one class, inside the store's write transaction (heads locked): removes every `cls`
 * event before the first one at or after `olderThan`, through the sanctioned path (the gate), and
 * answers the anchors to append — the new one, and the operational chain's anchor carried forward
 * when pruning audit removed it. `undefined` when nothing is old enough.
 */
export function* prunePlan(
  d: SqlDialect,
  cls: EventClass,
  olderThan: number,
): SqlProgram<PruneDone | undefined> {
  const e = d.events;
  const cut = yield* row<[number]>(
    `SELECT seq FROM ${e} WHERE class = ${d.param(1)} AND ${d.unindexed('ts')} >= ${d.param(2)} ORDER BY seq LIMIT 1`,
    [d.classValue(cls), olderThan],
  );
  const last = yield* row<[number, unknown]>(
    `SELECT seq, hash FROM ${e} WHERE class = ${d.param(1)} AND seq < ${d.param(2)} ORDER BY seq DESC LIMIT 1`,
    [d.classValue(cls), cut?.[0] ?? Number.MAX_SAFE_INTEGER],
  );
  if (last === undefined) return undefined;
  const throughSeq = last[0];
  const lastPrunedHash = hexOf(last[1]);
  // Pruning audit may delete the anchor that the operational chain starts from: carry it forward.
  const carried = cls === 'audit' ? latestAnchors(yield* loadAnchors(d)).operational : undefined;

  yield* run(d.openGate);
  const pruned = yield* run(`DELETE FROM ${e} WHERE class = ${d.param(1)} AND seq <= ${d.param(2)}`, [
    d.classValue(cls),
    throughSeq,
  ]);
  yield* run(d.closeGate);

  const anchors: EventPayloads['log.anchor'][] = [
    {
      prunedClass: cls,
      prunedThroughSeq: throughSeq,
      lastPrunedHash,
      prunedCount: pruned,
      olderThanTs: olderThan,
    },
  ];
  if (carried !== undefined && carried.intact && carried.seq <= throughSeq) anchors.push(carried.payload);
  return { throughSeq, pruned, anchors };
}

/** The result of a prune whose first anchor got `anchorSeq` (none when nothing was pruned). */
export function pruneResult(cls: EventClass, done: PruneDone | undefined, anchorSeq?: number): PruneResult {
  if (done === undefined || anchorSeq === undefined) return { class: cls, pruned: 0, throughSeq: 0 };
  return { class: cls, pruned: done.pruned, throughSeq: done.throughSeq, anchorSeq };
}

/** A `log.anchor` event of the `_system` workflow (seq 0 until chained). */
export function anchorEvent(ts: number, payload: EventPayloads['log.anchor']): KeelEvent<'log.anchor'> {
  return {
    seq: 0,
    ts,
    workflowId: SYSTEM_WORKFLOW_ID,
    type: 'log.anchor',
    v: EVENT_VERSIONS['log.anchor'],
    class: 'audit',
    payload,
  };
}

const ENDS = "('workflow.completed', 'workflow.failed', 'workflow.cancelled')";

/**
 * A workflow whose end is kept but whose `workflow.started` is gone was started by retention's
 * cut: its start (end `ts` − `latencyMs`) must be older than what the audit anchors say they
 * pruned. A start younger than every anchor's `olderThanTs` means the history was removed outside
 * retention (a forged anchor); see `ChainVerifier` for the other plausibility checks. Walks the
 * kept ends without a start (few: the workflows that straddled a cut) a page at a time.
 */
export function* prunedStartEvidence(
  d: SqlDialect,
  anchors: readonly StoredAnchorClaim[],
  events: number,
): SqlProgram<VerifyResult | undefined> {
  const audit = anchors.filter((a) => a.intact && a.prunedClass === 'audit');
  if (audit.length === 0) return undefined;
  let newest = audit[0] as StoredAnchorClaim;
  for (const a of audit) if (a.payload.olderThanTs > newest.payload.olderThanTs) newest = a;
  const bound = newest.payload.olderThanTs + ANCHOR_CLOCK_SKEW_MS;
  const sql = `SELECT e.seq, e.ts, e.workflow_id, e.type, 0, '', e.payload${d.stored ? ', e.workflow_code, e.type_code' : ''} FROM ${d.from('e')}
    WHERE e.type IN ${ENDS} AND e.seq > ${d.param(1)}
      AND NOT EXISTS (SELECT 1 FROM ${d.from('s')} WHERE s.workflow_id = e.workflow_id AND s.type = 'workflow.started')
    ORDER BY e.seq LIMIT ${d.param(2)}`;
  let cursor = 0;
  for (;;) {
    const page = yield* rows<unknown[]>(sql, [cursor, PAGE_SIZE]);
    for (const raw of page) {
      const seq = raw[0] as number;
      const ts = raw[1] as number;
      const workflowId = raw[2] as string;
      const latencyMs = latencyOf(d, raw);
      const started = ts - latencyMs;
      if (started < bound) continue;
      return {
        ok: false,
        events,
        seq: newest.seq,
        reason: 'anchor_implausible',
        detail: `seq ${newest.seq}: the retention anchor says the audit events it pruned were older than ${isoTime(newest.payload.olderThanTs)}, but workflow ${JSON.stringify(workflowId)}, whose workflow.started is gone, ended at seq ${seq} after ${latencyMs} ms, so it started at ${isoTime(started)}: its start was younger than the anchor claims (history removed outside retention)`,
      };
    }
    if (page.length < PAGE_SIZE) return undefined;
    cursor = (page[page.length - 1] as unknown[])[0] as number;
  }
}

/** An end event's `latencyMs` (0 when its payload has none, or does not read). */
function latencyOf(d: SqlDialect, raw: unknown[]): number {
  try {
    let payload = raw[6];
    if (d.stored !== undefined) {
      d.stored.decode(raw, false);
      payload = raw[6];
    } else payload = JSON.parse(payload as string);
    const latency = (payload as { latencyMs?: unknown } | null)?.latencyMs;
    return typeof latency === 'number' ? latency : 0;
  } catch {
    return 0;
  }
}
