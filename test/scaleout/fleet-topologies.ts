/**
 * The workflow the fleet test runs in two runtime processes (and `keel replay` re-runs from the
 * Postgres log): one cached agent whose every call costs exactly $0.05 at {@link FLEET_PRICING}.
 * Calls are counted per process in `globalThis.keelFleetCalls`.
 */
import { agent } from '../../src/supervisor/agent.js';
import { named, type Topology } from '../../src/supervisor/topology.js';

/** 1,000 input tokens at $0.05 per 1K: $0.05 a call, estimate = actual. */
export const FLEET_USAGE = { inputTokens: 1000, outputTokens: 0 };
export const FLEET_PRICING = { 'fleet-model': { inputPer1K: 0.05, outputPer1K: 0 } };
export const FLEET_CALL_USD = 0.05;

const counter = globalThis as { keelFleetCalls?: number };

/** `extract(input)`: uppercases the vendor; cached for an hour so other processes can reuse it. */
export function fleetWorkflow(): Topology<{ vendor: string }, string> {
  return named(
    'fleet-extract',
    agent({
      name: 'extract',
      model: 'fleet-model',
      taskType: 'vendor',
      estimate: FLEET_USAGE,
      cache: { ttlMs: 3_600_000 },
      run: (input: { vendor: string }) => {
        counter.keelFleetCalls = (counter.keelFleetCalls ?? 0) + 1;
        return Promise.resolve({ value: input.vendor.toUpperCase(), usage: FLEET_USAGE });
      },
    }),
  );
}

/** The registry `keel replay --topologies` loads. */
export function demoTopologies(): Record<string, Topology<never, unknown>> {
  return { 'fleet-extract': fleetWorkflow() };
}
