/**
 * Boundary check of events on their way into the log. Turns `NewEvent`s into events ready to be
 * chained (`seq` still 0) plus their canonical payload text, or refuses the whole append with an
 * {@link EventValidationError} naming the field.
 */
import { TENANT_ID_FIX, tenantIdProblem } from '../core/tenant.js';
import { loneSurrogateIndex } from '../core/unicode.js';
import { fastCanonicalJson } from '../core/json.js';
import { EventValidationError, MalformedStringError } from './errors.js';
import { DEFAULT_EVENT_CLASS, EVENT_VERSIONS, isKnownEventType } from './events.js';
import type { KeelEvent, NewEvent } from './events.js';

/** Events checked and serialised; `events[i].seq` is 0 until the store assigns it. */
export interface PreparedEvents {
  events: KeelEvent[];
  /** `canonicalJson(events[i].payload)`: the stored payload text and part of the hashed form. */
  payloadJson: string[];
}

/**
 * Validates every event of one append and serialises its payload, appending both to `events` and
 * `payloadJson` (new arrays unless given: a store passes the arrays of the batch it is filling).
 * All or nothing: the first bad field throws and the arrays are left as they were.
 *
 * @throws EventValidationError naming the field, e.g. `events[3].payload.amount`.
 */
export function prepareEvents(
  input: readonly NewEvent[],
  events: KeelEvent[] = [],
  payloadJson: string[] = [],
): PreparedEvents {
  if (!Array.isArray(input)) throw new EventValidationError('events', 'must be an array of events');
  const before = events.length;
  try {
    for (let i = 0; i < input.length; i++) prepareEvent(input[i], i, events, payloadJson);
  } catch (e) {
    events.length = before;
    payloadJson.length = before;
    throw e;
  }
  return { events, payloadJson };
}

/**
 * Validates one event (`index` names it in errors: `events[index].…`) and appends it, ready to be
 * chained, to `events` and its canonical payload text to `payloadJson`; throws before appending.
 *
 * @throws EventValidationError naming the field.
 */
export function prepareEvent(e: unknown, index: number, events: KeelEvent[], payloadJson: string[]): void {
  const i = index;
  if (typeof e !== 'object' || e === null) {
    throw new EventValidationError(`events[${i}]`, `must be an event object, got ${describe(e)}`);
  }
  const { ts, workflowId, type, v, class: cls, payload } = e as Record<string, unknown>;
  if (!isKnownEventType(type)) {
    throw new EventValidationError(`events[${i}].type`, `is ${describe(type)}, not a known event type`);
  }
  if (typeof ts !== 'number' || !Number.isFinite(ts)) {
    throw new EventValidationError(`events[${i}].ts`, `must be a finite number of ms, got ${describe(ts)}`);
  }
  if (typeof workflowId !== 'string' || workflowId.length === 0) {
    throw new EventValidationError(`events[${i}].workflowId`, `must be a non-empty string`);
  }
  // The column stores UTF-8: a lone surrogate would be stored as U+FFFD and no longer match the
  // hash. (`type` and `class` are checked against fixed names; payload text is JSON, which escapes it.)
  if (!workflowId.isWellFormed()) {
    throw new MalformedStringError(`events[${i}].workflowId`, loneSurrogateIndex(workflowId));
  }
  if (v !== undefined && !(typeof v === 'number' && Number.isInteger(v) && v >= 1)) {
    throw new EventValidationError(`events[${i}].v`, `must be a positive integer, got ${describe(v)}`);
  }
  if (cls !== undefined && cls !== 'audit' && cls !== 'operational') {
    throw new EventValidationError(
      `events[${i}].class`,
      `must be "audit" or "operational", got ${describe(cls)}`,
    );
  }
  if (!isPlainObject(payload)) {
    throw new EventValidationError(
      `events[${i}].payload`,
      `must be a plain object, got ${describe(payload)}`,
    );
  }
  const tenant = payload.tenant;
  if (tenant !== undefined) {
    // The tenant stamp labels metrics, spans and log lines: only a well-formed tenant id is stored.
    const problem = tenantIdProblem(tenant);
    if (problem !== undefined)
      throw new EventValidationError(`events[${i}].payload.tenant`, `${problem}; ${TENANT_ID_FIX}`);
  }
  let json: string;
  try {
    json = fastCanonicalJson(payload);
  } catch {
    const bad = findUnserialisable(payload, `events[${i}].payload`);
    throw new EventValidationError(
      bad?.path ?? `events[${i}].payload`,
      bad?.problem ?? 'is not JSON-serialisable',
    );
  }
  if (json.charCodeAt(0) !== 0x7b) {
    throw new EventValidationError(
      `events[${i}].payload`,
      `must serialise to a JSON object (its toJSON() returns ${json})`,
    );
  }
  events.push({
    seq: 0,
    ts,
    workflowId,
    type,
    v: v ?? EVENT_VERSIONS[type],
    class: cls ?? DEFAULT_EVENT_CLASS[type],
    payload,
  } as KeelEvent);
  payloadJson.push(json);
}

/**
 * The canonical JSON of a payload: the stored text and the hashed form (see src/core/json.ts).
 * Throws on a value canonical JSON refuses (bigint, non-finite number); the caller names the field.
 */
export function canonicalPayloadJson(payload: Record<string, unknown>): string {
  return fastCanonicalJson(payload);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'number':
    case 'boolean':
    case 'bigint':
      return String(value);
    case 'object':
      return `an instance of ${value.constructor?.name ?? 'an unknown class'}`;
    default:
      return typeof value;
  }
}

/** Error path only: finds the value `canonicalJson` refused, to name it. */
function findUnserialisable(
  value: unknown,
  path: string,
  ancestors: unknown[] = [],
): { path: string; problem: string } | undefined {
  if (typeof value === 'bigint') return { path, problem: 'is a bigint; convert it to a string or number' };
  if (typeof value === 'number' && !Number.isFinite(value)) {
    return { path, problem: `is ${value}; only finite numbers can be stored` };
  }
  if (typeof value !== 'object' || value === null) return undefined;
  if (ancestors.includes(value)) return { path, problem: 'is a circular reference' };
  ancestors.push(value);
  const bad = findInChildren(value, path, ancestors);
  ancestors.pop();
  return bad;
}

function findInChildren(
  value: object,
  path: string,
  ancestors: unknown[],
): { path: string; problem: string } | undefined {
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const bad = findUnserialisable(value[i], `${path}[${i}]`, ancestors);
      if (bad) return bad;
    }
    return undefined;
  }
  const toJSON = (value as { toJSON?: unknown }).toJSON;
  if (typeof toJSON === 'function') {
    try {
      return findUnserialisable((value as { toJSON: () => unknown }).toJSON(), path, ancestors);
    } catch (e) {
      return { path, problem: `has a toJSON() that threw (${e instanceof Error ? e.message : String(e)})` };
    }
  }
  for (const [k, v] of Object.entries(value)) {
    const bad = findUnserialisable(v, `${path}.${k}`, ancestors);
    if (bad) return bad;
  }
  return undefined;
}
