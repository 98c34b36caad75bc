/**
 * The `seq(a, par(b, c), d)` workflow of sigkill.test.ts, shared by the test and its child process:
 * every agent call is reported to `onCall`, which says whether the call answers or hangs until
 * cancelled (what a SIGKILL leaves in flight).
 */
import { agent, type AgentContext, type AgentOutput } from '../../src/supervisor/agent.js';
import { par } from '../../src/supervisor/parallel.js';
import { seq } from '../../src/supervisor/sequential.js';
import { named, type AnyTopology } from '../../src/supervisor/topology.js';

export const SIGKILL_PRICING = { sim: { inputPer1K: 0.01, outputPer1K: 0.02 } };

export function invoiceTopology(onCall: (name: string, attempt: number) => 'answer' | 'hang'): AnyTopology {
  const make = (name: string) =>
    agent({
      name,
      model: 'sim',
      run: (input: unknown, ctx: AgentContext): Promise<AgentOutput<unknown>> => {
        if (onCall(name, ctx.attempt) === 'hang') {
          return new Promise((_, reject) => {
            ctx.signal.addEventListener('abort', () => reject(new Error('aborted')), { once: true });
          });
        }
        return Promise.resolve({
          value: { [name]: input },
          confidence: 0.9,
          usage: { inputTokens: 100, outputTokens: 10 },
        });
      },
    });
  return named('inv', seq(make('a'), par(make('b'), make('c')), make('d')));
}
