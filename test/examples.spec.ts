import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);

describe('examples', () => {
  it('examples/hello - the README demo verifies signed requests and refuses the tampered frames', async () => {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'examples/hello/index.ts', '--json'], {
      cwd: new URL('..', import.meta.url).pathname,
      timeout: 60_000,
    });
    const summary = JSON.parse(stdout) as { ok: boolean; sum: number; greeting: string; bob_stats: { rejected: Record<string, number> } };
    expect(summary.ok).toBe(true);
    expect(summary.sum).toBe(10);
    expect(summary.greeting).toMatch(/^hello alice/);
    expect(summary.bob_stats.rejected).toMatchObject({ replay: 1, subject_mismatch: 1, bad_signature: 1 });
  });
});
