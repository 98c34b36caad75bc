/**
 * The `seq(a, b)` workflow of the Postgres resume tests, shared by the test process (which leaves
 * 100 of them interrupted: `a` done, `b` in flight) and its child resumers. Every agent call is
 * reported to `onCall`, which says whether it answers, hangs until cancelled (what a SIGKILL
 * leaves in flight), or answers once a promise it returns resolves.
 */
import { agent, type AgentContext, type AgentOutput } from '../../src/supervisor/agent.js';
import { seq } from '../../src/supervisor/sequential.js';
import { named, type AnyTopology } from '../../src/supervisor/topology.js';

export const PG_RESUME_PRICING = { sim: { inputPer1K: 0.01, outputPer1K: 0.02 } };

export type OnCall = (
  agent: string,
  workflowId: string,
  attempt: number,
) => 'answer' | 'hang' | Promise<void>;

export function jobTopology(onCall: OnCall): AnyTopology {
  const make = (name: string) =>
    agent({
      name,
      model: 'sim',
      run: (input: unknown, ctx: AgentContext): Promise<AgentOutput<unknown>> => {
        const how = onCall(name, ctx.workflowId, ctx.attempt);
        if (how === 'hang') {
          return new Promise((_, reject) => {
            ctx.signal.addEventListener('abort', () => reject(new Error('aborted')), { once: true });
          });
        }
        const output = { value: { [name]: input }, usage: { inputTokens: 10, outputTokens: 1 } };
        return how === 'answer' ? Promise.resolve(output) : how.then(() => output);
      },
    });
  return named('job', seq(make('a'), make('b')));
}
