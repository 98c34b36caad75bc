/**
 * The runtime's root actor. It does nothing itself: breakers, budgets and agent invocations are
 * created with it as their `parent`, so they share one XState system and the Stately inspector
 * shows the whole runtime as one tree.
 */
import { setup } from 'xstate';

/**
 * The root of a Keel runtime's actor system.
 *
 * @example
 * const root = createActor(runtimeMachine, { clock, inspect }).start();
 */
export const runtimeMachine = setup({
  types: { events: {} as { type: string } },
}).createMachine({
  id: 'keel',
  initial: 'running',
  states: { running: {} },
});
