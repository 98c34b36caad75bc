/** The budget the shared-budget child processes and their parent test agree on. */
import type { BudgetConfig } from '../../src/cost/budget.js';

/** $1 a day, warning at 80%. */
export const CHILD_BUDGET: BudgetConfig = { dailyUsd: 1, alertAt: 0.8 };
/** What each child call reserves and costs, USD: exactly 100 fit in a day. */
export const CHILD_CALL_USD = 0.01;
