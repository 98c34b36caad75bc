/**
 * `keel demo support`: a tool-using support agent on the simulated provider, its answers streamed,
 * the flaky refund tool's breaker opening into a fallback answer, then every conversation replayed
 * with 0 model calls and 0 tool executions. Run through `runCli` as a user would; the figures it
 * prints are checked against the log file itself.
 */
import { describe, expect, it } from 'vitest';
import { demoRegistry } from '../../demos/index.js';
import { runSupportDemo } from '../../demos/support.js';
import { runCli } from '../../src/cli/main.js';
import { openSqliteStore, type EventPayloads, type KeelEvent } from '../../src/index.js';
import { tmpDb } from './helpers.js';

const of = <T extends KeelEvent['type']>(events: KeelEvent[], type: T): EventPayloads[T][] =>
  events.filter((e) => e.type === type).map((e) => e.payload as EventPayloads[T]);

describe('keel demo support', () => {
  it('streams the answers, opens the refund breaker into a fallback, replays with 0 calls; prints what the log holds', async () => {
    const db = tmpDb();
    const out: string[] = [];
    const written: string[] = [];
    const code = await runCli(
      ['demo', 'support', '--db', db, '--count', '4', '--seed', '42', '--quiet'],
      { out: (t) => out.push(t), err: () => undefined, write: (t) => written.push(t), tty: false },
      { demos: demoRegistry },
    );
    expect(code).toBe(0);
    const printed = out.join('\n');
    const streamed = written.join('');

    const store = openSqliteStore({ path: db, readonly: true });
    try {
      const events = store.query({});
      expect(store.verify().ok).toBe(true);
      const answers = of(events, 'agent.succeeded').map((p) => (p.output as { reply: string }).reply);
      expect(answers).toHaveLength(4);
      // The answers were streamed piece by piece, each in full.
      for (const a of answers) expect(streamed).toContain(a);
      expect(written.length).toBeGreaterThan(20);
      // The first refund went through; the payments API then failed twice and the breaker opened.
      const tools = [
        ...of(events, 'tool.succeeded').map((p) => `${p.tool}:ok`),
        ...of(events, 'tool.failed').map((p) => `${p.tool}:${p.category}`),
      ];
      expect(tools.filter((t) => t === 'refund:ok')).toHaveLength(1);
      expect(tools.filter((t) => t === 'refund:provider_error')).toHaveLength(1);
      expect(of(events, 'tool.failed').find((p) => p.category === 'provider_error')?.attempts).toBe(2);
      expect(tools.filter((t) => t === 'refund:circuit_open')).toHaveLength(2);
      const transitions = of(events, 'breaker.transitioned').filter((p) => p.breaker === 'tool:payments');
      expect(transitions.map((t) => `${t.from}→${t.to}`)).toEqual(['closed→open']);
      expect(answers.slice(1).every((a) => a.startsWith('I could not issue the refund'))).toBe(true);
      expect(answers[0]).toContain('refunded');

      // Printed figures are the log's: turns, tool outcomes, cost per conversation, the breaker, replay.
      const turns = of(events, 'cost.incurred');
      expect(printed).toContain('Support — 4 conversation(s)');
      expect(printed).toContain('breaker "tool:payments": closed → open');
      expect(printed).toContain('replay: 4 workflow(s), 0 divergence(s), 0 model calls, 0 tool executions');
      expect(printed).toContain(`tool executions: lookupOrder 4, refund 3`);
      const rows = printed.split('\n').filter((l) => /^\s+A-\d+/.test(l));
      expect(rows).toHaveLength(4);
      const ids = [...new Set(events.filter((e) => e.type === 'workflow.started').map((e) => e.workflowId))];
      for (const [i, row] of rows.entries()) {
        const mine = events.filter((e) => e.workflowId === ids[i] && e.type === 'cost.incurred');
        expect(row).toMatch(new RegExp(`^\\s+A-${1001 + i}\\s+${mine.length}\\s`));
        const usd = mine.reduce((n, e) => n + (e.payload as EventPayloads['cost.incurred']).costUsd, 0);
        expect(row).toContain(`$${usd.toFixed(4)}`);
        expect(row).toMatch(i === 0 ? /refunded$/ : /fallback$/);
      }
      expect(turns.length).toBeGreaterThanOrEqual(8);
    } finally {
      await store.close();
    }
  }, 60_000);

  it('rejects a bad count naming the field', async () => {
    await expect(runSupportDemo({ db: tmpDb(), count: 0, seed: 1 })).rejects.toThrow(/count/);
  });
});
