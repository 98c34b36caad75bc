/**
 * `verify()` for both stores: every row, a keyset page at a time in seq order, through a
 * {@link ChainVerifier}; the targeted look-ups that name a break's cause are made only for a row
 * that does not link to its class chain, before that row is checked. Then the anchors' plausibility
 * against the kept rows. Internal to src/eventlog.
 */
import { ChainVerifier, chainHash, rowHash, type ChainRow } from '../chain.js';
import { isCorruptLogError } from '../errors.js';
import type { VerifyResult } from '../store.js';
import type { SqlDialect } from './dialect.js';
import { PAGE_SIZE, chainRowFor } from './query.js';
import { loadAnchors, prunedStartEvidence } from './retention.js';
import { rows, type SqlProgram } from './program.js';

/** Later rows of a class a moved row is looked for among (only after a break, once). */
const FIT_WINDOW = 10_000;

/** Walks the whole log and reports its first break (schema checks are the store's own). */
export function* verifyLog(d: SqlDialect): SqlProgram<VerifyResult> {
  d.stored?.fresh();
  const anchors = yield* loadAnchors(d);
  const answers = new Map<string, boolean>();
  const answer = (kind: string, hash: string, afterSeq: number): boolean => {
    const known = answers.get(`${kind}:${hash}:${afterSeq}`);
    // Unreachable while expectedPrevHash mirrors check(): every question is asked beforehand.
    if (known === undefined) throw new TypeError(`verifyLog: ${kind} look-up was not made beforehand`);
    return known;
  };
  const verifier = new ChainVerifier(anchors, {
    hashExistsAfter: (hash, afterSeq) => answer('hash', hash, afterSeq),
    prevHashExistsAfter: (prevHash, afterSeq) => answer('prev', prevHash, afterSeq),
    laterRowFits: (cls, seq, prevHash) => answer('fits', `${cls}:${prevHash}`, seq),
  });
  const e = d.events;
  const page = `SELECT ${d.verifyColumns} FROM ${d.from()} WHERE seq > ${d.param(1)} ORDER BY seq LIMIT ${d.param(2)}`;
  const hashAfter = `SELECT 1 FROM ${e} WHERE hash = ${d.param(1)} AND seq > ${d.param(2)} LIMIT 1`;
  const prevAfter = `SELECT 1 FROM ${e} WHERE prev_hash = ${d.param(1)} AND seq > ${d.param(2)} LIMIT 1`;
  const later = `SELECT ${d.verifyColumns} FROM ${d.from()} WHERE class = ${d.param(1)} AND seq > ${d.param(2)} ORDER BY seq LIMIT ${d.param(3)}`;
  let cursor = 0;
  for (;;) {
    const fetched = yield* rows<unknown[]>(page, [cursor, PAGE_SIZE]);
    for (const raw of fetched) {
      let r: ChainRow;
      try {
        r = chainRowFor(d, raw);
      } catch (error) {
        if (!isCorruptLogError(error)) throw error;
        // The rows before it were checked: it is the first break.
        return {
          ok: false,
          events: verifier.events,
          seq: error.seq,
          reason: 'modified',
          detail: error.message,
        };
      }
      const expected = verifier.expectedPrevHash(r[5]);
      const seq = r[0];
      const derived = expected !== undefined && r[7] === null ? rowHash(r, expected) : undefined;
      if (expected !== undefined && r[7] !== null && r[7] !== expected) {
        answers.set(`hash:${r[7]}:${seq}`, (yield* rows(hashAfter, [r[7], seq])).length > 0);
        answers.set(`prev:${expected}:${seq}`, (yield* rows(prevAfter, [expected, seq])).length > 0);
      } else if (expected !== undefined && derived !== undefined && derived !== r[8]) {
        // A row that does not chain: does a later row of its class belong here (rows moved)?
        const candidates = readableRows(d, yield* rows<unknown[]>(later, [r[5], seq, FIT_WINDOW]));
        const fits = candidates.some(
          (c) => chainHash(expected, seq, c[1], c[2], c[3], c[4], c[5], c[6]) === c[8],
        );
        answers.set(`fits:${r[5]}:${expected}:${seq}`, fits);
      }
      const failure = verifier.check(r, derived);
      if (failure !== undefined) return failure;
    }
    if (fetched.length < PAGE_SIZE) break;
    cursor = (fetched[fetched.length - 1] as unknown[])[0] as number;
  }
  const implausible = verifier.finish() ?? (yield* prunedStartEvidence(d, anchors, verifier.events));
  if (implausible !== undefined) return implausible;
  return { ok: true, events: verifier.events, heads: verifier.heads() };
}

/** Fetched rows as chain rows, leaving out those that do not decode (a candidate that does not read does not fit). */
function readableRows(d: SqlDialect, fetched: readonly unknown[][]): ChainRow[] {
  const out: ChainRow[] = [];
  for (const raw of fetched) {
    try {
      out.push(chainRowFor(d, raw));
    } catch (error) {
      if (!isCorruptLogError(error)) throw error;
    }
  }
  return out;
}
