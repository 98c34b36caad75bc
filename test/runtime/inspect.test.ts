import { createWebSocketInspector } from '@statelyai/inspect';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { ProviderError } from '../../src/providers/types.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import { agent } from '../../src/supervisor/agent.js';

interface Received {
  type: string;
  name?: string;
  sessionId: string;
  event?: { type?: string };
}

let server: WebSocketServer | undefined;
let rt: Runtime | undefined;
afterEach(async () => {
  await rt?.close();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  rt = undefined;
  server = undefined;
});

describe('watching a live runtime with the Stately inspector', () => {
  it("streams agent and breaker actors' inspection events to a WebSocket receiver on loopback", async () => {
    const received: Received[] = [];
    let notify = (): void => undefined;
    server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise<void>((resolve) => server?.once('listening', () => resolve()));
    const port = (server.address() as AddressInfo).port;
    const connected = new Promise<void>((resolve) => {
      server?.on('connection', (socket) => {
        resolve();
        socket.on('message', (data: Buffer) => {
          received.push(JSON.parse(data.toString('utf8')) as Received);
          notify();
        });
      });
    });
    const inspector = createWebSocketInspector({ url: `ws://127.0.0.1:${port}` });
    await connected;
    rt = createRuntime({
      db: ':memory:',
      seed: 1,
      inspect: inspector.inspect,
      pricing: { sim: { inputPer1K: 0, outputPer1K: 0 } },
    });
    const flaky = agent({
      name: 'vendor_extraction',
      model: 'sim',
      breaker: { name: 'openai', failureThreshold: 1 },
      run: () => Promise.reject(new ProviderError('provider_error', '500')),
    });
    await expect(rt.run(flaky, {})).rejects.toMatchObject({ category: 'provider_error' });
    // Wait (bounded by the test timeout) until the receiver has the breaker opening.
    await new Promise<void>((resolve) => {
      const check = (): void => {
        if (received.some((e) => e.type === '@xstate.event' && e.event?.type === 'FAILURE')) resolve();
      };
      notify = check;
      check();
    });
    inspector.stop();
    const actors = received.filter((e) => e.type === '@xstate.actor');
    const names = actors.map((e) => e.name ?? '');
    expect(names.some((n) => n.includes('agent'))).toBe(true);
    expect(names.some((n) => n.includes('breaker') || n.includes('circuitBreaker'))).toBe(true);
    const agentEvents = received.filter((e) => e.type === '@xstate.event').map((e) => e.event?.type);
    expect(agentEvents).toEqual(expect.arrayContaining(['START', 'GATE.PASS', 'CALL.FAILED', 'FAILURE']));
    expect(received.some((e) => e.type === '@xstate.snapshot')).toBe(true);
  });
});
