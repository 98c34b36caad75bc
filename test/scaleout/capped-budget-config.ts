/** What capped-budget.test.ts and its child processes agree on. */

/** USD per 1K tokens. */
export const CAPPED_PRICING = { m: { inputPer1K: 0.001, outputPer1K: 0.01 } };
/** The agent's estimate: $0.0051 a call; 196 fit in $1. */
export const CAPPED_ESTIMATE = { inputTokens: 100, outputTokens: 500 };
/** The cap: the worst case is ~$0.0101 a call. */
export const CAPPED_MAX_OUTPUT = 1_000;
