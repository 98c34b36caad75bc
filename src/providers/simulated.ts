/**
 * `simulated()`: a seeded, deterministic model provider for demos, chaos tests and benchmarks.
 *
 * Every call's behaviour (latency, failure, confidence, usage, output) is a pure function of the seed,
 * the model, the canonical JSON of the input and how many times that same (model, input) was called
 * before, plus the clock's time for fault windows. A retry of the same input therefore draws a new
 * outcome, and the whole run is reproducible from the seed.
 */
import { realClock, type TimerHandle } from '../core/clock.js';
import { ConfigError, isKeelError } from '../core/errors.js';
import { canonicalJson } from '../core/json.js';
import { hashSeed, seededRandom, type Random } from '../core/random.js';
import type { Usage } from '../eventlog/events.js';
import { cancelledError } from './classify.js';
import {
  ProviderError,
  type CallContext,
  type ModelProvider,
  type ModelRequest,
  type ModelResponse,
} from './types.js';

/** A latency distribution, as the two percentiles people quote; a lognormal is fitted to them. */
export interface LatencySpec {
  /** Median latency in ms (>= 0; `0` with `p95: 0` answers at once, without a timer). */
  p50: number;
  /** 95th-percentile latency in ms (>= p50). */
  p95: number;
}

/** A normal distribution. */
export interface NormalSpec {
  mean: number;
  /** Standard deviation (>= 0). */
  stddev: number;
}

/** Failure probabilities per call, by kind; their sum must be <= 1. Each defaults to 0. */
export interface ErrorRates {
  /** A 5xx-style failure, after the drawn latency. */
  provider_error?: number;
  /** A 429, after the drawn latency, carrying `retryAfterMs`. */
  rate_limited?: number;
  /** The call hangs until its signal aborts (then rejects with `cancelled`). */
  timeout?: number;
  /** The model answers with unusable output (rejects with `malformed_output`, usage still charged). */
  malformed_output?: number;
}

/**
 * A two-population confidence: a stable share of inputs is "easy" (decided from the seed and the
 * input alone, so the same input is easy for every model and every retry), the rest "hard".
 */
export interface MixtureConfidence {
  /** Fraction of inputs that are easy, in [0, 1]; e.g. 0.7. */
  easyShare: number;
  /** Confidence of easy inputs, e.g. `{ mean: 0.95, stddev: 0.03 }`. */
  easy: NormalSpec;
  /** Confidence of hard inputs, e.g. `{ mean: 0.6, stddev: 0.15 }`. */
  hard: NormalSpec;
}

/**
 * How confident the simulated model says it is; always clamped to [0, 1]. A normal, an easy/hard
 * mixture, or a function of the request and a seeded `Random`.
 */
export type ConfidenceSpec =
  NormalSpec | MixtureConfidence | ((request: ModelRequest, rng: Random) => number);

/** Token usage distributions (rounded, at least 1 token each). */
export interface UsageSpec {
  /** Input tokens per call (default `{ mean: 800, stddev: 200 }`). */
  input: NormalSpec;
  /** Output tokens per call (default `{ mean: 200, stddev: 50 }`). */
  output: NormalSpec;
}

/** Behaviour of one model; every field falls back to the top-level option, then to its default. */
export interface SimulatedModelProfile {
  /** Latency distribution (default `{ p50: 800, p95: 2_000 }`). */
  latencyMs?: LatencySpec;
  /** Failure probabilities per call (default: none). */
  rates?: ErrorRates;
  /** `retryAfterMs` carried by `rate_limited` failures, in ms (default 1_000). */
  retryAfterMs?: number;
  /** Reported confidence (default `{ mean: 0.9, stddev: 0.05 }`). */
  confidence?: ConfidenceSpec;
  /** Token usage (default: see {@link UsageSpec}). */
  usage?: UsageSpec;
}

/** Kinds of injected fault. */
export type FaultKind = 'provider_error' | 'rate_limited' | 'timeout' | 'latency_spike' | 'malformed_output';

/**
 * A chaos window: between `fromMs` and `toMs` of the clock's absolute time (`context.clock.now()`),
 * calls suffer `kind` with probability `rate`. A failure window overrides the base outcome of the calls
 * it hits; a `latency_spike` adds `extraLatencyMs` to them.
 */
export interface FaultWindow {
  /** Window start, ms since epoch on the call's clock (inclusive). */
  fromMs: number;
  /** Window end, ms since epoch on the call's clock (exclusive). */
  toMs: number;
  kind: FaultKind;
  /** Probability that a call inside the window is hit, in [0, 1] (default 1). */
  rate?: number;
  /** Only calls to this model are affected (default: every model). */
  model?: string;
  /** For `rate_limited`: the `retryAfterMs` carried, in ms (default: the model's `retryAfterMs`). */
  retryAfterMs?: number;
  /** For `latency_spike`: ms added to the drawn latency (default 5_000). */
  extraLatencyMs?: number;
}

/** Options of {@link simulated}. Top-level profile fields apply to every model not overridden. */
export interface SimulatedOptions extends SimulatedModelProfile {
  /** PRNG seed, number or string (default 0). Same seed + same calls = same run. */
  seed?: number | string;
  /** Provider name for telemetry (default `simulated`). */
  name?: string;
  /** Per-model overrides, keyed by `ModelRequest.model` (default: none). */
  models?: Record<string, SimulatedModelProfile>;
  /** Chaos windows on the clock's absolute time (default: none). */
  faults?: readonly FaultWindow[];
  /**
   * Produces a successful call's output from the request and a seeded `Random`. Default: for JSON
   * requests `{ value: input }`, otherwise the text `echo:<canonical JSON of the input>`.
   */
  respond?: (request: ModelRequest, rng: Random) => unknown;
  /**
   * Scripts tool-using turns. Called for each request that offers `tools`, with the step (1 + the
   * number of assistant turns in `request.messages`) and a seeded `Random`: return the tool calls
   * the model makes this turn, or nothing to answer (with `respond`'s output). Call ids are drawn
   * from the seed (`call_…`), so a run is reproducible. Default: no tool calls.
   *
   * @example
   * toolTurn: (request, step) => step === 1 ? [{ name: 'order_lookup', args: { orderId: 'A-1' } }] : undefined
   */
  toolTurn?: (request: ModelRequest, step: number, rng: Random) => readonly SimulatedToolCall[] | undefined;
}

/** A tool call scripted by {@link SimulatedOptions.toolTurn}. */
export interface SimulatedToolCall {
  name: string;
  args: unknown;
}

/** A simulated provider, with a call counter for tests and demos. */
export interface SimulatedProvider extends ModelProvider {
  /** Number of calls started so far (calls whose signal was already aborted are not started). */
  calls(): number;
}

type Outcome = 'ok' | 'provider_error' | 'rate_limited' | 'timeout' | 'malformed_output';

interface Resolved {
  /** Lognormal parameters; `zero` means no latency at all. */
  mu: number;
  sigma: number;
  zero: boolean;
  /** Cumulative failure thresholds, in the order of `FAILURES`. */
  thresholds: readonly number[];
  retryAfterMs: number;
  confidence: ConfidenceSpec;
  usage: UsageSpec;
}

const FAILURES = ['provider_error', 'rate_limited', 'timeout', 'malformed_output'] as const;
const Z95 = 1.6448536269514722;
const DEFAULT_LATENCY: LatencySpec = { p50: 800, p95: 2_000 };
const DEFAULT_CONFIDENCE: NormalSpec = { mean: 0.9, stddev: 0.05 };
const DEFAULT_USAGE: UsageSpec = { input: { mean: 800, stddev: 200 }, output: { mean: 200, stddev: 50 } };

/**
 * A seeded, deterministic model provider. Latency waits run on `context.clock` (default the real
 * clock), so under `simulatedClock()` a 20k-call run takes no wall time; aborting `context.signal`
 * rejects at once with `ProviderError('cancelled')` and clears the pending timer.
 *
 * @example
 * const clock = simulatedClock();
 * const t0 = clock.now();
 * const provider = simulated({
 *   seed: 7,
 *   latencyMs: { p50: 800, p95: 2_000 },
 *   rates: { provider_error: 0.02, rate_limited: 0.01 },
 *   models: { 'gpt-3.5-turbo': { confidence: { easyShare: 0.7, easy: { mean: 0.95, stddev: 0.03 }, hard: { mean: 0.6, stddev: 0.15 } } } },
 *   faults: [{ fromMs: t0 + 60_000, toMs: t0 + 120_000, kind: 'provider_error' }], // an outage
 * });
 * const res = await provider.call({ model: 'gpt-4', input: { invoice: 'INV-1' } }, { signal, clock });
 */
export function simulated(options: SimulatedOptions = {}): SimulatedProvider {
  const name = options.name ?? 'simulated';
  const seedText = String(options.seed ?? 0);
  const faults = (options.faults ?? []).map((f, i) => checkFault(f, `simulated.faults[${i}]`));
  const respond = options.respond;
  const toolTurn = options.toolTurn;
  const profiles = new Map<string, Resolved>();
  const base = resolve(options, {}, 'simulated');
  for (const [model, profile] of Object.entries(options.models ?? {})) {
    profiles.set(model, resolve(options, profile, `simulated.models.${model}`));
  }
  const counts = new Map<string, number>();
  let started = 0;

  const call = async (request: ModelRequest, context: CallContext): Promise<ModelResponse> => {
    const { signal } = context;
    if (signal.aborted) throw cancelledError(name, signal);
    const clock = context.clock ?? realClock;
    const p = profiles.get(request.model) ?? base;
    const inputText = canonicalJson(request.input ?? request.messages ?? null);
    const key = `${request.model}\u0000${inputText}`;
    const n = (counts.get(key) ?? 0) + 1;
    counts.set(key, n);
    started++;

    // Fixed draw order: every call consumes the same draws whatever its outcome.
    const callSeed = hashSeed(`${seedText}\u0000${n}\u0000${key}`);
    const rng = seededRandom(callSeed);
    const uOutcome = rng.next();
    const uFault = rng.next();
    const uSpike = rng.next();
    const zLatency = rng.normal(0, 1);
    const zConfidence = rng.normal(0, 1);
    const zIn = rng.normal(0, 1);
    const zOut = rng.normal(0, 1);

    let outcome: Outcome = 'ok';
    for (let i = 0; i < FAILURES.length; i++) {
      if (uOutcome < (p.thresholds[i] as number)) {
        outcome = FAILURES[i] as Outcome;
        break;
      }
    }
    let retryAfterMs = p.retryAfterMs;
    let delayMs = p.zero ? 0 : Math.round(Math.exp(p.mu + p.sigma * zLatency));
    if (faults.length > 0) {
      const now = clock.now();
      let hit = false;
      for (const f of faults) {
        if (now < f.fromMs || now >= f.toMs || (f.model !== undefined && f.model !== request.model)) continue;
        if (f.kind === 'latency_spike') {
          if (uSpike < f.rate) delayMs += f.extraLatencyMs;
        } else if (!hit && uFault < f.rate) {
          hit = true;
          outcome = f.kind;
          retryAfterMs = f.retryAfterMs ?? p.retryAfterMs;
        }
      }
    }

    let response: ModelResponse | undefined;
    let failure: ProviderError | undefined;
    if (outcome === 'ok' || outcome === 'malformed_output') {
      const usage: Usage = {
        inputTokens: tokens(p.usage.input, zIn),
        // A capped request never reports more output than its cap, as real providers stop there.
        outputTokens: capped(tokens(p.usage.output, zOut), request.maxOutputTokens),
      };
      if (outcome === 'ok') response = succeed(request, p, callSeed, inputText, zConfidence, usage);
      else
        failure = new ProviderError(
          'malformed_output',
          `${name}: model "${request.model}" answered with output that is not valid JSON (simulated)`,
          { usage },
        );
    } else if (outcome === 'rate_limited') {
      failure = new ProviderError(
        'rate_limited',
        `${name}: 429 rate limited on "${request.model}" (simulated)`,
        {
          status: 429,
          retryAfterMs,
        },
      );
    } else if (outcome === 'provider_error') {
      failure = new ProviderError('provider_error', `${name}: 503 from "${request.model}" (simulated)`, {
        status: 503,
      });
    }

    const onDelta = context.onDelta;
    // Streamed text: the answer's text arrives in word-sized pieces between the first token (at 30%
    // of the latency) and the end; a provider_error breaks the stream half-way.
    const streamText =
      onDelta === undefined
        ? undefined
        : response !== undefined
          ? textOf(response.output)
          : outcome === 'provider_error'
            ? `echo:${inputText}`
            : undefined;
    const pieces = streamText === undefined ? [] : (streamText.match(/\s*\S+/g) ?? []);
    const shown = response !== undefined ? pieces : pieces.slice(0, Math.ceil(pieces.length / 2));

    return new Promise<ModelResponse>((resolvePromise, reject) => {
      let timer: TimerHandle;
      let armed = false;
      const onAbort = (): void => {
        if (armed) clock.clearTimeout(timer);
        armed = false;
        reject(cancelledError(name, signal));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      if (outcome === 'timeout') return; // hangs until aborted
      const finish = (): void => {
        armed = false;
        signal.removeEventListener('abort', onAbort);
        if (failure) reject(failure);
        else resolvePromise(response as ModelResponse);
      };
      const at = (fn: () => void, ms: number): void => {
        if (ms > 0) {
          timer = clock.setTimeout(fn, ms);
          armed = true;
        } else queueMicrotask(fn);
      };
      if (onDelta === undefined || shown.length === 0) {
        at(finish, delayMs);
        return;
      }
      const first = Math.round(delayMs * 0.3);
      const gap = shown.length > 1 ? (delayMs - first) / shown.length : delayMs - first;
      let i = 0;
      const next = (): void => {
        armed = false;
        if (signal.aborted) return;
        try {
          onDelta(shown[i++] as string);
        } catch (e) {
          signal.removeEventListener('abort', onAbort);
          reject(
            new ProviderError('unknown', `${name}: the onDelta callback threw: ${String(e)}`, { cause: e }),
          );
          return;
        }
        if (signal.aborted) return; // the caller aborted from its delta handler
        if (i < shown.length) at(next, Math.round(first + gap * i) - Math.round(first + gap * (i - 1)));
        else at(finish, delayMs - Math.round(first + gap * (i - 1)));
      };
      at(next, first);
    });
  };

  /** Builds a successful response; a throwing `respond` becomes a classified failure. */
  function succeed(
    request: ModelRequest,
    p: Resolved,
    callSeed: number,
    inputText: string,
    zConfidence: number,
    usage: Usage,
  ): ModelResponse {
    const conf = p.confidence;
    let confidence: number;
    try {
      if (typeof conf === 'function') confidence = conf(request, seededRandom((callSeed ^ 0x5bd1e995) >>> 0));
      else if ('easyShare' in conf) {
        const easy =
          seededRandom(hashSeed(`${seedText}\u0000easy\u0000${inputText}`)).next() < conf.easyShare;
        const spec = easy ? conf.easy : conf.hard;
        confidence = spec.mean + spec.stddev * zConfidence;
      } else confidence = conf.mean + conf.stddev * zConfidence;
      const calls =
        toolTurn !== undefined && request.tools !== undefined && request.tools.length > 0
          ? toolTurn(request, stepOf(request), seededRandom((callSeed ^ 0x27d4eb2f) >>> 0))
          : undefined;
      if (calls !== undefined && calls.length > 0) {
        const ids = seededRandom((callSeed ^ 0x165667b1) >>> 0);
        const toolCalls = calls.map((c) => ({
          id: `call_${Math.floor(ids.next() * 2 ** 32).toString(36)}`,
          name: c.name,
          args: c.args,
        }));
        return {
          output: '',
          model: request.model,
          usage,
          confidence: clamp01(confidence),
          toolCalls,
          finishReason: 'tool_calls',
        };
      }
      const output =
        respond !== undefined
          ? respond(request, seededRandom((callSeed ^ 0x9e3779b9) >>> 0))
          : request.json
            ? { value: request.input ?? null }
            : `echo:${inputText}`;
      return { output, model: request.model, usage, confidence: clamp01(confidence) };
    } catch (e) {
      if (isKeelError(e)) throw e;
      throw new ProviderError('unknown', `${name}: the respond/confidence option threw: ${String(e)}`, {
        cause: e,
      });
    }
  }

  return { name, call, calls: () => started };
}

/** The model turn a request asks for: 1 + the assistant turns already in its messages. */
function stepOf(request: ModelRequest): number {
  return 1 + (request.messages ?? []).filter((m) => m.role === 'assistant').length;
}

/** The text a streamed answer shows: a string as is, anything else as canonical JSON. */
function textOf(output: unknown): string {
  return typeof output === 'string' ? output : canonicalJson(output ?? null);
}

function tokens(spec: NormalSpec, z: number): number {
  return Math.max(1, Math.round(spec.mean + spec.stddev * z));
}

function clamp01(x: number): number {
  return Number.isNaN(x) ? 0 : x < 0 ? 0 : x > 1 ? 1 : x;
}

function resolve(top: SimulatedModelProfile, model: SimulatedModelProfile, where: string): Resolved {
  const latency = model.latencyMs ?? top.latencyMs ?? DEFAULT_LATENCY;
  const lw = model.latencyMs ? where : 'simulated';
  if (!(latency.p50 >= 0) || !Number.isFinite(latency.p50))
    throw new ConfigError(`${lw}.latencyMs.p50`, `must be a number of ms >= 0, got ${latency.p50}`);
  if (!(latency.p95 >= latency.p50) || !Number.isFinite(latency.p95))
    throw new ConfigError(`${lw}.latencyMs.p95`, `must be >= p50 (${latency.p50}), got ${latency.p95}`);
  if (latency.p50 === 0 && latency.p95 !== 0)
    throw new ConfigError(`${lw}.latencyMs.p50`, 'must be > 0 when p95 > 0 (a lognormal has no zero median)');
  const rates = model.rates ?? top.rates ?? {};
  const rw = model.rates ? where : 'simulated';
  const thresholds: number[] = [];
  let sum = 0;
  for (const kind of FAILURES) {
    const r = rates[kind] ?? 0;
    if (!(r >= 0 && r <= 1))
      throw new ConfigError(`${rw}.rates.${kind}`, `must be a probability in [0, 1], got ${r}`);
    sum += r;
    thresholds.push(sum);
  }
  if (sum > 1 + 1e-9)
    throw new ConfigError(`${rw}.rates`, `failure rates add up to ${sum}; lower them so the sum is <= 1`);
  const retryAfterMs = model.retryAfterMs ?? top.retryAfterMs ?? 1_000;
  if (!(retryAfterMs >= 0))
    throw new ConfigError(
      `${model.retryAfterMs !== undefined ? where : 'simulated'}.retryAfterMs`,
      `must be a number of ms >= 0, got ${retryAfterMs}`,
    );
  const confidence = model.confidence ?? top.confidence ?? DEFAULT_CONFIDENCE;
  const cw = `${model.confidence ? where : 'simulated'}.confidence`;
  if (typeof confidence !== 'function') {
    if ('easyShare' in confidence) {
      if (!(confidence.easyShare >= 0 && confidence.easyShare <= 1))
        throw new ConfigError(`${cw}.easyShare`, `must be a fraction in [0, 1], got ${confidence.easyShare}`);
      checkNormal(confidence.easy, `${cw}.easy`);
      checkNormal(confidence.hard, `${cw}.hard`);
    } else checkNormal(confidence, cw);
  }
  const usage = model.usage ?? top.usage ?? DEFAULT_USAGE;
  const uw = `${model.usage ? where : 'simulated'}.usage`;
  checkNormal(usage.input, `${uw}.input`);
  checkNormal(usage.output, `${uw}.output`);
  const zero = latency.p50 === 0;
  return {
    mu: zero ? 0 : Math.log(latency.p50),
    sigma: zero ? 0 : Math.log(latency.p95 / latency.p50) / Z95,
    zero,
    thresholds,
    retryAfterMs,
    confidence,
    usage,
  };
}

function checkNormal(spec: NormalSpec | undefined, field: string): void {
  if (typeof spec !== 'object' || spec === null || !Number.isFinite(spec.mean))
    throw new ConfigError(`${field}.mean`, 'must be a finite number, e.g. { mean: 0.9, stddev: 0.05 }');
  if (!(spec.stddev >= 0) || !Number.isFinite(spec.stddev))
    throw new ConfigError(`${field}.stddev`, `must be a finite number >= 0, got ${spec.stddev}`);
}

interface CheckedFault {
  fromMs: number;
  toMs: number;
  kind: FaultKind;
  rate: number;
  model: string | undefined;
  retryAfterMs: number | undefined;
  extraLatencyMs: number;
}

const FAULT_KINDS: readonly FaultKind[] = [
  'provider_error',
  'rate_limited',
  'timeout',
  'latency_spike',
  'malformed_output',
];

function checkFault(f: FaultWindow, where: string): CheckedFault {
  if (!FAULT_KINDS.includes(f.kind))
    throw new ConfigError(`${where}.kind`, `must be one of ${FAULT_KINDS.join(', ')}; got ${String(f.kind)}`);
  if (!Number.isFinite(f.fromMs) || !Number.isFinite(f.toMs) || !(f.toMs > f.fromMs))
    throw new ConfigError(
      `${where}.toMs`,
      `the window must satisfy fromMs < toMs, both clock times in ms (got ${f.fromMs}..${f.toMs})`,
    );
  const rate = f.rate ?? 1;
  if (!(rate >= 0 && rate <= 1))
    throw new ConfigError(`${where}.rate`, `must be a probability in [0, 1], got ${f.rate}`);
  const extraLatencyMs = f.extraLatencyMs ?? 5_000;
  if (!(extraLatencyMs >= 0))
    throw new ConfigError(`${where}.extraLatencyMs`, `must be a number of ms >= 0, got ${f.extraLatencyMs}`);
  if (f.retryAfterMs !== undefined && !(f.retryAfterMs >= 0))
    throw new ConfigError(`${where}.retryAfterMs`, `must be a number of ms >= 0, got ${f.retryAfterMs}`);
  return {
    fromMs: f.fromMs,
    toMs: f.toMs,
    kind: f.kind,
    rate,
    model: f.model,
    retryAfterMs: f.retryAfterMs,
    extraLatencyMs,
  };
}

/** `tokens`, at most `cap` when a cap is given. */
function capped(tokens: number, cap: number | undefined): number {
  return cap !== undefined && cap >= 0 && tokens > cap ? Math.floor(cap) : tokens;
}
