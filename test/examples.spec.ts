import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { RejectionEvent } from '@trustmesh/client';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);

/** Runs examples/hello with `args` (and --json) and returns its summary. */
async function hello<T>(...args: string[]): Promise<T> {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', 'examples/hello/index.ts', '--json', ...args], {
    cwd: new URL('..', import.meta.url).pathname,
    timeout: 60_000,
  });
  return JSON.parse(stdout) as T;
}

interface Summary {
  ok: boolean;
  mode: 'open' | 'secure';
  sum: number;
  greeting: string;
  bob_stats: { rejected: Record<string, number>; rejectedTotal: number };
}

describe('examples', () => {
  it('examples/hello - the hello example verifies signed requests and refuses the tampered frames', async () => {
    const summary = await hello<Summary>();
    expect(summary.ok).toBe(true);
    expect(summary.mode).toBe('open');
    expect(summary.sum).toBe(10);
    expect(summary.greeting).toMatch(/^hello alice/);
    expect(summary.bob_stats.rejected).toMatchObject({ replay: 1, subject_mismatch: 1, bad_signature: 1 });
  });

  it('examples/hello --secure - admitted agents talk; the server refuses the outsider, the eavesdropper and frames on alice’s subjects; bob names the publisher of a bad signature', async () => {
    const summary = await hello<
      Summary & {
        alice: string;
        eve: string;
        outsider_refused?: string;
        refused_by_server: Array<{ operation: string; subject: string }>;
        blamed: RejectionEvent;
      }
    >('--secure');
    expect(summary.ok).toBe(true);
    expect(summary.mode).toBe('secure');
    expect(summary.sum).toBe(10);
    expect(summary.greeting).toMatch(/^hello alice/);
    expect(summary.outsider_refused).toMatch(/Authorization Violation/);
    const aliceId = summary.alice.slice('did:key:'.length);
    expect(summary.refused_by_server.map((r) => r.operation)).toEqual(['subscribe', 'publish', 'publish', 'publish']);
    for (const refusal of summary.refused_by_server) expect(refusal.subject.endsWith(`.${aliceId}`)).toBe(true);
    // Nothing eve tried on alice's subjects reached bob; the one frame on her own subject did, and is hers.
    expect(summary.bob_stats.rejectedTotal).toBe(1);
    expect(summary.blamed).toMatchObject({
      reason: 'bad_signature',
      blame: 'publisher',
      publisher: summary.eve,
      publisherAuthenticated: true,
    });
  });
});
