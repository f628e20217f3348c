import { describe, expect, it } from 'vitest';
import { Deadlines } from '../src/deadlines.ts';

import { createHook } from 'node:async_hooks';

/** Counts timers created while `work` runs (async_hooks sees unref'd timers too). */
function timersCreatedBy(work: () => void): number {
  let created = 0;
  const hook = createHook({
    init(_id, type) {
      if (type === 'Timeout') created++;
    },
  }).enable();
  try {
    work();
  } finally {
    hook.disable();
  }
  return created;
}

describe('client deadlines', () => {
  it('deadlines - a deadline fires after its delay, never before, and a cancelled one never fires', async () => {
    const d = new Deadlines();
    const start = Date.now();
    const fired: number[] = [];
    d.at(30, () => fired.push(Date.now() - start));
    const cancelled = d.at(10, () => fired.push(-1));
    cancelled.cancel();
    await new Promise((resolve) => setTimeout(resolve, 80));
    expect(fired).toHaveLength(1);
    expect(fired[0]).toBeGreaterThanOrEqual(30);
    expect(d.size).toBe(0);
    expect(d.armed).toBe(false);
  });

  it('deadlines - 100,000 deadlines hold one timer, and fire in order of their delay', async () => {
    // The clock stands still while the 100,000 are scheduled (as if it took no time), then runs.
    const base = Date.now();
    let frozen = true;
    const d = new Deadlines(() => (frozen ? base : Date.now()));
    const order: number[] = [];
    const handles: Array<{ cancel(): void }> = [];
    // Scheduled longest first, so the one timer is re-armed as earlier deadlines arrive.
    const created = timersCreatedBy(() => {
      for (let i = 100_000 - 1; i >= 0; i--) {
        const due = base + 20 + (i % 50);
        handles.push(d.at(20 + (i % 50), () => order.push(due)));
      }
    });
    frozen = false;
    const slots = new Set(Array.from({ length: 50 }, (_, k) => Math.ceil((base + 20 + k) / 10)));
    expect(d.size).toBe(100_000);
    expect(d.armed).toBe(true);
    // Re-arming replaces the timer: at most one per distinct 10 ms slot is ever created, never one per deadline.
    expect(created).toBeLessThanOrEqual(slots.size + 1);
    expect(slots.size).toBeLessThan(1_000);
    for (let i = 0; i < 100_000; i += 2) handles[i]!.cancel();
    expect(d.size).toBe(50_000);
    for (let waited = 0; d.size > 0 && waited < 10_000; waited += 20) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(order).toHaveLength(50_000);
    // Ordered at slot resolution (10 ms).
    for (let i = 1; i < order.length; i++) expect(order[i]! >= order[i - 1]! - 10).toBe(true);
    expect(d.armed).toBe(false);
  });

  it('deadlines - a throwing callback is reported as a warning and the others still fire', async () => {
    const d = new Deadlines();
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.message);
    process.on('warning', onWarning);
    let fired = false;
    d.at(5, () => {
      throw new Error('boom');
    });
    d.at(5, () => {
      fired = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
    process.off('warning', onWarning);
    expect(fired).toBe(true);
    expect(warnings.some((w) => w.includes('boom'))).toBe(true);
  });
});
