import { describe, expect, it } from 'vitest';
import { DEFAULT_MAX_REPLAY_ENTRIES, DEFAULT_WINDOW_MS, InvalidArgumentError, ReplayGuard, type ReplayVerdict } from '../src/index.ts';
import { prng } from '@trustmesh/test-utils';

const T0 = 1_750_000_000_000; // a whole second

/**
 * What a receiver does with (key, iat) at time `now`: the time check of the
 * verifier first (the guard's contract: call it only for iat inside the
 * window), then the guard.
 */
function admit(guard: ReplayGuard, key: string, iat: number, now: number): ReplayVerdict | 'future' {
  if (iat < now - guard.windowMs) return 'stale';
  if (iat > now + guard.windowMs) return 'future';
  return guard.checkAndRemember(key, iat, now);
}

describe('ReplayGuard basics', () => {
  it('replay - a new key is fresh, the same key again is replay', () => {
    const g = new ReplayGuard();
    expect(g.checkAndRemember('a', T0, T0)).toBe('fresh');
    expect(g.checkAndRemember('a', T0, T0)).toBe('replay');
    expect(g.checkAndRemember('a', T0 + 5, T0 + 10)).toBe('replay'); // iat is not part of the identity
    expect(g.checkAndRemember('b', T0, T0)).toBe('fresh');
    expect(g.size).toBe(2);
    expect(g.floor).toBe(-1);
  });

  it('replay - defaults are a 30 s window and 250,000 entries', () => {
    const g = new ReplayGuard();
    expect(g.windowMs).toBe(30_000);
    expect(g.maxEntries).toBe(250_000);
    expect(DEFAULT_WINDOW_MS).toBe(30_000);
    expect(DEFAULT_MAX_REPLAY_ENTRIES).toBe(250_000);
  });

  it('replay - misuse of the constructor throws InvalidArgumentError', () => {
    for (const init of [
      { windowMs: 0 },
      { windowMs: -1 },
      { windowMs: NaN },
      { windowMs: Infinity },
      { maxEntries: 0 },
      { maxEntries: -5 },
      { maxEntries: 1.5 },
      { maxEntries: NaN },
    ]) {
      expect(() => new ReplayGuard(init), JSON.stringify(init)).toThrow(InvalidArgumentError);
    }
    expect(() => new ReplayGuard({ windowMs: 1, maxEntries: 1 })).not.toThrow();
  });
});

describe('ReplayGuard window expiry', () => {
  it('replay - entries are kept while their iat is inside the window: a replay at any time in the window is refused', () => {
    const W = 30_000;
    const g = new ReplayGuard({ windowMs: W });
    for (let i = 0; i < 50; i++) expect(g.checkAndRemember(`k${i}`, T0 + i * 37, T0 + i * 37)).toBe('fresh');
    // Walk the clock through the whole window; every key is still remembered while iat >= now - W.
    for (let now = T0; now <= T0 + W + 50 * 37; now += 101) {
      for (let i = 0; i < 50; i++) {
        const iat = T0 + i * 37;
        const verdict = admit(g, `k${i}`, iat, now);
        expect(verdict, `k${i} at +${now - T0}`).not.toBe('fresh');
        if (iat >= now - W) expect(verdict).toBe('replay');
      }
    }
  });

  it("replay - window expiry frees memory: size drops once the entries' iat has left the window", () => {
    const W = 30_000;
    const g = new ReplayGuard({ windowMs: W });
    for (let i = 0; i < 1000; i++) g.checkAndRemember(`old-${i}`, T0 + (i % 1000), T0);
    expect(g.size).toBe(1000);
    // At now = T0 + W every old entry is still inside the window.
    g.checkAndRemember('probe-1', T0 + W, T0 + W);
    expect(g.size).toBe(1001);
    // Two seconds after the window has passed them, they are gone.
    g.checkAndRemember('probe-2', T0 + W + 2_000, T0 + W + 2_000);
    expect(g.size).toBe(2);
    // And far later, everything but the newest is gone.
    g.checkAndRemember('probe-3', T0 + 10 * W, T0 + 10 * W);
    expect(g.size).toBe(1);
    expect(g.floor).toBe(-1); // expiry is not eviction: the floor did not move
  });

  it('replay - memory stays at about one window of traffic under a steady stream', () => {
    const W = 5_000;
    const g = new ReplayGuard({ windowMs: W });
    let max = 0;
    // 20 keys per second for 60 s: at most (W/1000 + 2) seconds' worth is held.
    for (let t = 0; t < 60_000; t += 50) {
      expect(g.checkAndRemember(`s${t}`, T0 + t, T0 + t)).toBe('fresh');
      max = Math.max(max, g.size);
    }
    expect(max).toBeLessThanOrEqual(20 * (W / 1000 + 2));
    expect(max).toBeGreaterThanOrEqual(20 * (W / 1000));
  });
});

describe('ReplayGuard bounded memory', () => {
  it('replay - the floor rises to the end of the evicted bucket, and frames at or below it are stale', () => {
    const g = new ReplayGuard({ maxEntries: 3, windowMs: 60_000 });
    expect(g.checkAndRemember('a', T0 + 100, T0 + 2_000)).toBe('fresh');
    expect(g.checkAndRemember('b', T0 + 900, T0 + 2_000)).toBe('fresh');
    expect(g.checkAndRemember('c', T0 + 1_500, T0 + 2_000)).toBe('fresh');
    expect(g.floor).toBe(-1);
    // Full: the oldest bucket [T0, T0+1000) is dropped and the floor raised to its end.
    expect(g.checkAndRemember('d', T0 + 2_000, T0 + 2_000)).toBe('fresh');
    expect(g.floor).toBe(T0 + 999);
    expect(g.size).toBe(2);
    // Evicted keys, and anything else at or below the floor, are stale; never fresh.
    expect(g.checkAndRemember('a', T0 + 100, T0 + 2_000)).toBe('stale');
    expect(g.checkAndRemember('b', T0 + 900, T0 + 2_000)).toBe('stale');
    expect(g.checkAndRemember('new', T0 + 999, T0 + 2_000)).toBe('stale');
    // Kept keys are still replays; a new key just above the floor is fresh.
    expect(g.checkAndRemember('c', T0 + 1_500, T0 + 2_000)).toBe('replay');
    expect(g.checkAndRemember('e', T0 + 1_000, T0 + 2_000)).toBe('fresh');
    expect(g.size).toBeLessThanOrEqual(3);
  });

  it('replay - the floor never goes down', () => {
    const g = new ReplayGuard({ maxEntries: 10, windowMs: 60_000 });
    const rand = prng(7);
    let last = g.floor;
    for (let i = 0; i < 5_000; i++) {
      const now = T0 + i * 10;
      g.checkAndRemember(`f${i}`, now - Math.floor(rand() * 20_000), now);
      expect(g.floor).toBeGreaterThanOrEqual(last);
      last = g.floor;
    }
    expect(last).toBeGreaterThan(T0);
  });

  it('replay - with maxEntries 1000, 100,000 unique ids never hold more than 1000 entries and no accepted id is accepted again', () => {
    const MAX = 1000;
    const W = 30_000;
    const g = new ReplayGuard({ maxEntries: MAX, windowMs: W });
    const rand = prng(20240601);
    const accepted: { key: string; iat: number }[] = [];
    let maxSize = 0;
    let fresh = 0;
    let stale = 0;
    let now = T0;

    for (let i = 0; i < 100_000; i++) {
      now += rand() < 0.5 ? 1 : 0; // ~500 ids per second of clock
      // Senders' clocks are off by up to ±W/2.
      const iat = now + Math.floor((rand() - 0.5) * W);
      const key = `id-${i}`;
      const verdict = admit(g, key, iat, now);
      expect(verdict).not.toBe('replay'); // every id is new
      if (verdict === 'fresh') {
        fresh++;
        accepted.push({ key, iat });
      } else stale++;
      maxSize = Math.max(maxSize, g.size);
      if (g.size > MAX) throw new Error(`size ${g.size} > ${MAX} after ${i} ids`);

      // Every so often, replay a sample of previously accepted ids at the current time.
      if (i % 97 === 0 && accepted.length > 0) {
        for (let j = 0; j < 5; j++) {
          const old = accepted[Math.floor(rand() * accepted.length)]!;
          const again = admit(g, old.key, old.iat, now);
          if (again === 'fresh') throw new Error(`accepted id ${old.key} (iat ${old.iat - T0}) was accepted again at ${now - T0}`);
        }
      }
    }

    expect(maxSize).toBe(MAX);
    expect(g.floor).toBeGreaterThan(T0); // evictions happened
    // The guard still lets most traffic through: it narrows the window, it does not close it.
    expect(fresh).toBeGreaterThan(10_000);
    expect(stale).toBeGreaterThan(0);

    // Finally, replay every id ever accepted, at the last clock reading: none is fresh.
    for (const { key, iat } of accepted) {
      const again = admit(g, key, iat, now);
      if (again === 'fresh') throw new Error(`accepted id ${key} was accepted again at the end`);
      expect(['stale', 'replay']).toContain(again);
    }
    expect(g.size).toBeLessThanOrEqual(MAX);
  });

  it('replay - evicted ids replayed at once are stale, kept ids are replay', () => {
    const g = new ReplayGuard({ maxEntries: 1000, windowMs: 3_600_000 });
    // 1 id per ms over 10 s: 10 one-second buckets of 1000 ids; each new bucket evicts the previous.
    for (let i = 0; i < 10_000; i++) expect(g.checkAndRemember(`x${i}`, T0 + i, T0 + i)).toBe('fresh');
    expect(g.size).toBe(1000);
    expect(g.floor).toBe(T0 + 8_999);
    const now = T0 + 10_000;
    for (let i = 0; i < 10_000; i++) {
      expect(g.checkAndRemember(`x${i}`, T0 + i, now)).toBe(i < 9_000 ? 'stale' : 'replay');
    }
    expect(g.size).toBe(1000);
  });

  it('replay - maxEntries 1 still refuses every replay', () => {
    const g = new ReplayGuard({ maxEntries: 1, windowMs: 60_000 });
    const seen: [string, number][] = [];
    for (let i = 0; i < 200; i++) {
      const iat = T0 + i * 250;
      const v = g.checkAndRemember(`o${i}`, iat, iat);
      if (v === 'fresh') seen.push([`o${i}`, iat]);
      expect(g.size).toBeLessThanOrEqual(1);
      for (const [k, t] of seen) expect(g.checkAndRemember(k, t, iat)).not.toBe('fresh');
    }
    expect(seen.length).toBeGreaterThan(0);
  });
});

describe('ReplayGuard per signer', () => {
  it('replay - one signer flooding fresh ids raises only its own floor; another signer is untouched', () => {
    const g = new ReplayGuard({ maxEntries: 400 });
    for (let i = 0; i < 5_000; i++) admitFor(g, 'flooder', `f${i}`, T0 + i, T0 + 5_000, false);
    expect(g.floorOf('flooder')).toBeGreaterThan(T0);
    expect(g.check('honest', 'h1', 'x', T0 + 10, T0 + 5_000, true)).toBe('fresh');
    expect(g.floorOf('honest', true)).toBe(-1);
    expect(g.size).toBeLessThanOrEqual(400);
  });

  it('replay - no gap: whatever the flood evicts, no accepted (signer, id) is ever fresh again inside the window', () => {
    const g = new ReplayGuard({ maxEntries: 200 });
    const accepted: Array<[string, string, number]> = [];
    const random = prng(42);
    const now = T0 + 10_000;
    for (let i = 0; i < 20_000; i++) {
      // Many small unknown signers (fresh keys) and a few big ones: both eviction paths run.
      const signer = random() < 0.5 ? `fresh${i}` : `big${i % 3}`;
      const iat = T0 + Math.floor(random() * 9_000);
      if (g.check(signer, `id${i}`, 'x', iat, now, false) === 'fresh') accepted.push([signer, `id${i}`, iat]);
    }
    for (const [signer, id, iat] of accepted) expect(g.check(signer, id, 'x', iat, now, false), `${signer} ${id}`).not.toBe('fresh');
  });

  it('replay - another frame with an accepted (signer, id) is equivocation, the same frame is replay', () => {
    const g = new ReplayGuard();
    expect(g.check('s', 'id', 'sig-a', T0, T0)).toBe('fresh');
    expect(g.check('s', 'id', 'sig-a', T0, T0)).toBe('replay');
    expect(g.check('s', 'id', 'sig-b', T0, T0)).toBe('equivocation');
    expect(g.check('t', 'id', 'sig-b', T0, T0)).toBe('fresh');
  });

  it('replay - unknown signers share a quarter of the memory: they cannot push a known peer out', () => {
    const g = new ReplayGuard({ maxEntries: 400 });
    for (let i = 0; i < 300; i++) expect(g.check('peer', `p${i}`, 'x', T0 + 1_000, T0 + 1_000, true)).toBe('fresh');
    for (let i = 0; i < 5_000; i++) g.check(`fresh${i}`, 'id', 'x', T0 + 1_000, T0 + 1_000, false);
    expect(g.heldBy('peer')).toBe(300);
    expect(g.check('peer', 'p0', 'x', T0 + 1_000, T0 + 1_000, true)).toBe('replay');
  });
});

function admitFor(g: ReplayGuard, signer: string, id: string, iat: number, now: number, known: boolean): ReplayVerdict | 'future' {
  if (iat < now - g.windowMs) return 'stale';
  if (iat > now + g.windowMs) return 'future';
  return g.check(signer, id, 'x', iat, now, known);
}
