import { toHex } from '@trustmesh/protocol';

interface Entry {
  readonly subject: string;
  readonly raw: Uint8Array;
}

/**
 * Frames this agent accepted lately, by (signer, id), bounded by count and
 * bytes (the oldest go first). When the verifier refuses a second, different
 * frame with the same (signer, id) as `equivocation`, the rejection event
 * carries only the second frame; the first comes from here, so the report
 * holds both and the broker can check the equivocation itself.
 */
export class RecentFrames {
  private readonly entries = new Map<string, Entry>();
  private bytes = 0;

  constructor(
    private readonly maxEntries = 4096,
    private readonly maxBytes = 8 * 1024 * 1024,
  ) {}

  static key(iss: string, id: Uint8Array): string {
    return `${iss} ${toHex(id)}`;
  }

  remember(iss: string, id: Uint8Array, subject: string, raw: Uint8Array): void {
    if (raw.length > this.maxBytes) return;
    const key = RecentFrames.key(iss, id);
    if (this.entries.has(key)) return;
    this.entries.set(key, { subject, raw });
    this.bytes += raw.length;
    while (this.entries.size > this.maxEntries || this.bytes > this.maxBytes) {
      const [oldest, entry] = this.entries.entries().next().value!;
      this.entries.delete(oldest);
      this.bytes -= entry.raw.length;
    }
  }

  get(iss: string, id: Uint8Array): Entry | undefined {
    return this.entries.get(RecentFrames.key(iss, id));
  }

  get size(): number {
    return this.entries.size;
  }
}
