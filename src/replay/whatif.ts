/**
 * What-if analysis: re-evaluates recorded workflows under a changed policy — cascade thresholds,
 * vote stop rules, cache TTLs — as pure functions over the recorded events, without calling a
 * model. Where the answer depends only on what was recorded it is exact; where a policy needs an
 * output the record never produced, the cell is `unknown` (or, for cache misses, an estimate that
 * is counted as such), never guessed. Accuracy comes from `rt.feedback()` ground truth.
 *
 * `keel whatif` prints these. `whatIfCascade`, `whatIfVote` and `whatIfCache` take a synchronous
 * iterable (SQLite's `store.iterate()`); `createCascadeWhatIf`, `createVoteWhatIf` and
 * `createCacheWhatIf` are the same analyses as push-based folds, which `foldEvents` streams from any
 * store, Postgres's asynchronous `iterate()` included.
 */
export { whatIfCascade, createCascadeWhatIf } from './whatif-cascade.js';
export type {
  CascadeWhatIf,
  CascadeWhatIfFold,
  CascadeWhatIfOptions,
  CascadeSiteWhatIf,
  CascadeStageInfo,
  CascadeThresholdRow,
} from './whatif-cascade.js';
export { whatIfVote, createVoteWhatIf } from './whatif-vote.js';
export type {
  VoteWhatIf,
  VoteWhatIfFold,
  VoteWhatIfOptions,
  VoteSiteWhatIf,
  VoteStop,
  VoteStopRow,
} from './whatif-vote.js';
export { whatIfCache, createCacheWhatIf } from './whatif-cache.js';
export type {
  CacheWhatIf,
  CacheWhatIfFold,
  CacheWhatIfOptions,
  CacheScope,
  CacheFigures,
  CacheTtlRow,
} from './whatif-cache.js';
export { projectVolume, WEEKS_PER_YEAR } from './volume.js';
export type { VolumeProjection } from './volume.js';
export type { Accuracy } from './accuracy.js';
