import { spawnSync } from 'node:child_process';
import { hostname } from 'node:os';
import { describe, expect, it } from 'vitest';
import { newInstanceId, ownerIsGone } from '../../src/durable/engine.js';

/**
 * Taking a workflow over before its owner's lease lapses is only safe when the owner's pid means a
 * process on THIS machine boot and pid namespace: container replicas and cloned VMs share hostnames.
 */
describe('an owner is gone before its lease only when its pid space is ours', () => {
  const mine = newInstanceId();
  const [host] = mine.split(':');
  const deadPid = spawnSync(process.execPath, ['-e', '']).pid;
  const linux = process.platform === 'linux';

  it('names the pid space beside the hostname (Linux)', () => {
    if (!linux) return;
    expect(host).toMatch(new RegExp(`^${hostname().replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/[0-9a-f]{8}$`));
  });

  it('a process of this pid space that exited is gone; one that runs is not', () => {
    expect(ownerIsGone(`${host}:${deadPid}:00000000`)).toBe(linux);
    expect(ownerIsGone(`${host}:${process.ppid}:00000000`)).toBe(false);
    expect(ownerIsGone(mine)).toBe(false);
  });

  it('the same hostname in another container or machine waits for the lease, even with a pid unused here', () => {
    expect(ownerIsGone(`${hostname()}:${deadPid}:00000000`)).toBe(false);
    expect(ownerIsGone(`${hostname()}/ffffffff:${deadPid}:00000000`)).toBe(host === `${hostname()}/ffffffff`);
  });

  it('hostile owner strings are never taken as gone', () => {
    for (const owner of [
      '',
      ':',
      `${host}:`,
      `${host}:0:x`,
      `${host}:-1:x`,
      `${host}:1e3:x`,
      `${host}:\u0000:x`,
      '\ud800',
    ])
      expect(ownerIsGone(owner)).toBe(false);
  });
});
