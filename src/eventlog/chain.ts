/**
 * The hash chain of the event log: how each event's hash is computed, and the fold that walks a
 * log in seq order and finds the first place where it breaks. Pure: no SQLite here, so an external
 * auditor can read this file as the specification.
 */
import { createHash, hash as oneShotHash } from 'node:crypto';
import type { EventClass, EventPayloads } from './events.js';
import type { ChainHeads, VerifyResult } from './store.js';

/** `prevHash` of the first event of a class chain: 64 zeros. */
export const GENESIS_HASH = '0'.repeat(64);

const sha256Hex: (text: string) => string =
  typeof oneShotHash === 'function'
    ? (text) => oneShotHash('sha256', text, 'hex')
    : (text) => createHash('sha256').update(text, 'utf8').digest('hex');

/**
 * Hash of one event in its class chain: lowercase hex SHA-256 of the UTF-8 bytes of its canonical form
 *
 * ```text
 * prevHash \n seq \n ts \n workflowId \n type \n v \n class \n payloadJson
 * ```
 *
 * i.e. the eight fields joined by a single line feed (U+000A), with no trailing newline, where
 * - `prevHash` is the 64-char lowercase hex hash of the previous event of the same class, or
 *   {@link GENESIS_HASH} for the first one, or a retention anchor's `lastPrunedHash`;
 * - `seq`, `v` are decimal integers; `ts` is the number as ECMAScript `String(ts)` writes it (decimal
 *   digits for integer milliseconds, the usual case);
 * - `workflowId`, `type`, `class` are the raw strings (only `workflowId` is free text, and every
 *   other field is newline-free, so the form is unambiguous);
 * - `payloadJson` is `canonicalJson(payload)` (src/core/json.ts: object keys sorted by UTF-16 code
 *   unit, no whitespace, `undefined` members dropped) and is byte for byte the `payload` column.
 *
 * Up to SQLite schema version 3 (and on Postgres) every field but `prevHash` is exactly what the
 * `events` table stores. From schema version 3 a row keeps its `hash` as 32 raw bytes and has no
 * `prev_hash` column: `prevHash` is the `hash` of the previous row of the same class (the retention
 * anchor's `lastPrunedHash` for the first row after a prune, else genesis), so anyone can recompute
 * the chain of a schema-3 file with `sqlite3` and `sha256sum`: {@link CHAIN_RECIPE_SQL} gives each
 * row's stored hash and the bytes it hashes. Schema version 4 stores `workflowId` and `type` as
 * `keel_strings` ids and the payload in the compact form of `./codec.ts`; the hashed fields are the
 * decoded ones, unchanged, and docs/architecture.md has the recipe (`keel audit query` → the eight
 * fields → sha256).
 */
export function chainHash(
  prevHash: string,
  seq: number,
  ts: number,
  workflowId: string,
  type: string,
  v: number,
  cls: string,
  payloadJson: string,
): string {
  return sha256Hex(
    prevHash +
      '\n' +
      seq +
      '\n' +
      ts +
      '\n' +
      workflowId +
      '\n' +
      type +
      '\n' +
      v +
      '\n' +
      cls +
      '\n' +
      payloadJson,
  );
}

/**
 * SQL (SQLite) that answers, per row of a schema-3 log in seq order (not schema 4: its payloads are
 * coded and its strings are dictionary ids), its stored hash as lowercase hex
 * and, as hex, the exact bytes {@link chainHash} hashes: `printf '%s' <form> | xxd -r -p | sha256sum`
 * must print the stored hash. The previous hash comes from `lag()` over the row's class; the first
 * row of a class after a prune chains from its anchor's `lastPrunedHash` instead of the genesis
 * this SQL assumes.
 */
export const CHAIN_RECIPE_SQL = `SELECT seq, lower(hex(hash)) AS hash, hex(
  coalesce(lag(lower(hex(hash))) OVER (PARTITION BY class ORDER BY seq), printf('%064d', 0))
  || char(10) || seq || char(10) || ts || char(10) || workflow_id || char(10) || type
  || char(10) || v || char(10) || class || char(10) || payload) AS form
FROM events ORDER BY seq`;

/**
 * One row as the chain reads it: `seq, ts, workflow_id, type, v, class, payload, prev_hash, hash`
 * (a tuple: the verifier reads raw rows, which is twice as fast as objects). `prevHash` is the stored
 * column of a schema-2 file, and `null` where it is derived (schema 3: the verifier chains each row
 * onto the previous one of its class). Hashes are lowercase hex (see {@link hexOf} for the stored form).
 */
export type ChainRow = readonly [
  seq: number,
  ts: number,
  workflowId: string,
  type: string,
  v: number,
  cls: string,
  payloadJson: string,
  prevHash: string | null,
  hash: string,
];

/** A stored hash as lowercase hex: schema 3 stores 32 raw bytes (a Buffer), schema 2 hex text. */
export function hexOf(stored: unknown): string {
  if (typeof stored === 'string') return stored;
  if (stored instanceof Uint8Array)
    return Buffer.from(stored.buffer, stored.byteOffset, stored.length).toString('hex');
  return String(stored);
}

/** A hex hash as the 32 bytes schema 3 stores (a malformed one keeps its bytes, so it fails verify). */
export function hashBytes(hex: string): Buffer {
  return /^[0-9a-f]{64}$/.test(hex) ? Buffer.from(hex, 'hex') : Buffer.from(hex, 'utf8');
}

/**
 * A fetched row (in {@link ChainRow} column order) with its hash(es) as hex: rows come back with raw
 * bytes from compact files. Converts the driver's fresh array in place (the verify walk reads every
 * row of the log through here).
 */
export function chainRowOf(raw: readonly unknown[]): ChainRow {
  const r = raw as unknown[];
  const prev = r[7];
  if (prev === undefined) r[7] = null;
  else if (prev !== null && typeof prev !== 'string') r[7] = hexOf(prev);
  if (typeof r[8] !== 'string') r[8] = hexOf(r[8]);
  return r as unknown as ChainRow;
}

/** Recomputes a row's hash from its columns, chained onto `prevHash` (default: its stored one). */
export function rowHash(row: ChainRow, prevHash: string = row[7] ?? GENESIS_HASH): string {
  return chainHash(prevHash, row[0], row[1], row[2], row[3], row[4], row[5], row[6]);
}

/** What a `log.anchor` event claims, plus whether the anchor row itself is intact. */
export interface AnchorClaim {
  /** Seq of the anchor event. */
  seq: number;
  prunedClass: EventClass;
  prunedThroughSeq: number;
  lastPrunedHash: string;
  /** The anchor row's own hash matches its content. */
  intact: boolean;
  /** The anchor event's own `ts` (when known: plausibility checks need it). */
  ts?: number;
  /** Events it removed, and the time they were all older than (from its payload). */
  prunedCount?: number;
  olderThanTs?: number;
}

/**
 * How far an event's `ts` may run ahead of an event logged after it (clock steps, events of
 * concurrent workflows committed together) before verify calls a retention anchor implausible: 5 min.
 */
export const ANCHOR_CLOCK_SKEW_MS = 300_000;

/** Targeted look-ups the verifier makes once, when it has found a break, to name its cause. */
export interface ChainLookup {
  /** Some event after `afterSeq` has this `hash`. */
  hashExistsAfter(hash: string, afterSeq: number): boolean;
  /** Some event after `afterSeq` has this `prevHash` (schema 2: stored `prev_hash`). */
  prevHashExistsAfter(prevHash: string, afterSeq: number): boolean;
  /**
   * Schema 3 (no stored `prevHash`): some later event of class `cls` hashes correctly as the event
   * at `seq` chained onto `prevHash` — it belongs here, so rows were moved.
   */
  laterRowFits?(cls: string, seq: number, prevHash: string): boolean;
}

type Failure = Extract<VerifyResult, { ok: false }>;

interface ClassState {
  seen: boolean;
  seq: number;
  hash: string;
}

/** Latest anchor per class: the one with the highest `prunedThroughSeq` (later seq on ties). */
export function latestAnchors<A extends AnchorClaim>(anchors: readonly A[]): Partial<Record<EventClass, A>> {
  const latest: Partial<Record<EventClass, A>> = {};
  for (const a of anchors) {
    const cur = latest[a.prunedClass];
    if (cur === undefined || a.prunedThroughSeq >= cur.prunedThroughSeq) latest[a.prunedClass] = a;
  }
  return latest;
}

/**
 * Checks a log one row at a time, in seq order. Break reasons:
 * - `modified`: a row's hash does not match its content (or its class is unknown);
 * - `missing`: a seq gap that no retention anchor covers, or a row whose `prevHash` does not link
 *   to the previous event of its class (events removed outside retention);
 * - `reordered`: a row links to an event that comes later in seq order (rows were swapped);
 * - `anchor_mismatch`: a retention anchor was altered, or an event it says was pruned is still there;
 * - `anchor_implausible` (from {@link ChainVerifier.finish} and the rows): an intact anchor claims
 *   what the log contradicts — it is older than the events it says it pruned, it pruned nothing or
 *   more than is missing, its last pruned seq is still there, or an event kept from before the
 *   pruned range is younger than `olderThanTs` (so the pruned events, logged after it, were too:
 *   retention cannot have removed them). A forged anchor that hides deleted recent history fails here.
 *
 * Limits: rows of different classes swapped show as `modified` (each hash covers its seq), and
 * deleting the newest events leaves a shorter log that still verifies — compare the heads with a
 * copy kept outside the file (`keel audit anchor`) to catch that.
 */
export class ChainVerifier {
  private readonly states: Record<EventClass, ClassState> = {
    audit: { seen: false, seq: 0, hash: GENESIS_HASH },
    operational: { seen: false, seq: 0, hash: GENESIS_HASH },
  };
  private readonly latest: Partial<Record<EventClass, AnchorClaim>>;
  private readonly coveredThroughSeq: number;
  /** Intact anchors whose claims are checked against the rows (plausibility). */
  private readonly claims: readonly AnchorClaim[];
  private lastSeq = 0;
  private count = 0;
  /** Seqs missing (gaps) up to the highest pruned seq. */
  private missing = 0;

  constructor(
    anchors: readonly AnchorClaim[],
    private readonly lookup: ChainLookup,
  ) {
    this.latest = latestAnchors(anchors);
    let covered = 0;
    for (const a of anchors) if (a.prunedThroughSeq > covered) covered = a.prunedThroughSeq;
    this.coveredThroughSeq = covered;
    this.claims = anchors.filter((a) => a.intact);
  }

  /** Events checked so far. */
  get events(): number {
    return this.count;
  }

  /**
   * Checks the next row; returns the failure when the chain breaks here. `derivedHash`: the row's
   * hash chained onto {@link expectedPrevHash}, when the caller computed it already (no stored prevHash).
   */
  check(row: ChainRow, derivedHash?: string): Failure | undefined {
    const seq = row[0];
    const cls = row[5];
    const prevHash = row[7];
    const hash = row[8];
    if (seq > this.lastSeq + 1 && seq - 1 > this.coveredThroughSeq) {
      const first = Math.max(this.lastSeq + 1, this.coveredThroughSeq + 1);
      const range = first === seq - 1 ? `seq ${first} is` : `seqs ${first}..${seq - 1} are`;
      return this.fail(first, 'missing', `${range} missing and no retention anchor covers them`);
    }
    const gapFrom = seq > this.lastSeq + 1 ? this.lastSeq + 1 : undefined;
    if (seq > this.lastSeq + 1) this.missing += Math.min(seq - 1, this.coveredThroughSeq) - this.lastSeq;
    this.lastSeq = seq;

    const state = cls === 'audit' || cls === 'operational' ? this.states[cls] : undefined;
    if (state === undefined) return this.fail(seq, 'modified', `class "${cls}" is not audit/operational`);

    let expected = state.hash;
    let linkName = `the previous ${cls} event (seq ${state.seq})`;
    if (!state.seen) {
      const anchor = this.latest[cls as EventClass];
      if (anchor === undefined) {
        expected = GENESIS_HASH;
        linkName = `genesis (no retention anchor covers ${cls} events before it)`;
      } else {
        if (!anchor.intact) {
          return this.fail(seq, 'anchor_mismatch', `the retention anchor at seq ${anchor.seq} was altered`);
        }
        if (seq <= anchor.prunedThroughSeq) {
          return this.fail(
            seq,
            'anchor_mismatch',
            `the anchor at seq ${anchor.seq} says ${cls} events were pruned through seq ${anchor.prunedThroughSeq}, but seq ${seq} is still present`,
          );
        }
        expected = anchor.lastPrunedHash;
        linkName = `the retention anchor at seq ${anchor.seq}`;
      }
    }

    if (prevHash === null) {
      // Schema 3: the row chains onto `expected` by definition; its hash says whether it belongs.
      const derived = derivedHash ?? rowHash(row, expected);
      if (derived !== hash) {
        if (this.lookup.laterRowFits?.(cls, seq, expected) === true) {
          return this.fail(seq, 'reordered', `an event stored later belongs here: rows are out of order`);
        }
        if (gapFrom !== undefined) {
          const range = gapFrom === seq - 1 ? `seq ${gapFrom}` : `seqs ${gapFrom}..${seq - 1}`;
          return this.fail(
            gapFrom,
            'missing',
            `${range} ${gapFrom === seq - 1 ? 'is' : 'are'} gone and seq ${seq} does not chain onto ${linkName}: events were removed`,
          );
        }
        return this.fail(seq, 'modified', `its content does not match its hash (chained onto ${linkName})`);
      }
      return this.linked(cls as EventClass, seq, row[1], hash);
    }
    const computed = rowHash(row);
    if (prevHash !== expected) {
      if (
        this.lookup.hashExistsAfter(prevHash, seq) ||
        (state.seen && this.lookup.prevHashExistsAfter(expected, seq))
      ) {
        return this.fail(seq, 'reordered', `it links to an event stored after it: rows are out of order`);
      }
      if (computed !== hash) {
        return this.fail(seq, 'modified', `its prevHash was altered (the hash no longer matches the row)`);
      }
      return this.fail(seq, 'missing', `its prevHash does not link to ${linkName}: events were removed`);
    }
    if (computed !== hash) {
      return this.fail(seq, 'modified', `its content does not match its hash`);
    }
    return this.linked(cls as EventClass, seq, row[1], hash);
  }

  /** A row that links: it becomes its class's head. */
  private linked(cls: EventClass, seq: number, ts: number, hash: string): Failure | undefined {
    const state = this.states[cls];
    state.seen = true;
    state.seq = seq;
    state.hash = hash;
    this.count++;
    return seq <= this.coveredThroughSeq ? this.checkClaims(seq, ts) : undefined;
  }

  /** A kept row inside a pruned range: it must not contradict an anchor's claims. */
  private checkClaims(seq: number, ts: number): Failure | undefined {
    for (const a of this.claims) {
      if (seq === a.prunedThroughSeq) {
        return this.fail(
          a.seq,
          'anchor_implausible',
          `the anchor says seq ${seq} was the last ${a.prunedClass} event it pruned, but seq ${seq} is still in the log`,
        );
      }
      if (
        seq < a.prunedThroughSeq &&
        a.olderThanTs !== undefined &&
        ts >= a.olderThanTs + ANCHOR_CLOCK_SKEW_MS
      ) {
        return this.fail(
          a.seq,
          'anchor_implausible',
          `the anchor says it pruned ${a.prunedClass} events through seq ${a.prunedThroughSeq} because they were older than ${isoTime(a.olderThanTs)}, but seq ${seq}, kept and logged before them, is from ${isoTime(ts)}: the pruned events were younger than the anchor claims (history removed outside retention)`,
        );
      }
    }
    return undefined;
  }

  /**
   * Checks, after the last row, what only the whole log shows: each intact anchor was written after
   * what it pruned (its seq and ts), pruned at least one event, and the anchors together claim no
   * more events than are missing. Returns the failure, if any.
   */
  finish(): Failure | undefined {
    let claimed = 0;
    const counted = new Set<string>();
    for (const a of this.claims) {
      if (a.seq <= a.prunedThroughSeq) {
        return this.fail(
          a.seq,
          'anchor_implausible',
          `the anchor claims to have pruned through seq ${a.prunedThroughSeq}, at or after its own seq: an anchor is written after what it pruned`,
        );
      }
      if (a.ts !== undefined && a.olderThanTs !== undefined && a.ts + ANCHOR_CLOCK_SKEW_MS < a.olderThanTs) {
        return this.fail(
          a.seq,
          'anchor_implausible',
          `the anchor was written at ${isoTime(a.ts)}, before ${isoTime(a.olderThanTs)}, the time it says every pruned event was older than`,
        );
      }
      if (a.prunedCount !== undefined) {
        if (!Number.isInteger(a.prunedCount) || a.prunedCount < 1 || a.prunedCount > a.prunedThroughSeq) {
          return this.fail(
            a.seq,
            'anchor_implausible',
            `the anchor says it pruned ${a.prunedCount} events through seq ${a.prunedThroughSeq}: retention prunes between 1 and that many`,
          );
        }
        // Audit retention carries the operational anchor forward: count each claim once.
        const key = `${a.prunedClass}:${a.prunedThroughSeq}`;
        if (!counted.has(key)) {
          counted.add(key);
          claimed += a.prunedCount;
        }
      }
    }
    if (claimed > this.missing) {
      const first = this.claims[0];
      return this.fail(
        first?.seq ?? 0,
        'anchor_implausible',
        `the retention anchors claim ${claimed} pruned events, but only ${this.missing} seqs up to seq ${this.coveredThroughSeq} are missing`,
      );
    }
    return undefined;
  }

  /**
   * The `prevHash` that {@link check} compares the next row of class `cls` with: the hash of the
   * previous event of that class, else its retention anchor's `lastPrunedHash`, else genesis;
   * `undefined` for an unknown class. A reader whose look-ups are asynchronous uses it to fetch the
   * {@link ChainLookup} answers a row will need (only rows that do not link need any) before checking it.
   */
  expectedPrevHash(cls: string): string | undefined {
    if (cls !== 'audit' && cls !== 'operational') return undefined;
    const state = this.states[cls];
    if (state.seen) return state.hash;
    return this.latest[cls]?.lastPrunedHash ?? GENESIS_HASH;
  }

  /** Heads after the rows checked so far (a class with no rows keeps its anchor's, or genesis). */
  heads(): ChainHeads {
    return { audit: this.head('audit'), operational: this.head('operational') };
  }

  private head(cls: EventClass): { seq: number; hash: string } {
    const s = this.states[cls];
    if (s.seen) return { seq: s.seq, hash: s.hash };
    const a = this.latest[cls];
    return a ? { seq: a.prunedThroughSeq, hash: a.lastPrunedHash } : { seq: 0, hash: GENESIS_HASH };
  }

  private fail(seq: number, reason: Failure['reason'], why: string): Failure {
    return { ok: false, events: this.count, seq, reason, detail: `seq ${seq}: ${why}` };
  }
}

/** `ms` as an ISO time with the raw number (any number, out-of-range ones included). */
export function isoTime(ms: number): string {
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? `ts ${ms}` : `${d.toISOString()} (ts ${ms})`;
}

/** A `log.anchor` row's claim together with its payload. */
export interface StoredAnchorClaim extends AnchorClaim {
  payload: EventPayloads['log.anchor'];
}

/**
 * Reads a stored `log.anchor` row (see {@link ChainRow}) as an {@link AnchorClaim}; `undefined` when
 * its payload is not a well-formed anchor (the verifier then reports the row itself).
 */
export function anchorClaimOf(row: ChainRow, prevHash?: string): StoredAnchorClaim | undefined {
  const payload = parseAnchorPayload(row[6]);
  if (!payload) return undefined;
  return {
    seq: row[0],
    prunedClass: payload.prunedClass,
    prunedThroughSeq: payload.prunedThroughSeq,
    lastPrunedHash: payload.lastPrunedHash,
    intact: rowHash(row, row[7] ?? prevHash ?? GENESIS_HASH) === row[8],
    ts: row[1],
    prunedCount: payload.prunedCount,
    olderThanTs: payload.olderThanTs,
    payload,
  };
}

/**
 * The `prevHash` of each anchor row that has neither a stored nor a derived one (schema 3: no earlier
 * row of its class is left), by seq: the `lastPrunedHash` of the anchor (of that class) that pruned
 * furthest below it, else genesis — what the verifier chains the first row of a class onto.
 */
export function anchorRowPrevs(rows: readonly ChainRow[]): Map<number, string> {
  const payloads = rows.map((r) => [r, parseAnchorPayload(r[6])] as const);
  const out = new Map<number, string>();
  for (const [row] of payloads) {
    if (row[7] !== null) continue;
    let best: EventPayloads['log.anchor'] | undefined;
    for (const [, p] of payloads) {
      if (p === undefined || p.prunedClass !== row[5] || p.prunedThroughSeq >= row[0]) continue;
      if (best === undefined || p.prunedThroughSeq >= best.prunedThroughSeq) best = p;
    }
    out.set(row[0], best?.lastPrunedHash ?? GENESIS_HASH);
  }
  return out;
}

/** The payload of a `log.anchor` row, or undefined when it is not a well-formed anchor. */
export function parseAnchorPayload(json: string): EventPayloads['log.anchor'] | undefined {
  let p: unknown;
  try {
    p = JSON.parse(json);
  } catch {
    return undefined;
  }
  if (typeof p !== 'object' || p === null) return undefined;
  const { prunedClass, prunedThroughSeq, lastPrunedHash, prunedCount, olderThanTs } = p as Record<
    string,
    unknown
  >;
  if (
    (prunedClass !== 'audit' && prunedClass !== 'operational') ||
    typeof prunedThroughSeq !== 'number' ||
    typeof lastPrunedHash !== 'string' ||
    typeof prunedCount !== 'number' ||
    typeof olderThanTs !== 'number'
  ) {
    return undefined;
  }
  return { prunedClass, prunedThroughSeq, lastPrunedHash, prunedCount, olderThanTs };
}
