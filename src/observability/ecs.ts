/**
 * Elasticsearch-ready logs as a consumer of the event stream: each {@link KeelEvent} becomes an
 * Elastic Common Schema (ECS) document in the ecs-logging layout (top-level dotted keys, as
 * `@elastic/ecs-pino-format` writes them). {@link createEcsLogSink} writes them as JSON lines through
 * pino with that formatter; {@link toEsBulk} turns a batch into an Elasticsearch `_bulk` body.
 */
import fs from 'node:fs';
import nodePath from 'node:path';
import { ecsFormat } from '@elastic/ecs-pino-format';
import { pino, type DestinationStream, type Logger } from 'pino';
import { createPrivateFile, resolveFileMode } from '../core/files.js';
import type { ErrorCategory, EventClass, KeelEvent, KeelEventType } from '../eventlog/events.js';

/** ECS version of the documents (the one `@elastic/ecs-pino-format` stamps on its lines). */
export const ECS_VERSION = '8.10.0';

/** Default `event.dataset` of Keel's log documents. */
export const DEFAULT_EVENT_DATASET = 'keel.events';

/** `log.level` of a Keel event: `error` for failures, `warn` for alerts and rejections. */
export type EcsLogLevel = 'error' | 'warn' | 'info';

/** ECS `event.outcome`. */
export type EcsOutcome = 'success' | 'failure' | 'unknown';

/** ECS `labels` (keywords) Keel sets; absent when the event does not carry the value. */
export interface EcsLabels {
  workflow_id: string;
  agent?: string;
  model?: string;
  task_type?: string;
  breaker?: string;
  /** Topology path, e.g. `invoice/par[0]/vendor_extraction`. */
  node_path?: string;
  /** The workflow's tenant (`RunOptions.tenant`), also in ECS `organization.id`. */
  tenant?: string;
}

/** One Keel event as an ECS document. */
export interface EcsDocument {
  /** Event time, ISO 8601 UTC. */
  '@timestamp': string;
  'log.level': EcsLogLevel;
  /** A one-line human description. */
  message: string;
  'ecs.version': string;
  'service.name': string;
  'event.dataset': string;
  /** The Keel event type, e.g. `agent.failed`. */
  'event.action': KeelEventType;
  /** `alert` for `alert.raised` and `budget.alert`, else `event`. */
  'event.kind': 'event' | 'alert';
  'event.outcome': EcsOutcome;
  /** The event's `seq` in the log. */
  'event.sequence': number;
  /** Duration in nanoseconds (ECS unit), for events that report `latencyMs`. */
  'event.duration'?: number;
  'trace.id'?: string;
  'span.id'?: string;
  /**
   * The workflow's tenant (`RunOptions.tenant`): ECS's field for multi-tenant data. Some Elastic
   * ingest pipelines set `organization.id` themselves; filter on `labels.tenant` there.
   */
  'organization.id'?: string;
  /** Root-cause category of a failure. */
  'error.type'?: ErrorCategory;
  'error.message'?: string;
  labels: EcsLabels;
  'keel.event_class': EventClass;
  'keel.event_version': number;
  /** Actual cost in USD, for events that report one. */
  'keel.cost_usd'?: number;
  /** The event payload as JSON text (text, so varied payload shapes never clash in a mapping). */
  'keel.payload'?: string;
}

/** The envelope pino and the formatter write themselves. */
type EnvelopeKey = 'log.level' | 'message' | 'ecs.version' | 'service.name' | 'event.dataset';

/** Options of {@link toEcs}. */
export interface ToEcsOptions {
  /** `service.name`, e.g. `invoice-service`. */
  serviceName: string;
  /** `trace.id` to correlate with the event's span (from `KeelTracing.onEvent`). */
  traceId?: string;
  /** `span.id` to correlate with the event's span. */
  spanId?: string;
  /** `event.dataset` (default `keel.events`). */
  eventDataset?: string;
  /** Include the payload as `keel.payload` JSON text (default true). */
  includePayload?: boolean;
}

const FAILURE_LEVEL: ReadonlySet<KeelEventType> = new Set<KeelEventType>(['workflow.failed', 'agent.failed']);
const WARN_LEVEL: ReadonlySet<KeelEventType> = new Set<KeelEventType>([
  'agent.rejected',
  'agent.timed_out',
  'agent.retried',
  'alert.raised',
  'budget.alert',
  'budget.downgraded',
  'pricing.unknown_model',
  'cache.stale_served',
  'canary.rolled_back',
  'workflow.cancelled',
  'workflow.interrupted',
]);
const SUCCESS: ReadonlySet<KeelEventType> = new Set<KeelEventType>([
  'workflow.completed',
  'agent.succeeded',
  'cache.hit',
  'vote.decided',
  'cascade.accepted',
  'canary.promoted',
]);
const FAILURE: ReadonlySet<KeelEventType> = new Set<KeelEventType>([
  'workflow.failed',
  'agent.failed',
  'agent.rejected',
  'agent.retried',
  'agent.timed_out',
  'canary.rolled_back',
]);

function levelOf(event: KeelEvent): EcsLogLevel {
  if (FAILURE_LEVEL.has(event.type)) return 'error';
  if (WARN_LEVEL.has(event.type)) return 'warn';
  if (event.type === 'breaker.transitioned' && event.payload.to !== 'closed') return 'warn';
  return 'info';
}

function outcomeOf(type: KeelEventType): EcsOutcome {
  if (SUCCESS.has(type)) return 'success';
  return FAILURE.has(type) ? 'failure' : 'unknown';
}

const usd = (n: number): string => `$${n.toFixed(4)}`;

function messageOf(event: KeelEvent): string {
  switch (event.type) {
    case 'workflow.started':
      return `workflow ${event.payload.name} started`;
    case 'workflow.completed':
      return `workflow completed in ${event.payload.latencyMs} ms (${usd(event.payload.costUsd)})`;
    case 'workflow.failed':
      return `workflow failed: ${event.payload.category}: ${event.payload.message}`;
    case 'workflow.cancelled':
      return `workflow cancelled: ${event.payload.reason}`;
    case 'workflow.interrupted':
      return `workflow interrupted after seq ${event.payload.lastSeq} (marked by ${event.payload.markedBy}): ${event.payload.reason}`;
    case 'agent.invoked':
      return `agent ${event.payload.agent} invoked (${event.payload.model})`;
    case 'agent.succeeded':
      return `agent ${event.payload.agent} succeeded in ${event.payload.latencyMs} ms${event.payload.cached === true ? ' (cached)' : ''}`;
    case 'agent.failed':
      return `agent ${event.payload.agent} failed: ${event.payload.category}: ${event.payload.message}`;
    case 'agent.retried':
      return `agent ${event.payload.agent} attempt ${event.payload.attempt} failed (${event.payload.category}); retrying in ${event.payload.delayMs} ms`;
    case 'agent.timed_out':
      return `agent ${event.payload.agent} attempt ${event.payload.attempt} timed out after ${event.payload.timeoutMs} ms`;
    case 'agent.rejected':
      return `agent ${event.payload.agent} rejected (${event.payload.category}): ${event.payload.reason}`;
    case 'cost.incurred':
      return `agent ${event.payload.agent} cost ${usd(event.payload.costUsd)} on ${event.payload.model}`;
    case 'budget.alert':
      return `budget ${event.payload.scope} at ${Math.round(event.payload.threshold * 100)}%: ${usd(event.payload.spentUsd)} of ${usd(event.payload.limitUsd)}`;
    case 'budget.downgraded':
      return `agent ${event.payload.agent} downgraded from ${event.payload.fromModel} to ${event.payload.toModel}`;
    case 'cache.hit':
      return `cache hit for ${event.payload.agent} (saved ${usd(event.payload.savedUsd)})`;
    case 'breaker.transitioned':
      return `breaker ${event.payload.breaker} ${event.payload.from} -> ${event.payload.to}: ${event.payload.reason}`;
    case 'vote.early_stop':
      return `vote stopped early after ${event.payload.cast} of ${event.payload.total} agents`;
    case 'cascade.escalated':
      return `cascade escalated from ${event.payload.fromAgent} to ${event.payload.toAgent}: ${event.payload.reason}`;
    case 'alert.raised':
      return `${event.payload.severity} alert: ${event.payload.title}`;
    case 'alert.resolved':
      return `alert resolved: ${event.payload.title}`;
    default:
      return event.type;
  }
}

/** Reads the optional string or number members Keel's payloads share, without a per-type switch. */
interface CommonPayload {
  path?: unknown;
  agent?: unknown;
  model?: unknown;
  taskType?: unknown;
  breaker?: unknown;
  category?: unknown;
  reason?: unknown;
  message?: unknown;
  latencyMs?: unknown;
  costUsd?: unknown;
  tenant?: unknown;
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** The event's own fields, without the envelope pino and the formatter write. */
function eventFields(
  event: KeelEvent,
  ids: { traceId?: string; spanId?: string } | undefined,
  includePayload: boolean,
): Omit<EcsDocument, EnvelopeKey> {
  const p = event.payload as CommonPayload;
  const labels: EcsLabels = { workflow_id: event.workflowId };
  const agent = str(p.agent);
  if (agent !== undefined) labels.agent = agent;
  const model = str(p.model);
  if (model !== undefined) labels.model = model;
  const taskType = str(p.taskType);
  if (taskType !== undefined) labels.task_type = taskType;
  const breaker = str(p.breaker);
  if (breaker !== undefined) labels.breaker = breaker;
  const path = str(p.path);
  if (path !== undefined) labels.node_path = path;
  const tenant = str(p.tenant);
  if (tenant !== undefined) labels.tenant = tenant;

  const doc: Omit<EcsDocument, EnvelopeKey> = {
    '@timestamp': new Date(event.ts).toISOString(),
    'event.action': event.type,
    'event.kind': event.type === 'alert.raised' || event.type === 'budget.alert' ? 'alert' : 'event',
    'event.outcome': outcomeOf(event.type),
    'event.sequence': event.seq,
    labels,
    'keel.event_class': event.class,
    'keel.event_version': event.v,
  };
  if (typeof p.latencyMs === 'number') doc['event.duration'] = Math.round(p.latencyMs * 1e6);
  if (ids?.traceId !== undefined) doc['trace.id'] = ids.traceId;
  if (ids?.spanId !== undefined) doc['span.id'] = ids.spanId;
  if (tenant !== undefined) doc['organization.id'] = tenant;
  const category =
    event.type === 'agent.timed_out'
      ? 'timeout'
      : event.type === 'workflow.cancelled'
        ? 'cancelled'
        : event.type === 'cache.stale_served'
          ? event.payload.reason
          : (str(p.category) as ErrorCategory | undefined);
  if (category !== undefined) {
    doc['error.type'] = category;
    const message = str(p.message) ?? str(p.reason);
    if (message !== undefined && event.type !== 'cache.stale_served') doc['error.message'] = message;
  }
  if (typeof p.costUsd === 'number') doc['keel.cost_usd'] = p.costUsd;
  if (includePayload) doc['keel.payload'] = JSON.stringify(event.payload);
  return doc;
}

/**
 * Converts one event to an ECS document: `@timestamp`, `log.level` (error for failures, warn for
 * alerts and rejections), `message`, `ecs.version`, `event.action` (the event type),
 * `event.outcome`, `event.sequence`, `trace.id` / `span.id` when given, `service.name`,
 * `error.type` (the root-cause category) and `labels` (workflow id, agent, model, task type).
 *
 * @example
 * const ids = tracing.onEvent(event);
 * const doc = toEcs(event, { serviceName: 'invoice-service', ...ids });
 */
export function toEcs(event: KeelEvent, options: ToEcsOptions): EcsDocument {
  const ids = { traceId: options.traceId, spanId: options.spanId };
  return {
    'log.level': levelOf(event),
    message: messageOf(event),
    'ecs.version': ECS_VERSION,
    'service.name': options.serviceName,
    'event.dataset': options.eventDataset ?? DEFAULT_EVENT_DATASET,
    ...eventFields(event, ids, options.includePayload ?? true),
  };
}

/** Options of {@link toEsBulk}. */
export interface EsBulkOptions {
  /** Target index (or data stream), e.g. `keel-events`. */
  index: string;
  /** `service.name` of the documents (default `keel`). */
  serviceName?: string;
  /** `event.dataset` (default `keel.events`). */
  eventDataset?: string;
  /** Trace ids per event, when known (e.g. kept from `KeelTracing.onEvent`). */
  ids?: (event: KeelEvent) => { traceId?: string; spanId?: string } | undefined;
}

/**
 * An Elasticsearch `_bulk` request body (NDJSON): per event an action line
 * `{"index":{"_index":…,"_id":"<seq>"}}` and its ECS document, ending with a newline. The `_id`
 * is the event's `seq`, so re-sending a batch overwrites rather than duplicates.
 *
 * @example
 * const body = toEsBulk(store.query({ workflowId }), { index: 'keel-events' });
 * await fetch(`${es}/_bulk`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body });
 */
export function toEsBulk(events: Iterable<KeelEvent>, options: EsBulkOptions): string {
  const serviceName = options.serviceName ?? 'keel';
  const lines: string[] = [];
  for (const event of events) {
    const ids = options.ids?.(event);
    lines.push(
      JSON.stringify({ index: { _index: options.index, _id: String(event.seq) } }),
      JSON.stringify(
        toEcs(event, {
          serviceName,
          traceId: ids?.traceId,
          spanId: ids?.spanId,
          eventDataset: options.eventDataset,
        }),
      ),
    );
  }
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
}

/** Options of {@link createEcsLogSink}. */
export interface EcsLogSinkOptions {
  /**
   * Where the JSON lines go: a file path (created with its directories, appended to) or a stream
   * (anything with `write(line)`, e.g. `process.stdout`; the sink never ends a stream it was given).
   */
  destination: string | DestinationStream;
  /** `service.name` of every line. */
  serviceName: string;
  /** `event.dataset` (default `keel.events`). */
  eventDataset?: string;
  /** Lowest level written (default `info`: everything). */
  level?: EcsLogLevel;
  /** Include the payload as `keel.payload` JSON text (default true). */
  includePayload?: boolean;
  /**
   * Permission bits of the file when the sink creates it (a `destination` path; default `0o600`:
   * the lines carry audit data). An existing file keeps its mode.
   */
  fileMode?: number;
}

/** Writes events as ECS JSON lines. */
export interface EcsLogSink {
  /** Logs one event, with the trace ids of its span when known (`KeelTracing.onEvent`'s result). */
  write(event: KeelEvent, ids?: { traceId?: string; spanId?: string }): void;
  /** Resolves once buffered lines are handed to the destination. */
  flush(): Promise<void>;
  /** Flushes, then closes the file it opened (a given stream stays open). Idempotent. */
  close(): Promise<void>;
}

/** The sink's own file: its directories made, the file created with `mode` unless it exists. */
function openLogFile(dest: string, mode: number): ReturnType<typeof pino.destination> {
  fs.mkdirSync(nodePath.dirname(nodePath.resolve(dest)), { recursive: true });
  createPrivateFile(dest, mode, 'logs.destination');
  return pino.destination({ dest, sync: false, mode });
}

/**
 * A log sink on pino with `@elastic/ecs-pino-format`: one ECS JSON line per event, with
 * `@timestamp` from the event (not the wall clock), `process.pid` and `host.hostname` from pino.
 *
 * @example
 * const sink = createEcsLogSink({ destination: 'logs/keel.ndjson', serviceName: 'invoice-service' });
 * store.onCommit((events) => events.forEach((e) => sink.write(e, tracing.onEvent(e))));
 * await sink.close();
 */
export function createEcsLogSink(options: EcsLogSinkOptions): EcsLogSink {
  const includePayload = options.includePayload ?? true;
  const ownsFile = typeof options.destination === 'string';
  const file =
    typeof options.destination === 'string'
      ? openLogFile(options.destination, resolveFileMode(options.fileMode, 'logs.fileMode'))
      : undefined;
  const logger: Logger = pino(
    {
      ...ecsFormat({
        serviceName: options.serviceName,
        eventDataset: options.eventDataset ?? DEFAULT_EVENT_DATASET,
        apmIntegration: false,
        convertErr: false,
      }),
      // `@timestamp` comes from the event, so replayed or batched events keep their own time.
      timestamp: false,
      level: options.level ?? 'info',
    },
    file ?? (options.destination as DestinationStream),
  );
  let closing: Promise<void> | undefined;

  const flush = (): Promise<void> =>
    new Promise<void>((resolve, reject) => logger.flush((error) => (error ? reject(error) : resolve())));

  return {
    write(event, ids) {
      const level = levelOf(event);
      if (closing !== undefined || !logger.isLevelEnabled(level)) return;
      logger[level](eventFields(event, ids, includePayload), messageOf(event));
    },
    flush,
    close: () =>
      (closing ??= (async () => {
        if (file === undefined || !ownsFile) {
          await flush();
          return;
        }
        await new Promise<void>((resolve, reject) => {
          file.once('close', () => resolve());
          file.once('error', reject);
          file.end();
        });
      })()),
  };
}
