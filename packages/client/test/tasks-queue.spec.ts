/**
 * Capability-addressed tasks: offered to a NATS queue group, claimed by one
 * member, assigned by the delegator to the first claimer only. Replay memory
 * is per receiver, so a re-published offer can reach a member that never saw
 * it: these tests re-publish offers and submits and count handler runs.
 */
import { capabilityToken, TaskTimeoutError } from '@trustmesh/client';
import { generateKey } from '@trustmesh/protocol';
import { capture, sleep, uniqueMesh, waitFor, withNats } from '@trustmesh/test-utils';
import { describe, expect, it } from 'vitest';
import { deferred, joinWithTasks, type TaskAgent } from './tasks-fixture.ts';

const nats = withNats();

async function group(size: number, onRun: (worker: string, id: string) => Promise<unknown> | unknown) {
  const mesh = uniqueMesh('queue');
  const key = generateKey();
  const rootAuthority = { [key.did]: ['fetch:**'] };
  const outcomes: string[] = [];
  const delegator = await joinWithTasks(nats, mesh, 'delegator', {
    rootAuthority,
    key,
    onOutcome: (did, o) => outcomes.push(`${did} ${o}`),
  });
  const workers: TaskAgent[] = [];
  for (let i = 0; i < size; i++) {
    const worker = await joinWithTasks(nats, mesh, `worker-${i}`, { rootAuthority });
    worker.t.serve('fetch:web/**', (_input, ctx) => onRun(`worker-${i}`, ctx.id));
    workers.push(worker);
  }
  return { mesh, delegator, workers, outcomes };
}

const replays = (workers: TaskAgent[]) => workers.reduce((n, w) => n + (w.agent.stats().rejected.replay ?? 0), 0);

describe('tasks - capability queue groups', () => {
  it('tasks - capability-addressed tasks spread over the queue group and each runs exactly once', async () => {
    const runs: [string, string][] = [];
    const { delegator, workers, outcomes } = await group(3, (worker, id) => {
      runs.push([worker, id]);
      return worker;
    });
    const handles = Array.from({ length: 30 }, (_, i) =>
      delegator.t.delegate({ to: { capability: 'fetch:web/**' }, capability: `fetch:web/page/${i}`, input: i }),
    );
    const results = await Promise.all(handles.map((h) => h.result));
    expect(runs).toHaveLength(30);
    expect(new Set(runs.map(([, id]) => id)).size).toBe(30);
    // Each task's result names the member that ran it, and the delegator assigned it to exactly that member.
    handles.forEach((h, i) => {
      expect(h.state).toBe('completed');
      expect(workers.find((w) => w.did === h.worker)?.agent.name).toBe(results[i]);
    });
    const perWorker = new Map<string, number>();
    for (const [worker] of runs) perWorker.set(worker, (perWorker.get(worker) ?? 0) + 1);
    expect(perWorker.size).toBeGreaterThanOrEqual(2); // 3 x (1/3)^30 that one member got all
    expect(outcomes.filter((o) => o.endsWith('success'))).toHaveLength(30);
    // The chain the worker got was signed for it at assignment: its last audience is the claimer.
    const snapshot = delegator.t.list().find((s) => s.id === handles[0]!.id)!;
    expect(snapshot.chain.map((l) => l.audience)).toEqual([handles[0]!.worker]);
  });

  it('tasks - a re-published offer reaches other members, who claim it and are declined: each task still runs once', async () => {
    const runs: string[] = [];
    const release = deferred();
    const { mesh, delegator, workers } = await group(3, async (_worker, id) => {
      runs.push(id);
      await release.promise;
      return 'done';
    });
    const spy = await nats.connect();
    // The attacker (or a confused relay) re-sends every offer four times the moment it sees it, racing the first claim.
    const offers = await capture(spy, `tm.${mesh}.ctask.${capabilityToken('fetch:web/**')}.*`);
    const republished: Uint8Array[] = [];
    const sub = spy.subscribe(`tm.${mesh}.ctask.>`, {
      callback: (_err, msg) => {
        if (republished.some((d) => Buffer.compare(d, msg.data) === 0)) return;
        republished.push(new Uint8Array(msg.data));
        for (let i = 0; i < 4; i++) spy.publish(msg.subject, msg.data);
      },
    });
    await spy.flush();
    const handles = Array.from({ length: 10 }, (_, i) =>
      delegator.t.delegate({ to: { capability: 'fetch:web/**' }, capability: `fetch:web/item/${i}` }),
    );
    await waitFor(() => republished.length === 10, 'ten offers seen and re-published');
    // 40 copies: each went to one member, who either remembers the frame (replay) or claims and is declined.
    await waitFor(() => replays(workers) + delegator.t.stats().claimsDeclined === 40, 'every copy refused', 10_000);
    expect(delegator.t.stats().claimsDeclined).toBeGreaterThan(0); // copies did reach members that never saw the offer
    await waitFor(() => handles.every((h) => h.state === 'working'), 'every task working');
    release.resolve();
    await Promise.all(handles.map((h) => h.result));
    expect(runs).toHaveLength(10);
    expect(new Set(runs).size).toBe(10);
    expect(offers.messages).toHaveLength(50);

    // After the tasks finished: the same offers once more, to every member. Nothing runs again.
    const declined = delegator.t.stats().claimsDeclined;
    const replayed = replays(workers);
    for (const m of offers.messages.slice(0, 50)) spy.publish(m.subject, m.data);
    await spy.flush();
    await waitFor(
      () => replays(workers) + delegator.t.stats().claimsDeclined === replayed + declined + 50,
      'the late copies refused',
      10_000,
    );
    expect(runs).toHaveLength(10);
    sub.unsubscribe();
  });

  it('tasks - a re-published task frame to its worker is a replay, and on another member subject it is refused', async () => {
    let runs = 0;
    const { mesh, delegator, workers } = await group(2, () => {
      runs++;
      return 'ok';
    });
    const spy = await nats.connect();
    const submits = await capture(spy, `tm.${mesh}.task.*.${delegator.agent.agentId}`);
    const task = delegator.t.delegate({ to: { capability: 'fetch:web/**' }, capability: 'fetch:web/x' });
    await task.result;
    const submit = await submits.next();
    const assigned = workers.find((w) => w.did === task.worker)!;
    const other = workers.find((w) => w !== assigned)!;
    spy.publish(submit.subject, submit.data);
    spy.publish(submit.subject.replace(assigned.agent.agentId, other.agent.agentId), submit.data);
    await spy.flush();
    await waitFor(() => (assigned.agent.stats().rejected.replay ?? 0) === 1, 'the replay refused');
    await waitFor(() => (other.agent.stats().rejected.subject_mismatch ?? 0) === 1, 'the re-routed frame refused');
    expect(runs).toBe(1);
  });

  it('tasks - a delegator that is itself a member of the group may take its own offer', async () => {
    const mesh = uniqueMesh('queue');
    const key = generateKey();
    const solo = await joinWithTasks(nats, mesh, 'solo', { rootAuthority: { [key.did]: ['fetch:**'] }, key });
    solo.t.serve('fetch:web/**', (input, ctx) => `${String(input)} by ${ctx.delegator === solo.did ? 'myself' : 'someone'}`);
    const task = solo.t.delegate({ to: { capability: 'fetch:web/**' }, capability: 'fetch:web/x', input: 'fetched' });
    await expect(task.result).resolves.toBe('fetched by myself');
    expect(task.worker).toBe(solo.did);
  });

  it('tasks - a capability nobody serves times out with no worker to blame', async () => {
    const { delegator, outcomes } = await group(0, () => 'never');
    const task = delegator.t.delegate({ to: { capability: 'fetch:web/**' }, capability: 'fetch:web/x', timeoutMs: 200 });
    const error = await task.result.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TaskTimeoutError);
    expect((error as TaskTimeoutError).worker).toBeUndefined();
    expect(outcomes).toEqual([]);
  });

  it('tasks - a claimer the delegator refuses (checkPeer: an open breaker, an untrusted peer) is declined and never gets the task', async () => {
    const mesh = uniqueMesh('queue');
    const key = generateKey();
    const rootAuthority = { [key.did]: ['fetch:**'] };
    const delegator = await joinWithTasks(nats, mesh, 'delegator', {
      rootAuthority,
      key,
      checkPeer: (did) => {
        if (did === bad.did) throw new Error('breaker open');
      },
    });
    const bad: TaskAgent = await joinWithTasks(nats, mesh, 'bad', { rootAuthority });
    let runs = 0;
    bad.t.serve('fetch:web/**', () => {
      runs++;
      return 'bad ran';
    });
    // serve() subscribes to the queue subject on bad's own connection; give the server a moment to know it.
    await sleep(200);
    const task = delegator.t.delegate({ to: { capability: 'fetch:web/**' }, capability: 'fetch:web/x', timeoutMs: 500 });
    await waitFor(() => delegator.t.stats().claimsDeclined === 1, 'the refused claim declined');
    expect(task.state).toBe('submitted');
    await expect(task.result).rejects.toBeInstanceOf(TaskTimeoutError);
    expect(runs).toBe(0);
    expect(() => delegator.t.delegate({ to: bad.did, capability: 'fetch:web/z' })).toThrow(/breaker open/);
  });
});
