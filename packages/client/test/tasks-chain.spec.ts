/**
 * Every chain rule, broken on purpose by a delegator that signs what the honest
 * API refuses to sign, and sent to a worker over a real nats-server: the
 * worker refuses before its handler runs, answers with a signed `rejected`
 * status carrying the reason, and reports the evidence when it is attributable.
 */
import { type ChainViolation, TaskRejectedError } from '@trustmesh/client';
import { type AgentKey, type CapabilityToken, delegate, generateKey, issueRootToken, verifyEvidence } from '@trustmesh/protocol';
import { uniqueMesh, withNats } from '@trustmesh/test-utils';
import { describe, expect, it } from 'vitest';
import { forgeLink, joinWithTasks, type TaskAgent, tamper } from './tasks-fixture.ts';

const nats = withNats();

interface Scene {
  authority: AgentKey;
  root: CapabilityToken;
  delegator: TaskAgent;
  worker: TaskAgent;
  runs: () => number;
  violations: ChainViolation[];
}

/** An authority holding `read:**` grants `read:docs/*` (depth 1) to the delegator; the worker serves `read:**`. */
async function scene(workerMaxDepth = 3): Promise<Scene> {
  const mesh = uniqueMesh('chain');
  const authority = generateKey();
  const rootAuthority = { [authority.did]: ['read:**'] };
  const delegator = await joinWithTasks(nats, mesh, 'delegator', { rootAuthority });
  const violations: ChainViolation[] = [];
  const worker = await joinWithTasks(nats, mesh, 'worker', {
    rootAuthority,
    maxDepth: workerMaxDepth,
    onViolation: (v) => violations.push(v),
  });
  let runs = 0;
  worker.t.serve('read:**', () => {
    runs++;
    return 'ran';
  });
  const root = issueRootToken(authority, { audience: delegator.did, scope: ['read:docs/*'], expiry: Date.now() + 60_000, depth: 1 });
  return { authority, root, delegator, worker, runs: () => runs, violations };
}

/** The delegator sends `chain` as it is (its last link already names the worker). */
async function send(s: Scene, chain: readonly (CapabilityToken | Uint8Array)[], capability = 'read:docs/a', from: TaskAgent = s.delegator) {
  const task = from.t.delegate({ to: s.worker.did, capability, chain, presigned: true, timeoutMs: 5_000 });
  const error = await task.result.then(
    () => undefined,
    (e: unknown) => e,
  );
  return { task, error: error as TaskRejectedError };
}

function expectRefused(s: Scene, error: TaskRejectedError, reason: string, link: number): void {
  expect(error).toBeInstanceOf(TaskRejectedError);
  expect({ reason: error.reason, link: error.link, from: error.from }).toEqual({ reason, link, from: s.worker.did });
  expect(s.runs()).toBe(0);
  expect(s.worker.t.stats().rejected).toEqual({ [reason]: 1 });
  expect(s.violations).toHaveLength(1);
  expect(s.violations[0]).toMatchObject({ reason, link, delegator: s.delegator.did });
}

describe('tasks - chain rules at the worker', () => {
  it('tasks - the valid chain runs (the control for every case below)', async () => {
    const s = await scene();
    const link = delegate(s.root, s.delegator.key, { audience: s.worker.did, scope: ['read:docs/a'] });
    const task = s.delegator.t.delegate({ to: s.worker.did, capability: 'read:docs/a', chain: [s.root, link], presigned: true });
    await expect(task.result).resolves.toBe('ran');
    expect(s.runs()).toBe(1);
    expect(s.violations).toEqual([]);
  });

  it('tasks - widening the scope is rejected as scope_escalation, with evidence against the delegator that a broker can re-check', async () => {
    const s = await scene();
    const wider = forgeLink({
      issuer: s.delegator.key,
      audience: s.worker.did,
      parent: s.root,
      notBefore: s.root.notBefore,
      expiry: s.root.expiry,
      depth: 0,
      scope: ['read:**'],
    });
    const { error } = await send(s, [s.root, wider], 'read:secrets/key');
    expectRefused(s, error, 'scope_escalation', 1);
    const v = s.violations[0]!;
    expect(v.attributableTo).toBe(s.delegator.did);
    expect(verifyEvidence(v.evidence!.parent, v.evidence!.token)).toMatchObject({
      attributable: true,
      issuer: s.delegator.did,
      reason: 'scope_escalation',
    });
    expect(v.frame.length).toBeGreaterThan(0);
  });

  it('tasks - extending the expiry is rejected as expiry_extended, attributable to the delegator', async () => {
    const s = await scene();
    const longer = forgeLink({
      issuer: s.delegator.key,
      audience: s.worker.did,
      parent: s.root,
      notBefore: s.root.notBefore,
      expiry: s.root.expiry + 3_600_000,
      depth: 0,
      scope: ['read:docs/a'],
    });
    const { error } = await send(s, [s.root, longer]);
    expectRefused(s, error, 'expiry_extended', 1);
    expect(s.violations[0]!.attributableTo).toBe(s.delegator.did);
  });

  it('tasks - keeping the parent depth is rejected as depth_exceeded, attributable to the delegator', async () => {
    const s = await scene();
    const deeper = forgeLink({
      issuer: s.delegator.key,
      audience: s.worker.did,
      parent: s.root,
      notBefore: s.root.notBefore,
      expiry: s.root.expiry,
      depth: s.root.depth,
      scope: ['read:docs/a'],
    });
    const { error } = await send(s, [s.root, deeper]);
    expectRefused(s, error, 'depth_exceeded', 1);
    expect(s.violations[0]!.attributableTo).toBe(s.delegator.did);
  });

  it('tasks - a chain longer than the worker accepts is rejected as depth_exceeded before any signature check', async () => {
    const s = await scene(1);
    const relay = generateKey();
    const deepRoot = issueRootToken(s.authority, {
      audience: s.delegator.did,
      scope: ['read:docs/*'],
      expiry: Date.now() + 60_000,
      depth: 3,
    });
    const toRelay = delegate(deepRoot, s.delegator.key, { audience: relay.did });
    const toWorker = delegate(toRelay, relay, { audience: s.worker.did });
    const { error } = await send(s, [deepRoot, toRelay, toWorker]);
    expectRefused(s, error, 'depth_exceeded', 2);
    expect(s.violations[0]!.attributableTo).toBeUndefined();
  });

  it('tasks - a chain granted to another agent is rejected as wrong_audience', async () => {
    const s = await scene();
    const elsewhere = delegate(s.root, s.delegator.key, { audience: generateKey().did, scope: ['read:docs/a'] });
    const { error } = await send(s, [s.root, elsewhere]);
    expectRefused(s, error, 'wrong_audience', 1);
    expect(s.violations[0]!.attributableTo).toBeUndefined();
  });

  it('tasks - a tampered link (one bit of the root) is rejected as bad_signature, attributable to nobody', async () => {
    const s = await scene();
    const link = delegate(s.root, s.delegator.key, { audience: s.worker.did, scope: ['read:docs/a'] });
    const { error } = await send(s, [tamper(s.root, 100), link.bytes]);
    expectRefused(s, error, 'bad_signature', 0);
    expect(s.violations[0]!.attributableTo).toBeUndefined();
  });

  it('tasks - a tampered last link is rejected as bad_signature at that link', async () => {
    const s = await scene();
    const link = delegate(s.root, s.delegator.key, { audience: s.worker.did, scope: ['read:docs/a'] });
    const { error } = await send(s, [s.root.bytes, tamper(link, 100)]);
    expectRefused(s, error, 'bad_signature', 1);
  });

  it('tasks - a root signed by a key that is no authority of the mesh is rejected as unknown_root', async () => {
    const s = await scene();
    const pretender = generateKey();
    const fakeRoot = issueRootToken(pretender, { audience: s.delegator.did, scope: ['read:**'], expiry: Date.now() + 60_000 });
    const link = delegate(fakeRoot, s.delegator.key, { audience: s.worker.did, scope: ['read:docs/a'] });
    const { error } = await send(s, [fakeRoot, link]);
    expectRefused(s, error, 'unknown_root', 0);
    expect(s.violations[0]!.attributableTo).toBeUndefined();
  });

  it('tasks - a capability outside the granted scope is rejected as capability_not_granted', async () => {
    const s = await scene();
    const link = delegate(s.root, s.delegator.key, { audience: s.worker.did, scope: ['read:docs/a'] });
    const { error } = await send(s, [s.root, link], 'read:docs/b');
    expectRefused(s, error, 'capability_not_granted', 1);
  });

  it('tasks - an expired chain is rejected as expired', async () => {
    const s = await scene();
    const now = Date.now();
    const oldRoot = issueRootToken(s.authority, {
      audience: s.delegator.did,
      scope: ['read:docs/*'],
      notBefore: now - 60_000,
      expiry: now - 1_000,
    });
    const link = delegate(oldRoot, s.delegator.key, { audience: s.worker.did });
    const { error } = await send(s, [oldRoot, link]);
    expectRefused(s, error, 'expired', 0);
  });

  it('tasks - a valid chain presented by anyone but its last issuer is rejected as not_delegator (no reuse of a chain seen on the wire)', async () => {
    const s = await scene();
    const link = delegate(s.root, s.delegator.key, { audience: s.worker.did, scope: ['read:docs/a'] });
    const mallory = await joinWithTasks(nats, s.worker.agent.mesh, 'mallory', { rootAuthority: {} });
    const task = mallory.t.delegate({ to: s.worker.did, capability: 'read:docs/a', chain: [s.root, link], presigned: true });
    const error = (await task.result.catch((e: unknown) => e)) as TaskRejectedError;
    expect(error).toBeInstanceOf(TaskRejectedError);
    expect({ reason: error.reason, link: error.link }).toEqual({ reason: 'not_delegator', link: 1 });
    expect(s.runs()).toBe(0);
    expect(s.violations[0]).toMatchObject({ reason: 'not_delegator', delegator: mallory.did });
    expect(s.violations[0]!.attributableTo).toBeUndefined();
  });
});
