/**
 * What the task module hands to the breakers and the trust broker: timed-out
 * tasks open the worker's breaker (the @trustmesh/breakers interceptor wraps
 * each task's delivery), and a worker's escalation evidence lowers the
 * issuer's score under the broker's scoring core.
 */
import { breakers, BreakerOpenError } from '@trustmesh/breakers';
import { createScorer } from '@trustmesh/broker';
import { type ChainViolation, TaskTimeoutError } from '@trustmesh/client';
import { generateKey, issueRootToken, toHex, tokenHash, verifyEvidence } from '@trustmesh/protocol';
import { uniqueMesh, waitFor, withNats } from '@trustmesh/test-utils';
import { describe, expect, it } from 'vitest';
import { forgeLink, joinWithTasks } from './tasks-fixture.ts';

const nats = withNats();

describe('tasks - outcomes for breakers and the broker', () => {
  it('tasks - timed-out tasks open the worker breaker after the configured failures, and the next task is not sent', async () => {
    const mesh = uniqueMesh('outcome');
    const key = generateKey();
    const rootAuthority = { [key.did]: ['slow:**'] };
    const br = breakers({ volumeThreshold: 2, errorThresholdPercentage: 50, resetTimeoutMs: 60_000, publish: false });
    const outcomes: string[] = [];
    const delegator = await joinWithTasks(nats, mesh, 'delegator', {
      rootAuthority,
      key,
      interceptor: br.interceptRequest,
      onOutcome: (_did, outcome) => outcomes.push(outcome),
    });
    const worker = await joinWithTasks(nats, mesh, 'worker', { rootAuthority });
    let received = 0;
    worker.t.serve('slow:**', (_input, ctx) => {
      received++;
      return new Promise((resolve) => ctx.signal.addEventListener('abort', () => resolve('late')));
    });
    for (let i = 0; i < 2; i++) {
      const task = delegator.t.delegate({ to: worker.did, capability: 'slow:job', timeoutMs: 150 });
      await expect(task.result).rejects.toBeInstanceOf(TaskTimeoutError);
    }
    expect(outcomes).toEqual(['failure', 'failure']);
    await waitFor(() => br.breaker(worker.did)?.state === 'open', "the worker's breaker open");
    const third = delegator.t.delegate({ to: worker.did, capability: 'slow:job', timeoutMs: 150 });
    const error = await third.result.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BreakerOpenError);
    expect(third.state).toBe('failed');
    expect(third.history.at(-1)?.error?.code).toBe('breaker_open');
    expect(received).toBe(2);
  });

  it('tasks - a claimer whose breaker is open is declined; the offer stays open', async () => {
    const mesh = uniqueMesh('outcome');
    const key = generateKey();
    const rootAuthority = { [key.did]: ['fetch:**'] };
    const br = breakers({ volumeThreshold: 1, resetTimeoutMs: 60_000, publish: false });
    const delegator = await joinWithTasks(nats, mesh, 'delegator', { rootAuthority, key, interceptor: br.interceptRequest });
    const worker = await joinWithTasks(nats, mesh, 'worker', { rootAuthority });
    let runs = 0;
    worker.t.serve('fetch:**', (_input, ctx) => {
      runs++;
      return new Promise((resolve) => ctx.signal.addEventListener('abort', () => resolve('late')));
    });
    await expect(delegator.t.delegate({ to: worker.did, capability: 'fetch:a', timeoutMs: 150 }).result).rejects.toBeInstanceOf(
      TaskTimeoutError,
    );
    await waitFor(() => br.breaker(worker.did)?.state === 'open', 'the breaker open');
    const task = delegator.t.delegate({ to: { capability: 'fetch:**' }, capability: 'fetch:b', timeoutMs: 500 });
    await waitFor(() => delegator.t.stats().claimsDeclined === 1, 'the claim declined');
    expect(task.state).toBe('submitted');
    expect(task.worker).toBeUndefined();
    await expect(task.result).rejects.toBeInstanceOf(TaskTimeoutError);
    expect(runs).toBe(1);
  });

  it("tasks - a worker's scope_escalation evidence, re-checked as a broker does, lowers the issuer's score", async () => {
    const mesh = uniqueMesh('outcome');
    const authority = generateKey();
    const rootAuthority = { [authority.did]: ['read:**'] };
    const violations: ChainViolation[] = [];
    const delegator = await joinWithTasks(nats, mesh, 'delegator', { rootAuthority });
    const worker = await joinWithTasks(nats, mesh, 'worker', { rootAuthority, onViolation: (v) => violations.push(v) });
    worker.t.serve('read:**', () => 'ran');
    const root = issueRootToken(authority, { audience: delegator.did, scope: ['read:docs/*'], expiry: Date.now() + 60_000, depth: 1 });
    const wider = forgeLink({
      issuer: delegator.key,
      audience: worker.did,
      parent: root,
      notBefore: root.notBefore,
      expiry: root.expiry,
      depth: 0,
      scope: ['read:**'],
    });
    const task = delegator.t.delegate({ to: worker.did, capability: 'read:secrets/k', chain: [root, wider], presigned: true });
    await expect(task.result).rejects.toMatchObject({ reason: 'scope_escalation' });
    expect(violations).toHaveLength(1);

    // The broker's side: take nobody's word, re-check the two tokens, then score the signer.
    const { evidence } = violations[0]!;
    const verdict = verifyEvidence(evidence!.parent, evidence!.token);
    expect(verdict).toMatchObject({ attributable: true, issuer: delegator.did, reason: 'scope_escalation' });
    if (!verdict.attributable) throw new Error('unreachable');
    const scorer = createScorer();
    const now = Date.now();
    const before = scorer.newState(verdict.issuer, now);
    const after = scorer.applyEvidence(before, { event: 'scope_escalation', key: toHex(tokenHash(evidence!.token)) }, now);
    expect(after.outcome).toBe('applied');
    expect(scorer.currentScore(after.state, now)).toBeLessThan(scorer.currentScore(before, now));
    // The same evidence reported again (by another worker) counts once.
    const again = scorer.applyEvidence(after.state, { event: 'scope_escalation', key: toHex(tokenHash(evidence!.token)) }, now);
    expect(again.outcome).toBe('duplicate');
  });
});
