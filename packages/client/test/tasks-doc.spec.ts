import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { capabilityToken, TASK_STATES, TASK_TYPES, TERMINAL_STATES } from '@trustmesh/client';
import { describe, expect, it } from 'vitest';

const doc = readFileSync(fileURLToPath(new URL('../../../docs/delegation.md', import.meta.url)), 'utf8');
const part = doc.slice(doc.indexOf('# Part II. Tasks'));

describe('tasks - docs/delegation.md part II against the code', () => {
  it('tasks - the message table lists exactly the task types', () => {
    const table = part.slice(part.indexOf('## T2.'), part.indexOf('## T3.'));
    const types = [...table.matchAll(/^\| `(tm\.task\.[a-z]+)`/gm)].map((m) => m[1]);
    expect(new Set(types)).toEqual(new Set(Object.values(TASK_TYPES)));
  });

  it('tasks - the states and terminal states are those of T6', () => {
    const section = part.slice(part.indexOf('## T6.'), part.indexOf('## T7.'));
    expect(section).toContain(
      `${TASK_STATES.slice(0, -1)
        .map((s) => `\`${s}\``)
        .join(', ')},\n\`${TASK_STATES.at(-1)}\``,
    );
    expect([...TERMINAL_STATES]).toEqual(TASK_STATES.slice(3));
  });

  it('tasks - the capability token is base64url SHA-256 over the documented domain: 43 subject-safe characters', () => {
    expect(part).toContain('base64url-nopad( SHA-256( "trustmesh/ctask/v1\\n" || pattern ) )');
    for (const pattern of ['fetch:web/**', '*:**', `read:${'a'.repeat(250)}`])
      expect(capabilityToken(pattern)).toMatch(/^[A-Za-z0-9_-]{43}$/);
    // sha256("trustmesh/ctask/v1\nfetch:web/**"), computed independently with coreutils: printf 'trustmesh/ctask/v1\nfetch:web/**' | sha256sum
    expect(Buffer.from(capabilityToken('fetch:web/**'), 'base64url').toString('hex')).toBe(EXPECTED_FETCH_WEB);
  });
});

const EXPECTED_FETCH_WEB = '0735ef435852ba75de69016d0ea4f4c494271772e74f76b45414929bc6d8acad';
