// A bounded map that forgets what was not used recently: two generations,
// the newer of which is retired when full. O(1) per operation, unlike an
// exact LRU on a Map, whose eviction scans over deleted slots.

export class LruMap<K, V> {
  private current = new Map<K, V>();
  private previous = new Map<K, V>();

  /** Keeps at least `limit / 2` and at most `limit` entries. */
  constructor(private readonly limit: number) {}

  get(key: K): V | undefined {
    const value = this.current.get(key);
    if (value !== undefined) return value;
    const old = this.previous.get(key);
    if (old !== undefined) this.set(key, old);
    return old;
  }

  set(key: K, value: V): void {
    if (this.current.size >= this.limit / 2 && !this.current.has(key)) {
      this.previous = this.current;
      this.current = new Map();
    }
    this.current.set(key, value);
  }

  get size(): number {
    return this.current.size + this.previous.size;
  }
}
