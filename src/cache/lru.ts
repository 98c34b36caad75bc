/**
 * A size-bounded map that forgets its least recently used entry first. `Map` keeps insertion
 * order, so moving a key to the end on every read makes the first key the eviction candidate:
 * O(1) per operation. Internal to `src/cache`.
 */
export class LruMap<V> {
  private readonly map = new Map<string, V>();

  /** @param maxEntries - entries kept; 0 keeps none. */
  constructor(private readonly maxEntries: number) {}

  get size(): number {
    return this.map.size;
  }

  /** The value, marked as most recently used. */
  get(key: string): V | undefined {
    const value = this.map.get(key);
    if (value !== undefined) {
      this.map.delete(key);
      this.map.set(key, value);
    }
    return value;
  }

  /** Stores `value` as most recently used, evicting the least recently used beyond the bound. */
  set(key: string, value: V): void {
    if (this.maxEntries === 0) return;
    this.map.delete(key);
    this.map.set(key, value);
    if (this.map.size > this.maxEntries) {
      const oldest = this.map.keys().next();
      if (!oldest.done) this.map.delete(oldest.value);
    }
  }

  delete(key: string): boolean {
    return this.map.delete(key);
  }

  /** Deletes every entry matching `predicate`; returns how many. */
  deleteWhere(predicate: (value: V) => boolean): number {
    let n = 0;
    for (const [key, value] of this.map) {
      if (predicate(value)) {
        this.map.delete(key);
        n++;
      }
    }
    return n;
  }

  /** Deletes matching entries among the `limit` least recently used; returns how many. */
  deleteOldestWhere(limit: number, predicate: (value: V) => boolean): number {
    let seen = 0;
    let n = 0;
    for (const [key, value] of this.map) {
      if (seen++ >= limit) break;
      if (predicate(value)) {
        this.map.delete(key);
        n++;
      }
    }
    return n;
  }

  clear(): number {
    const n = this.map.size;
    this.map.clear();
    return n;
  }
}
