/**
 * The ownership contract of durable execution (`EventStore.ownership()`): leases, atomic claims,
 * hand-over after a lease lapses. Run against two stores on one log (two processes' views), for
 * SQLite (`ownership-sqlite.test.ts`) and Postgres (`ownership-postgres.test.ts`).
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { EventStore, OwnershipStore } from '../../src/eventlog/store.js';

/** Two stores opened on the same log, and a cleanup. */
export interface OwnershipSubject {
  a: EventStore;
  b: EventStore;
  /** A third store on the same log. */
  c: EventStore;
  cleanup: () => Promise<void>;
}

const T = 1_800_000_000_000;

function owners(store: EventStore): OwnershipStore {
  const o = store.ownership?.();
  if (!o) throw new Error('store has no ownership()');
  return o;
}

export function ownershipContract(name: string, open: () => Promise<OwnershipSubject>): void {
  describe(`${name}: ownership (leases and claims)`, () => {
    const subjects: OwnershipSubject[] = [];
    afterEach(async () => {
      for (const s of subjects.splice(0)) await s.cleanup();
    });
    const fresh = async (): Promise<OwnershipSubject> => {
      const s = await open();
      subjects.push(s);
      return s;
    };

    it('reads no leases or claims before anything was written', async () => {
      const { a } = await fresh();
      expect(await owners(a).leases()).toEqual([]);
      expect(await owners(a).claims()).toEqual([]);
    });

    it('keeps one lease row per owner however often it beats, and another store sees it', async () => {
      const { a, b } = await fresh();
      for (let i = 1; i <= 5; i++) await owners(a).heartbeat('host:1:aaaa', T + i * 1000);
      expect(await owners(b).leases()).toEqual([{ owner: 'host:1:aaaa', expiresAt: T + 5000 }]);
    });

    it('does not claim a workflow whose recorded owner holds a live lease; claims it once the lease lapsed', async () => {
      const { a, b } = await fresh();
      await owners(a).heartbeat('A', T + 10_000);
      const wf = [{ workflowId: 'wf-1', owner: 'A' }];
      expect(await owners(b).claim('B', wf, T)).toEqual([]);
      expect(await owners(b).claim('B', wf, T + 10_000)).toEqual(['wf-1']);
      expect(await owners(a).claims()).toEqual([{ workflowId: 'wf-1', owner: 'B', claimedAt: T + 10_000 }]);
    });

    it('claims a workflow with no recorded owner, or an owner that never leased', async () => {
      const { a } = await fresh();
      const got = await owners(a).claim(
        'A',
        [{ workflowId: 'old' }, { workflowId: 'ghost', owner: 'gone' }],
        T,
      );
      expect(got).toEqual(['old', 'ghost']);
    });

    it("a live claim keeps others out; it passes on when its holder's lease lapses", async () => {
      const { a, b } = await fresh();
      await owners(a).heartbeat('A', T + 5_000);
      expect(await owners(a).claim('A', [{ workflowId: 'wf' }], T)).toEqual(['wf']);
      expect(await owners(b).claim('B', [{ workflowId: 'wf' }], T + 4_999)).toEqual([]);
      // A renews: still kept out.
      await owners(a).heartbeat('A', T + 20_000);
      expect(await owners(b).claim('B', [{ workflowId: 'wf' }], T + 10_000)).toEqual([]);
      // A dies (stops renewing): its claim passes on after expiry.
      expect(await owners(b).claim('B', [{ workflowId: 'wf' }], T + 20_000)).toEqual(['wf']);
    });

    it('honours the limit, in candidate order, and a claimant may re-claim its own', async () => {
      const { a } = await fresh();
      const c = ['w1', 'w2', 'w3', 'w4'].map((workflowId) => ({ workflowId }));
      expect(await owners(a).claim('A', c, T, 2)).toEqual(['w1', 'w2']);
      expect(await owners(a).claim('A', c, T, 10)).toEqual(['w1', 'w2', 'w3', 'w4']);
    });

    it("release drops only the claimant's own claims; retire drops its lease and claims", async () => {
      const { a, b } = await fresh();
      await owners(a).heartbeat('A', T + 60_000);
      await owners(b).heartbeat('B', T + 60_000);
      await owners(a).claim('A', [{ workflowId: 'x' }, { workflowId: 'y' }], T);
      await owners(b).claim('B', [{ workflowId: 'z' }], T);
      await owners(b).release('B', ['x', 'z']);
      expect((await owners(a).claims()).map((c) => c.workflowId)).toEqual(['x', 'y']);
      await owners(a).retire('A');
      expect(await owners(a).claims()).toEqual([]);
      expect((await owners(a).leases()).map((l) => l.owner)).toEqual(['B']);
    });

    it('three stores claiming 100 workflows at once take disjoint sets that cover them all', async () => {
      const { a, b, c } = await fresh();
      const all = Array.from({ length: 100 }, (_, i) => ({
        workflowId: `wf-${String(i).padStart(3, '0')}`,
        owner: 'dead',
      }));
      const stores = [a, b, c];
      await Promise.all(stores.map((s, i) => owners(s).heartbeat(`P${i}`, T + 60_000)));
      const taken: string[][] = [[], [], []];
      // Each takes batches of 7 until nothing is left for it, all three at once.
      await Promise.all(
        stores.map(async (s, i) => {
          for (;;) {
            const got = await owners(s).claim(`P${i}`, all, T, 7);
            const fresh = got.filter((id) => !taken[i]?.includes(id));
            if (fresh.length === 0) return;
            taken[i]?.push(...fresh);
            // What a resumer does once it finished them: they are no longer candidates.
            for (const id of fresh)
              all.splice(
                all.findIndex((w) => w.workflowId === id),
                1,
              );
          }
        }),
      );
      const flat = taken.flat();
      expect(new Set(flat).size).toBe(flat.length);
      expect(flat.length).toBe(100);
    });
  });
}
