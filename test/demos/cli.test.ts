import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { FraudDemoResult } from '../../demos/fraud.js';
import { runCli } from '../../src/cli/main.js';
import { demoRegistry } from '../../demos/index.js';
import type { Io } from '../../src/cli/io.js';
import { tmpDb } from './helpers.js';

function captured(tty = false): Io & { stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return { stdout, stderr, tty, out: (t) => void stdout.push(t), err: (t) => void stderr.push(t) };
}

describe('keel demo', () => {
  it('runs the fraud demo and prints its results as JSON', { timeout: 60_000 }, async () => {
    const db = tmpDb();
    const io = captured();
    const code = await runCli(['demo', 'fraud', '--count', '20', '--db', db, '--json'], io, {
      demos: demoRegistry,
    });
    expect(code).toBe(0);
    expect(io.stderr).toEqual([]);
    const result = JSON.parse(io.stdout.join('')) as FraudDemoResult;
    expect(result.demo).toBe('fraud');
    expect(result.db).toBe(db);
    expect(result.full.transactions).toBe(20);
    expect(result.decisions).toEqual({ compared: 20, same: 20 });
    expect(existsSync(db)).toBe(true);
  });

  it('prints a readable summary, with the same numbers for the same seed', { timeout: 60_000 }, async () => {
    const io = captured();
    expect(
      await runCli(['demo', 'fraud', '--count', '20', '--seed', '3', '--db', tmpDb(), '--quiet'], io, {
        demos: demoRegistry,
      }),
    ).toBe(0);
    const text = io.stdout.join('\n');
    expect(text).toContain('same decisions: 20/20');
    expect(text).toMatch(/full \(stop: all\)\s+5\.00\s+\$0\.1[45]\d/);

    const json = captured();
    await runCli(['demo', 'fraud', '--count', '20', '--seed', '3', '--db', tmpDb(), '--json'], json, {
      demos: demoRegistry,
    });
    const r = JSON.parse(json.stdout.join('')) as FraudDemoResult;
    const perWeek = r.adaptive.costPerWeekUsd.toLocaleString('en-US', { minimumFractionDigits: 2 });
    const adaptive = `${r.adaptive.agentsPerTransaction.toFixed(2)}\\s+\\$[\\d.]+\\s+\\$${perWeek}`;
    expect(text).toMatch(new RegExp(`adaptive \\(stop: decided\\)\\s+${adaptive}`));
  });

  it.each([
    [
      ['demo', 'invoices'],
      'unknown demo "invoices": choose one of invoice, fraud, cascade, chaos, support, or all',
    ],
    [['demo', 'fraud', '--count', 'many'], '--count must be a positive whole number, got "many"'],
    [['demo', 'fraud', '--count', '0'], '--count must be a positive whole number, got "0"'],
    [['demo', 'fraud', '--seed', 'abc'], '--seed must be a whole number >= 0, e.g. --seed 42; got "abc"'],
  ])('refuses %j with exit code 2 and says what to do', async (argv, message) => {
    const db = tmpDb();
    const io = captured();
    expect(await runCli([...argv, '--db', db], io, { demos: demoRegistry })).toBe(2);
    expect(io.stderr.join('\n')).toContain(message);
    expect(io.stdout).toEqual([]);
    expect(existsSync(db)).toBe(false);
  });

  it('asks for the demo name when it is missing (exit 2)', async () => {
    const io = captured();
    expect(await runCli(['demo'], io, { demos: demoRegistry })).toBe(2);
    expect(io.stderr.join('\n')).toMatch(/missing required argument 'demo'/);
  });

  it('started without demos (the library does not import them), demo and replay say how to give them', async () => {
    const db = tmpDb();
    const demo = captured();
    expect(await runCli(['demo', 'fraud', '--count', '5', '--db', db], demo)).toBe(3);
    expect(demo.stderr.join('\n')).toContain('keel demo fraud: this keel was started without demos');
    expect(demo.stderr.join('\n')).toContain('runCli(argv, io, { demos })');
    expect(existsSync(db)).toBe(false);

    const replay = captured();
    expect(await runCli(['replay', 'all', '--db', db], replay)).toBe(3);
    expect(replay.stderr.join('\n')).toContain('pass --topologies <module>');
    expect(replay.stdout).toEqual([]);
  });

  it(
    'replays a demo log with the demos it was given, no --topologies needed',
    { timeout: 60_000 },
    async () => {
      const db = tmpDb();
      const io = captured();
      const options = { demos: demoRegistry };
      expect(await runCli(['demo', 'fraud', '--count', '5', '--db', db, '--quiet'], io, options)).toBe(0);
      const replay = captured();
      expect(await runCli(['replay', 'all', '--db', db], replay, options)).toBe(0);
      expect(replay.stdout.join('\n')).toMatch(
        /10 workflow\(s\) replayed with 0 model calls: 10 identical, 0 diverged/,
      );
    },
  );
});
