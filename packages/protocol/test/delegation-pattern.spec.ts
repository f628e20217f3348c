/**
 * Capability patterns (docs/delegation.md §3): the grammar, containment by
 * example, and containment checked against a brute-force model of what the
 * patterns mean, on random patterns.
 */
import { describe, expect, it } from 'vitest';
import {
  InvalidArgumentError,
  isScopeWithin,
  isValidPattern,
  parsePattern,
  patternContains,
  patternWithin,
  scopeWithin,
  type Pattern,
} from '@trustmesh/protocol';

/** Deterministic PRNG (mulberry32), so a failure reproduces. */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ACTIONS = ['read', 'write', '*'];
const SEGMENTS = ['a', 'b', '*'];

function randomPattern(next: () => number): string {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]!;
  const length = 1 + Math.floor(next() * 3);
  const segments = Array.from({ length }, () => pick(SEGMENTS));
  if (next() < 0.3) segments[length - 1] = '**';
  return `${pick(ACTIONS)}:${segments.join('/')}`;
}

// The model: a pattern is the set of concrete capabilities it matches. Wildcards
// are instantiated with every name the random patterns use plus one they never
// use ("z"), and `**` with 1..4 segments (longer than any random pattern's
// suffix can distinguish), so containment over this finite set decides
// containment over all capabilities.
const NAMES = ['read', 'write', 'a', 'b', 'z'];

function matches(concrete: readonly string[], action: string, pattern: Pattern): boolean {
  if (pattern.action !== '*' && pattern.action !== action) return false;
  const p = pattern.segments;
  const open = p[p.length - 1] === '**';
  if (open ? concrete.length < p.length : concrete.length !== p.length) return false;
  for (let i = 0; i < (open ? p.length - 1 : p.length); i++) if (p[i] !== '*' && p[i] !== concrete[i]) return false;
  return true;
}

function instances(pattern: Pattern): { action: string; path: string[] }[] {
  const actions = pattern.action === '*' ? NAMES : [pattern.action];
  let paths: string[][] = [[]];
  for (const segment of pattern.segments) {
    if (segment === '**') {
      const tails: string[][] = [];
      for (let n = 1; n <= 4; n++) for (const name of NAMES) tails.push(Array(n).fill(name));
      tails.push(['z', 'a'], ['a', 'z', 'b']);
      paths = paths.flatMap((p) => tails.map((t) => [...p, ...t]));
    } else {
      const options = segment === '*' ? NAMES : [segment];
      paths = paths.flatMap((p) => options.map((o) => [...p, o]));
    }
  }
  return actions.flatMap((action) => paths.map((path) => ({ action, path })));
}

function semanticallyWithin(inner: Pattern, outer: Pattern): boolean {
  return instances(inner).every(({ action, path }) => matches(path, action, outer));
}

describe('delegation patterns', () => {
  it('patterns - the grammar accepts action:resource with whole-segment wildcards and a final **', () => {
    for (const ok of [
      'read:docs',
      'read:docs/a',
      'read:docs/*',
      'read:docs/**',
      '*:docs/a',
      '*:**',
      'read:*/b',
      'a-b_c.d~e:X-1/y.z',
      'read:a/*/**',
    ]) {
      expect(isValidPattern(ok), ok).toBe(true);
    }
  });

  it('patterns - the grammar refuses everything else', () => {
    const bad = [
      '',
      'read',
      ':docs',
      'read:',
      'read:/docs',
      'read:docs/',
      'read:docs//a',
      'read:docs/**/a',
      '**:docs',
      'read:do*',
      'read:docs/*a',
      're ad:docs',
      'read:docs/..',
      'read:./docs',
      'read:x:y',
      'read:dócs',
      'read:docs\n',
      `read:${'a'.repeat(251)}`,
    ];
    for (const p of bad) expect(isValidPattern(p), JSON.stringify(p)).toBe(false);
    expect(isValidPattern(`read:${'a'.repeat(250)}`)).toBe(true);
    expect(isValidPattern(42)).toBe(false);
    expect(() => parsePattern('read:docs/**/a')).toThrow(InvalidArgumentError);
  });

  it('patterns - containment by example (docs/delegation.md §3.2)', () => {
    const cases: [outer: string, inner: string, within: boolean][] = [
      ['read:docs/*', 'read:docs/a', true],
      ['read:docs/*', 'write:docs/a', false],
      ['read:docs/*', 'read:docs/a/b', false],
      ['read:docs/*', 'read:docs', false],
      ['read:docs/*', 'read:docs/*', true],
      ['read:docs/*', 'read:docs/**', false],
      ['read:docs/a', 'read:docs/*', false],
      ['read:docs/**', 'read:docs/a', true],
      ['read:docs/**', 'read:docs/a/b/c', true],
      ['read:docs/**', 'read:docs/*', true],
      ['read:docs/**', 'read:docs/*/**', true],
      ['read:docs/**', 'read:docs', false],
      ['read:docs/*/**', 'read:docs/*', false],
      ['read:docs/*/**', 'read:docs/a/b', true],
      ['read:docs/*/**', 'read:docs/**', false],
      ['*:docs/a', 'read:docs/a', true],
      ['read:docs/a', '*:docs/a', false],
      ['read:**', 'read:x/y/z', true],
      ['read:*/b', 'read:a/b', true],
      ['read:*/b', 'read:a/c', false],
      ['read:a/b', 'read:a/B', false],
      ['*:**', 'write:anything/at/all', true],
    ];
    for (const [outer, inner, within] of cases) expect(patternContains(outer, inner), `${inner} within ${outer}`).toBe(within);
  });

  it('patterns - containment equals inclusion of the matched capabilities (random patterns against a brute-force model)', () => {
    const next = rng(1);
    let within = 0;
    for (let i = 0; i < 3000; i++) {
      const a = parsePattern(randomPattern(next));
      const b = parsePattern(randomPattern(next));
      const expected = semanticallyWithin(a, b);
      expect(patternWithin(a, b), `${a.action}:${a.segments.join('/')} within ${b.action}:${b.segments.join('/')}`).toBe(expected);
      if (expected) within++;
    }
    // Not vacuous: a good share of the random pairs are contained.
    expect(within).toBeGreaterThan(200);
  });

  it('patterns - containment is reflexive and transitive (random patterns)', () => {
    const next = rng(2);
    let chains = 0;
    for (let i = 0; i < 20000; i++) {
      const texts = [randomPattern(next), randomPattern(next), randomPattern(next)];
      const [a, b, c] = texts.map(parsePattern) as [Pattern, Pattern, Pattern];
      expect(patternWithin(a, a)).toBe(true);
      if (patternWithin(a, b) && patternWithin(b, c)) {
        // Count only chains of three different patterns: the others are reflexivity again.
        if (new Set(texts).size === 3) chains++;
        expect(patternWithin(a, c)).toBe(true);
      }
    }
    expect(chains).toBeGreaterThan(50);
  });

  it('patterns - a narrower scope never matches a capability its parent does not (random scopes)', () => {
    const next = rng(3);
    let narrowings = 0;
    for (let i = 0; i < 3000; i++) {
      const outer = Array.from({ length: 1 + Math.floor(next() * 3) }, () => parsePattern(randomPattern(next)));
      const inner = Array.from({ length: 1 + Math.floor(next() * 3) }, () => parsePattern(randomPattern(next)));
      if (!scopeWithin(inner, outer)) continue;
      narrowings++;
      for (const p of inner) {
        for (const { action, path } of instances(p)) expect(outer.some((o) => matches(path, action, o))).toBe(true);
      }
    }
    expect(narrowings).toBeGreaterThan(100);
  });

  it('patterns - scope containment is per pattern: a union of patterns does not contain a pattern none of them contains alone', () => {
    // read:docs/** is covered by read:docs/* plus read:docs/*/**, but no single pattern contains it (§3.3).
    expect(isScopeWithin(['read:docs/**'], ['read:docs/*', 'read:docs/*/**'])).toBe(false);
    expect(isScopeWithin(['read:docs/a', 'write:docs/b'], ['read:docs/*', 'write:**'])).toBe(true);
    expect(isScopeWithin(['read:docs/a', 'delete:docs/b'], ['read:docs/*', 'write:**'])).toBe(false);
  });
});
