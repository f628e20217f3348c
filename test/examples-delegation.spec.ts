import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);

interface Summary {
  ok: boolean;
  tree: {
    id: string;
    parent: string | null;
    capability: string;
    from: string;
    to: string;
    state: string;
    states: string[];
    chain: { issuer: string; audience: string; scope: string[]; depth: number }[];
  }[];
  escalation: {
    state: string;
    reason: string;
    link: number;
    attributable_to: string;
    evidence_verified: boolean;
    score_before: number;
    score_after: number;
  };
}

describe('examples', () => {
  it('examples/delegation - a three-agent task tree completes under narrowing chains, and the escalation is refused with evidence', async () => {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'examples/delegation/index.ts', '--json'], {
      cwd: new URL('..', import.meta.url).pathname,
      timeout: 60_000,
    });
    const summary = JSON.parse(stdout) as Summary;
    expect(summary.ok).toBe(true);
    const [root, ...subs] = summary.tree;
    expect(root).toMatchObject({ parent: null, capability: 'research:topics/nats', from: 'planner', to: 'researcher', state: 'completed' });
    expect(root!.chain).toEqual([
      { issuer: 'planner', audience: 'researcher', scope: ['research:topics/**', 'fetch:web/nats.io/**'], depth: 2 },
    ]);
    expect(subs).toHaveLength(2);
    for (const sub of subs) {
      expect(sub.parent).toBe(root!.id);
      expect(sub.state).toBe('completed');
      expect(sub.states[0]).toBe('submitted');
      expect(sub.to).toMatch(/^fetcher-[12]$/);
      expect(sub.chain.map((l) => [l.issuer, l.audience, l.scope, l.depth])).toEqual([
        ['planner', 'researcher', ['research:topics/**', 'fetch:web/nats.io/**'], 2],
        ['researcher', sub.to, ['fetch:web/nats.io/docs/**'], 1],
      ]);
    }
    expect(summary.escalation).toMatchObject({
      state: 'rejected',
      reason: 'scope_escalation',
      link: 1,
      attributable_to: 'researcher',
      evidence_verified: true,
    });
    expect(summary.escalation.score_after).toBeLessThan(summary.escalation.score_before);
  });
});
