/**
 * Outcome step: judges what an attempt produced — its shape, usage (charged through the cost step),
 * schema and validator — and tells the machine (`CALL.SUCCEEDED` / `CALL.FAILED`, which decides on a
 * retry); when the machine ends, records the invocation's outcome and settles it: a success (written
 * to the cache), a stale or recorded answer in place of a failure, or the failure's error.
 */
import { ERROR_CATEGORIES, type ErrorCategory } from '../../eventlog/events.js';
import { classifyError } from '../../providers/classify.js';
import type { AgentSnapshot } from '../agent-driver.js';
import { isUsage, type AgentOutput } from '../agent.js';
import { AgentFailedError, AgentTimeoutError, ValidationError, WorkflowCancelledError } from '../errors.js';
import { pauseLimit, releaseLimits } from './limits.js';
import { succeeded } from './record.js';
import { answerStaleIfRecorded } from './replay.js';
import type { AnyAgent, AttemptSignal, CallState, OutcomeStep } from './types.js';
import { ZERO_USAGE, describeValue, safeJson, safeMessage } from './types.js';

/**
 * What is wrong with a `run()` answer (its shape, `model`, `confidence`; usage is judged apart),
 * or undefined when it can be used.
 */
function outputProblem(out: unknown): string | undefined {
  if (typeof out !== 'object' || out === null || Array.isArray(out))
    return `run() resolved ${describeValue(out)}; it must resolve { value, confidence?, usage?, model? }`;
  const { model, confidence } = out as { model?: unknown; confidence?: unknown };
  if (model !== undefined && (typeof model !== 'string' || model.length === 0))
    return `run() answered model ${describeValue(model)}; "model" must be the id of the model that answered, or left out`;
  if (confidence !== undefined && !(typeof confidence === 'number' && confidence >= 0 && confidence <= 1))
    return `run() answered confidence ${describeValue(confidence)}; "confidence" must be a number in [0, 1], or left out`;
  return undefined;
}

/** Checks an output against the agent's schema and validator. */
function validate(
  agent: AnyAgent,
  value: unknown,
): { ok: true; value: unknown } | { ok: false; category: ErrorCategory; message: string } {
  let v = value;
  if (agent.schema) {
    const parsed = agent.schema.safeParse(value);
    if (!parsed.success) return { ok: false, category: 'validation_error', message: parsed.error.message };
    v = parsed.data;
  }
  if (agent.validate) {
    let verdict: ReturnType<NonNullable<AnyAgent['validate']>>;
    try {
      verdict = agent.validate(v);
    } catch (e) {
      return {
        ok: false,
        category: 'validation_error',
        message: `validate() threw (${safeMessage(e)}); make it return a string or { category, message } to reject an output`,
      };
    }
    if (verdict !== true) {
      if (typeof verdict === 'string') return { ok: false, category: 'validation_error', message: verdict };
      if (typeof verdict === 'object' && verdict !== null && ERROR_CATEGORIES.includes(verdict.category))
        return { ok: false, category: verdict.category, message: String(verdict.message) };
      return {
        ok: false,
        category: 'validation_error',
        message: `validate() returned ${describeValue(verdict)}; return true, a string or { category, message }`,
      };
    }
  }
  return { ok: true, value: v };
}

/** `run` resolved: whatever it resolved with, the attempt ends (never a throw out of here). */
function answered(call: CallState, signal: AttemptSignal, attempt: number, out: unknown): void {
  if (call.attempt !== signal || signal.reason !== undefined) return; // timed out, cancelled or finished
  call.attempt = undefined;
  try {
    judge(call, attempt, out);
  } catch (e) {
    crashed(call, attempt, e);
  }
}

/** Charges and checks one answer, then tells the machine how the attempt went. */
function judge(call: CallState, attempt: number, out: unknown): void {
  const { cost } = call.steps;
  const problem = outputProblem(out);
  const answer = (problem === undefined ? out : {}) as AgentOutput<unknown>;
  const answeredModel = answer.model ?? call.model;
  const reported = problem === undefined ? answer.usage : (out as { usage?: unknown } | null)?.usage;
  // The provider answered: its rate-limit tokens settle to what it reported (kept when it did not).
  releaseLimits(call, isUsage(reported) ? reported : undefined);
  let failure: string | undefined = problem;
  if (call.turns > 0) {
    // A tool loop: each model turn was charged as it ended (./turn.ts); nothing more to charge.
  } else if (reported === undefined) {
    cost.chargeEstimate(call, attempt, answeredModel);
    if (failure === undefined && call.agent.onMissingUsage === 'fail')
      failure = `run() reported no usage, and the agent has onMissingUsage: 'fail'; return usage: { inputTokens, outputTokens } from run() (it was charged its reservation, $${call.estimate.toFixed(6)})`;
  } else if (!isUsage(reported)) {
    cost.chargeEstimate(call, attempt, answeredModel);
    failure ??= `run() reported usage ${safeJson(reported)}; "usage" must be { inputTokens, outputTokens } with finite numbers >= 0`;
  } else if (!cost.charge(call, attempt, reported, answeredModel)) {
    failure ??= call.pricingFailure;
  }
  if (failure !== undefined) {
    call.lastOutput = problem === undefined ? answer.value : undefined;
    failAttempt(call, 'malformed_output', failure);
    return;
  }
  const verdict = validate(call.agent, answer.value);
  if (!verdict.ok) {
    call.lastOutput = answer.value;
    failAttempt(call, verdict.category, verdict.message);
    return;
  }
  call.lastResult = {
    value: verdict.value,
    ...(answer.confidence !== undefined ? { confidence: answer.confidence } : {}),
    model: answeredModel,
  };
  call.permit?.success();
  call.permit = undefined;
  call.driver.send({ type: 'CALL.SUCCEEDED' });
}

/** The output was unusable: the attempt fails (not counted against the breaker: the dependency answered). */
function failAttempt(call: CallState, category: ErrorCategory, message: string): void {
  call.permit?.release();
  call.permit = undefined;
  call.driver.send({ type: 'CALL.FAILED', category, message });
}

/** `run` rejected (or threw): the attempt fails with the error's category. */
function threw(call: CallState, signal: AttemptSignal, attempt: number, e: unknown): void {
  if (call.attempt !== signal || signal.reason !== undefined) return;
  call.attempt = undefined;
  const { cost } = call.steps;
  try {
    const f = classifyError(e, call.now());
    // A 429 with retry-after pauses the key for every caller before a waiting call is let go.
    if (f.category === 'rate_limited' && f.retryAfterMs !== undefined) pauseLimit(call, f.retryAfterMs);
    // Usage the error reports is charged; none, and nothing shows the provider refused the call: it
    // may have been served and billed, so its reservation is charged (`estimated`), as for a timeout.
    const unbilled = f.usage === undefined && f.unbilled === true;
    releaseLimits(call, unbilled ? ZERO_USAGE : isUsage(f.usage) ? f.usage : undefined);
    if (call.turns > 0) {
      // A tool loop: its turns were charged (and counted by the breaker) as they ended.
    } else if (unbilled) cost.charge(call, attempt, ZERO_USAGE, call.model);
    else if (!isUsage(f.usage)) cost.chargeEstimate(call, attempt);
    else cost.charge(call, attempt, f.usage, call.model);
    call.permit?.failure(f.category);
    call.permit = undefined;
    call.driver.send({
      type: 'CALL.FAILED',
      category: f.category,
      message: f.message,
      ...(f.retryAfterMs !== undefined ? { retryAfterMs: f.retryAfterMs } : {}),
    });
  } catch (error) {
    crashed(call, attempt, error);
  }
}

/**
 * Last resort: handling an attempt's outcome threw (a hostile error object, an output the log
 * cannot take). Returns the holds and fails the invocation; never throws.
 */
function crashed(call: CallState, attempt: number, error: unknown): void {
  const message = `agent "${call.agent.name}": its answer could not be handled (${safeMessage(error)})`;
  try {
    if (call.reservation !== undefined) call.steps.cost.chargeEstimate(call, attempt);
  } catch {
    call.reservation = undefined;
  }
  try {
    call.permit?.release();
    call.permit = undefined;
    releaseLimits(call);
    if (call.driver.getSnapshot().value === 'calling') {
      call.driver.send({ type: 'CALL.FAILED', category: 'malformed_output', message });
      return;
    }
  } catch {
    // the machine itself failed: settle the invocation below
  }
  call.outcome.reject(
    new AgentFailedError('malformed_output', message, {
      agent: call.agent.name,
      path: call.ctx.path,
      attempts: attempt - call.attemptBase,
      cause: error,
    }),
  );
}

function finish(call: CallState, snap: AgentSnapshot): void {
  const { agent, ctx, outcome } = call;
  call.attempt?.abort('finished');
  // Whatever ended the invocation (cancel while gated, a sibling's failure), never keep a
  // breaker probe slot or a budget reservation: a held probe would leave the breaker half-open.
  call.permit?.release();
  call.permit = undefined;
  call.reservation?.release();
  call.reservation = undefined;
  // Only an attempt still gated can hold these here: it never reached the provider.
  releaseLimits(call, ZERO_USAGE);
  const latencyMs = call.now() - call.startedAt;
  const c = snap.context;
  const lastResult = call.lastResult;
  if (snap.value === 'succeeded' && lastResult) {
    succeeded(agent, ctx, lastResult, c.attempt, latencyMs, call.usageTotal, call.costUsd, false);
    call.steps.cache.remember(call, lastResult);
    outcome.resolve(lastResult);
    return;
  }
  const category: ErrorCategory = c.category ?? 'unknown';
  const message = c.message ?? String(snap.value);
  if (snap.value === 'failed' && answerStaleIfRecorded(call, c.attempt, latencyMs)) return;
  if (snap.value !== 'cancelled') {
    const fallback = (): void => fail(call, snap, category, message, latencyMs);
    if (call.steps.cache.serveStale(call, c.attempt, latencyMs, category, fallback)) return;
  }
  fail(call, snap, category, message, latencyMs);
}

function fail(
  call: CallState,
  snap: AgentSnapshot,
  category: ErrorCategory,
  message: string,
  latencyMs: number,
): void {
  const { agent, ctx, outcome } = call;
  const { scope, path } = ctx;
  const attempts = snap.context.attempt;
  if (snap.value === 'rejected') {
    call.emit({
      ts: call.now(),
      workflowId: scope.workflowId,
      type: 'agent.rejected',
      payload: { path, agent: agent.name, taskType: agent.taskType, category, reason: message },
    });
  } else {
    call.emit({
      ts: call.now(),
      workflowId: scope.workflowId,
      type: 'agent.failed',
      payload: {
        path,
        agent: agent.name,
        taskType: agent.taskType,
        model: call.model,
        category,
        message,
        attempts,
        latencyMs,
        costUsd: call.costUsd,
        ...(call.lastOutput !== undefined ? { output: call.lastOutput } : {}),
      },
    });
  }
  const details = { agent: agent.name, path, attempts };
  // The agent's name once: an agent's own error often starts with it already.
  const named = message.startsWith(`${agent.name}: `) ? message : `${agent.name}: ${message}`;
  if (snap.value === 'rejected' && call.rejection) outcome.reject(call.rejection);
  else if (snap.value === 'cancelled') outcome.reject(new WorkflowCancelledError(message));
  else if (category === 'timeout') outcome.reject(new AgentTimeoutError(named, details));
  else if (category === 'validation_error' || category === 'hallucination')
    outcome.reject(new ValidationError(named, details, category));
  else outcome.reject(new AgentFailedError(category, named, details));
}

/** The outcome step. */
export const outcome: OutcomeStep = { answered, threw, finish };
