/**
 * `keel/testing`: helpers for tests and simulations — an RxJS scheduler on any `Clock` (for
 * `TestScheduler`-style virtual time with Keel's simulated clock) and canonical JSON (the
 * byte-exact form Keel hashes and compares recorded values in). `simulated()`, `simulatedClock()`
 * and `seededRandom()` are in `keel` itself.
 */
export { clockScheduler } from './core/clock.js';
export { canonicalJson } from './core/json.js';
