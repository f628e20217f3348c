/**
 * A Map with a size bound: when full, the oldest entry goes first. For memos
 * keyed by attacker-chosen values (public keys), so a flood of fresh keys
 * cannot grow memory.
 */
export class BoundedCache<V> {
  private readonly entries = new Map<string, V>();
  constructor(private readonly limit: number) {}

  get size(): number {
    return this.entries.size;
  }

  getOrCreate(key: string, make: () => V): V {
    let value = this.entries.get(key);
    if (value === undefined) {
      value = make();
      if (this.entries.size >= this.limit) this.entries.delete(this.entries.keys().next().value!);
      this.entries.set(key, value);
    }
    return value;
  }
}
