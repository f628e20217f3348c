import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * docs/vectors/independent_check.py was written from docs/protocol.md and
 * frames.json alone, without reading this repository's code: if it passes,
 * the spec is enough to interoperate. It needs python3 with `cryptography`.
 */
const script = fileURLToPath(new URL('../docs/vectors/independent_check.py', import.meta.url));
const python = spawnSync('python3', ['-c', 'import cryptography'], { encoding: 'utf8' });
const available = python.status === 0;

describe('interop', () => {
  it.skipIf(!available)('interop - an independent Python implementation of docs/protocol.md passes every vector', () => {
    const out = execFileSync('python3', [script], { encoding: 'utf8', timeout: 60_000 });
    const summary = out.trim().split('\n').at(-1)!;
    const match = /^(\d+) passed, (\d+) failed$/.exec(summary);
    expect(match, out).not.toBeNull();
    expect(Number(match![2])).toBe(0);
    expect(Number(match![1])).toBeGreaterThanOrEqual(68);
  });
});
