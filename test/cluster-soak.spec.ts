/**
 * The bounded soak of the suite: bench/soak.ts for one minute on its own 3-node
 * cluster, a fault every 12 s (node SIGKILLed and restarted, kill and revive,
 * broker restarted, audit restarted). Longer by hand: `npx tsx bench/soak.ts --minutes 30`.
 * Figures are printed (`soak figures:`); RSS is reported, not asserted.
 */
import { describe, expect, it } from 'vitest';
import { runSoak, soakProblems } from '../bench/soak.ts';

describe('cluster soak', () => {
  it('soak - mixed traffic with periodic faults: nothing executed twice, no unexplained error, the audit has no gap and verifies', async () => {
    const report = await runSoak({ minutes: 1, faultEverySeconds: 12 });
    console.log(`soak figures: ${JSON.stringify(report)}`);
    expect(report.faults.map((f) => f.kind)).toEqual(expect.arrayContaining(['node', 'kill', 'broker', 'audit']));
    expect(report.requests.ok).toBeGreaterThan(0);
    expect(soakProblems(report)).toEqual([]);
  }, 150_000);
});
