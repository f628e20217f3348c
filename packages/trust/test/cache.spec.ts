import { describe, expect, it } from 'vitest';
import { parseTrustReport, parseTrustUpdate, ScoreCache, type TrustUpdate } from '../src/index.ts';

const u = (did: string, score: number, version: number): TrustUpdate => ({
  did,
  score,
  tier: 'standard',
  reason: 'valid_traffic',
  ref: '',
  version,
  at: 0,
});

describe('ScoreCache', () => {
  it('cache - newer versions replace, older and equal ones are ignored, unknown DIDs are at 500', () => {
    const cache = new ScoreCache();
    expect(cache.score('did:key:a')).toBe(500);
    expect(cache.apply(u('did:key:a', 520, 2))).toBe(true);
    expect(cache.apply(u('did:key:a', 900, 1))).toBe(false);
    expect(cache.apply(u('did:key:a', 900, 2))).toBe(false);
    expect(cache.score('did:key:a')).toBe(520);
    expect(cache.apply(u('did:key:a', 280, 3))).toBe(true);
    expect(cache.tier('did:key:a')).toBe('untrusted');
    expect(cache.stats).toEqual({ applied: 2, stale: 2 });
  });

  it('cache - when full, a score nearest the baseline is forgotten first (it reads back the same)', () => {
    const cache = new ScoreCache(undefined, 3);
    cache.apply(u('did:key:low', 100, 1));
    cache.apply(u('did:key:mid', 501, 1));
    cache.apply(u('did:key:high', 880, 1));
    cache.apply(u('did:key:new', 250, 1));
    expect(cache.size).toBe(3);
    expect(cache.get('did:key:mid')).toBeUndefined();
    expect(cache.score('did:key:low')).toBe(100);
  });
});

describe('trust wire', () => {
  it('wire - updates and reports from peers are parsed, never trusted blindly', () => {
    const did = 'did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK';
    expect(
      parseTrustUpdate({ did, score: 420, tier: 'probationary', reason: 'policy_violation', ref: 'frame:ab', version: 3, at: 1 }),
    ).toBeDefined();
    expect(parseTrustUpdate({ did, score: 1001, tier: 'trusted', reason: 'x', ref: '', version: 1, at: 1 })).toBeUndefined();
    expect(parseTrustUpdate({ did, score: 420, tier: 'probationary', reason: 'x', ref: '', version: 0, at: 1 })).toBeUndefined();
    expect(parseTrustUpdate({ did, score: 420, tier: 'probationary', reason: 'x', ref: '', version: 1, at: 1, extra: 1 })).toBeUndefined();
    expect(parseTrustUpdate('__proto__')).toBeUndefined();
    expect(parseTrustReport({ v: 1, claim: 'protocol', frames: [{ subject: 'tm.m.msg.a.b', frame: new Uint8Array(3) }] }).ok).toBe(true);
    expect(parseTrustReport({ v: 1, claim: 'protocol', frames: [] })).toMatchObject({ ok: false });
    expect(parseTrustReport({ v: 1, claim: 'gossip', frames: [{ subject: 's', frame: new Uint8Array(1) }] })).toMatchObject({ ok: false });
    expect(parseTrustReport({ v: 1, claim: 'protocol', frames: [{ subject: 's', frame: 'bytes?' }] })).toMatchObject({ ok: false });
    const many = Array.from({ length: 9 }, () => ({ subject: 's', frame: new Uint8Array(1) }));
    expect(parseTrustReport({ v: 1, claim: 'rejection', frames: many })).toMatchObject({ ok: false });
  });
});
