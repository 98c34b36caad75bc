/** What workflow-child.ts and sigkill.test.ts agree on. */

/** Seed of the child's runtime and provider. */
export const CHILD_SEED = 21;

/** One cent per call whatever its usage, so spend is easy to account for. */
export const CHILD_PRICING = { flat: { inputPer1K: 0, outputPer1K: 0, perCall: 0.01 } };

/** The breaker the child trips open before it starts its workflows. */
export const CHILD_BREAKER = 'flaky';

/** The flaky breaker's reset timeout, ms: an hour, so it is still open when the parent restarts. */
export const FLAKY_RESET_MS = 3_600_000;
