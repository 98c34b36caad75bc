/**
 * A second process for `workflow-ids.test.ts`: opens the SQLite log at argv[2], runs the `echo`
 * workflow under the workflowId argv[3] and prints `{ calls, result }` (or `{ calls, error }`) as JSON.
 */
import { createRuntime } from '../../src/runtime.js';
import { agent } from '../../src/supervisor/agent.js';

const [db, workflowId] = process.argv.slice(2);
let calls = 0;
const echo = agent({
  name: 'echo',
  model: 'sim',
  run: (input: { order: number }) => {
    calls++;
    return Promise.resolve({ value: { echo: input }, usage: { inputTokens: 100, outputTokens: 10 } });
  },
});
const rt = createRuntime({
  db,
  seed: 7,
  pricing: { sim: { inputPer1K: 0.01, outputPer1K: 0.02 } },
  cache: false,
});
try {
  const result = await rt.run(echo, { order: 1 }, { workflowId });
  process.stdout.write(JSON.stringify({ calls, result }));
} catch (e) {
  process.stdout.write(JSON.stringify({ calls, error: (e as Error).name }));
} finally {
  await rt.close();
}
