/** Deadlines are grouped into slots of this many ms: one slot, one wake-up. */
const SLOT_MS = 10;

/** A scheduled deadline; `cancel()` it when the work finished first. */
export interface Deadline {
  cancel(): void;
}

interface Entry {
  readonly fire: () => void;
  slot: number;
}

/**
 * Many deadlines, one timer. Deadlines fall into 10 ms slots (a Map of Sets, so
 * cancelling is O(1)); one `setTimeout` is armed for the earliest slot and
 * re-armed as slots are spent. 100,000 pending requests cost 100,000 small
 * entries and a single timer, not 100,000 timers. A deadline fires at most one
 * slot late, never early.
 */
export class Deadlines {
  private readonly slots = new Map<number, Set<Entry>>();
  private timer: NodeJS.Timeout | undefined;
  private armedFor = Infinity;
  private count = 0;

  constructor(private readonly now: () => number = Date.now) {}

  /** Deadlines waiting. */
  get size(): number {
    return this.count;
  }

  /** True while a timer is armed (at most one ever is). */
  get armed(): boolean {
    return this.timer !== undefined;
  }

  at(delayMs: number, fire: () => void): Deadline {
    const slot = Math.ceil((this.now() + delayMs) / SLOT_MS);
    const entry: Entry = { fire, slot };
    let set = this.slots.get(slot);
    if (set === undefined) this.slots.set(slot, (set = new Set()));
    set.add(entry);
    this.count++;
    if (slot < this.armedFor) this.arm(slot);
    return {
      cancel: () => {
        const holder = this.slots.get(entry.slot);
        if (holder?.delete(entry) !== true) return;
        this.count--;
        if (holder.size === 0) this.slots.delete(entry.slot);
        if (this.count === 0) this.disarm();
      },
    };
  }

  /** Cancels everything without firing. */
  clear(): void {
    this.slots.clear();
    this.count = 0;
    this.disarm();
  }

  private arm(slot: number): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.armedFor = slot;
    this.timer = setTimeout(() => this.tick(), Math.max(0, slot * SLOT_MS - this.now()));
    // Pending deadlines alone must not keep a process alive.
    this.timer.unref();
  }

  private disarm(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.armedFor = Infinity;
  }

  private tick(): void {
    this.timer = undefined;
    this.armedFor = Infinity;
    const due = Math.floor(this.now() / SLOT_MS);
    let next = Infinity;
    const dueSlots: number[] = [];
    for (const slot of this.slots.keys()) {
      if (slot <= due) dueSlots.push(slot);
      else if (slot < next) next = slot;
    }
    // Earlier deadlines first, whatever order their slots were created in.
    dueSlots.sort((a, b) => a - b);
    const fired: Entry[] = [];
    for (const slot of dueSlots) {
      for (const entry of this.slots.get(slot)!) fired.push(entry);
      this.slots.delete(slot);
    }
    this.count -= fired.length;
    if (next !== Infinity) this.arm(next);
    for (const entry of fired) {
      try {
        entry.fire();
      } catch (err) {
        process.emitWarning(`a deadline callback threw: ${err instanceof Error ? err.message : typeof err}`, {
          code: 'TRUSTMESH_DEADLINE_ERROR',
        });
      }
    }
  }
}
