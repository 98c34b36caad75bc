/**
 * `keel/observability`: Prometheus metrics, OpenTelemetry tracing and ECS logs — the parts
 * `createRuntime` wires from its `metrics`, `tracing` and `logs` options, usable on their own
 * (`keel serve` builds metrics from a log) — and the attribute and value constants they write.
 */
export { createMetrics, BREAKER_STATE_VALUE } from './observability/metrics.js';
export type { MetricsOptions, KeelMetrics } from './observability/metrics.js';
export { serveMetrics } from './observability/serve.js';
export type { ServeMetricsOptions, MetricsServer } from './observability/serve.js';
export { createTracing } from './observability/tracing.js';
export type { TracingOptions, KeelTracing, TraceIds } from './observability/tracing.js';
export { toEcs, toEsBulk, createEcsLogSink, ECS_VERSION } from './observability/ecs.js';
export type { EcsDocument, EcsLabels, EcsLogLevel, EcsOutcome, EcsLogSink } from './observability/ecs.js';
export * from './observability/genai.js';
