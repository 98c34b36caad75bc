/**
 * Shared SQL procedures run by either store. A procedure is a generator that yields the statements
 * it needs ({@link Step}) and receives their results; {@link runSync} drives it on better-sqlite3
 * (synchronous), {@link runAsync} on node-postgres, so the logic of a prune, of reading the heads or
 * of a verify walk is written once. Internal to src/eventlog.
 */

/** One statement for the store to run: `rows` answers its rows as arrays, `run` its changed-row count. */
export interface Step {
  kind: 'rows' | 'run';
  sql: string;
  params: readonly unknown[];
}

/** A shared procedure returning `T`. */
export type SqlProgram<T> = Generator<Step, T, unknown>;

/** Rows (as arrays, in column order) of `sql`. */
export function* rows<R>(sql: string, params: readonly unknown[] = []): SqlProgram<R[]> {
  return (yield { kind: 'rows', sql, params }) as R[];
}

/** The first row of `sql`, if any. */
export function* row<R>(sql: string, params: readonly unknown[] = []): SqlProgram<R | undefined> {
  return (yield* rows<R>(sql, params))[0];
}

/** Runs `sql` for its effect; answers how many rows it changed. */
export function* run(sql: string, params: readonly unknown[] = []): SqlProgram<number> {
  return (yield { kind: 'run', sql, params }) as number;
}

/** Runs a procedure on a synchronous connection. */
export function runSync<T>(program: SqlProgram<T>, execute: (step: Step) => unknown): T {
  let next = program.next();
  while (next.done !== true) next = program.next(execute(next.value));
  return next.value;
}

/** Runs a procedure on an asynchronous connection. */
export async function runAsync<T>(
  program: SqlProgram<T>,
  execute: (step: Step) => Promise<unknown>,
): Promise<T> {
  let next = program.next();
  while (next.done !== true) next = program.next(await execute(next.value));
  return next.value;
}
