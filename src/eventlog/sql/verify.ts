/**
 * `verify()` for both stores: every row, a keyset page at a time in seq order, through a
 * {@link ChainVerifier}; the targeted look-ups that name a break's cause are made only for a row
 * that does not link to its class chain, before that row is checked. Then the anchors' plausibility
 * against the kept rows. Internal to src/eventlog.
 */
import { ChainVerifier, type ChainRow } from '../chain.js';
import type { VerifyResult } from '../store.js';
import { CHAINED_COLUMNS, type SqlDialect } from './dialect.js';
import { PAGE_SIZE } from './query.js';
import { loadAnchors, prunedStartEvidence } from './retention.js';
import { rows, type SqlProgram } from './program.js';

/** Walks the whole log and reports its first break (schema checks are the store's own). */
export function* verifyLog(d: SqlDialect): SqlProgram<VerifyResult> {
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
  });
  const e = d.events;
  const page = `SELECT ${CHAINED_COLUMNS} FROM ${e} WHERE seq > ${d.param(1)} ORDER BY seq LIMIT ${d.param(2)}`;
  const hashAfter = `SELECT 1 FROM ${e} WHERE hash = ${d.param(1)} AND seq > ${d.param(2)} LIMIT 1`;
  const prevAfter = `SELECT 1 FROM ${e} WHERE prev_hash = ${d.param(1)} AND seq > ${d.param(2)} LIMIT 1`;
  let cursor = 0;
  for (;;) {
    const chunk = yield* rows<ChainRow>(page, [cursor, PAGE_SIZE]);
    for (const r of chunk) {
      const expected = verifier.expectedPrevHash(r[5]);
      if (expected !== undefined && r[7] !== expected) {
        const seq = r[0];
        answers.set(`hash:${r[7]}:${seq}`, (yield* rows(hashAfter, [r[7], seq])).length > 0);
        answers.set(`prev:${expected}:${seq}`, (yield* rows(prevAfter, [expected, seq])).length > 0);
      }
      const failure = verifier.check(r);
      if (failure !== undefined) return failure;
    }
    if (chunk.length < PAGE_SIZE) break;
    cursor = (chunk[chunk.length - 1] as ChainRow)[0];
  }
  const implausible = verifier.finish() ?? (yield* prunedStartEvidence(d, anchors, verifier.events));
  if (implausible !== undefined) return implausible;
  return { ok: true, events: verifier.events, heads: verifier.heads() };
}
