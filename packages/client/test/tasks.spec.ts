import {
  TaskCanceledError,
  TaskFailedError,
  TaskRejectedError,
  TaskTimeoutError,
  type TaskSnapshot,
  type TaskStatus,
} from '@trustmesh/client';
import {
  type CapabilityToken,
  DelegationError,
  generateKey,
  issueRootToken,
  meshSubjects,
  openFrame,
  signFrame,
} from '@trustmesh/protocol';
import { uniqueMesh, waitFor, withNats } from '@trustmesh/test-utils';
import { describe, expect, it } from 'vitest';
import { deferred, joinWithTasks } from './tasks-fixture.ts';

const nats = withNats();

describe('tasks - lifecycle', () => {
  it('tasks - a three-hop chain completes, each hop verifying the chain that grants it the capability', async () => {
    const mesh = uniqueMesh('task');
    const plannerKey = generateKey();
    const rootAuthority = { [plannerKey.did]: ['research:**', 'fetch:web/**'] };
    const planner = await joinWithTasks(nats, mesh, 'planner', { rootAuthority, key: plannerKey });
    const researcher = await joinWithTasks(nats, mesh, 'researcher', { rootAuthority });
    const analyst = await joinWithTasks(nats, mesh, 'analyst', { rootAuthority });
    const fetcher = await joinWithTasks(nats, mesh, 'fetcher', { rootAuthority });
    const chains: Record<string, readonly CapabilityToken[]> = {};

    fetcher.t.serve('fetch:web/**', (input, ctx) => {
      chains.fetcher = ctx.chain;
      return `<html>${String(input)}</html>`;
    });
    analyst.t.serve('fetch:web/**', async (input, ctx) => {
      chains.analyst = ctx.chain;
      ctx.update('working', 'asking the fetcher');
      const page = ctx.delegate({ to: fetcher.did, capability: 'fetch:web/nats.io/docs', scope: ['fetch:web/nats.io/**'], input });
      return `analysed ${String(await page.result)}`;
    });
    researcher.t.serve('research:**', async (input, ctx) => {
      chains.researcher = ctx.chain;
      const sub = ctx.delegate({ to: analyst.did, capability: 'fetch:web/nats.io/docs', scope: ['fetch:web/nats.io/**'], input });
      return { topic: input, notes: await sub.result };
    });

    const task = planner.t.delegate({
      to: researcher.did,
      capability: 'research:topics/nats',
      scope: ['research:topics/**', 'fetch:web/**'],
      input: 'nats',
    });
    const seen: TaskStatus[] = [];
    task.onStatus((s) => seen.push(s));
    await expect(task.result).resolves.toEqual({ topic: 'nats', notes: 'analysed <html>nats</html>' });
    expect(task.state).toBe('completed');
    expect(task.history.map((s) => s.state)).toEqual(['submitted', 'working', 'completed']);
    expect(seen.at(-1)?.from).toBe(researcher.did);

    // Root -> researcher -> analyst -> fetcher: three links, each narrower, each granted to the next hop.
    expect(chains.researcher?.map((t) => t.audience)).toEqual([researcher.did]);
    expect(chains.analyst?.map((t) => t.audience)).toEqual([researcher.did, analyst.did]);
    expect(chains.fetcher?.map((t) => [t.issuer, t.audience, t.scope, t.depth])).toEqual([
      [planner.did, researcher.did, ['research:topics/**', 'fetch:web/**'], 3],
      [researcher.did, analyst.did, ['fetch:web/nats.io/**'], 2],
      [analyst.did, fetcher.did, ['fetch:web/nats.io/**'], 1],
    ]);
    // The sub-delegations form a tree the delegators can list.
    const sub = researcher.t.list().find((s: TaskSnapshot) => s.role === 'delegator');
    expect(sub).toMatchObject({ parent: task.id, state: 'completed', peer: analyst.did });
    expect(fetcher.t.list()).toEqual([expect.objectContaining({ role: 'worker', state: 'completed', peer: analyst.did })]);
  });

  it('tasks - input-required streams to the delegator, and its answer resumes the handler', async () => {
    const mesh = uniqueMesh('task');
    const key = generateKey();
    const rootAuthority = { [key.did]: ['write:**'] };
    const boss = await joinWithTasks(nats, mesh, 'boss', { rootAuthority, key });
    const writer = await joinWithTasks(nats, mesh, 'writer', { rootAuthority });
    writer.t.serve('write:**', async (input, ctx) => {
      const tone = await ctx.requestInput('which tone?');
      return `${String(input)} in a ${String(tone)} tone`;
    });
    const task = boss.t.delegate({ to: writer.did, capability: 'write:report', input: 'the report' });
    const off = task.onStatus((s) => {
      if (s.state === 'input-required') task.respond('dry');
    });
    await expect(task.result).resolves.toBe('the report in a dry tone');
    off();
    const states: string[] = [];
    for await (const status of task.updates()) states.push(status.state);
    expect(states).toEqual(['submitted', 'working', 'input-required', 'working', 'completed']);
    expect(task.history.find((s) => s.state === 'input-required')?.message).toBe('which tone?');
  });

  it('tasks - a handler that throws fails the task, reported as a failure of its worker', async () => {
    const mesh = uniqueMesh('task');
    const key = generateKey();
    const rootAuthority = { [key.did]: ['calc:**'] };
    const outcomes: [string, string][] = [];
    const boss = await joinWithTasks(nats, mesh, 'boss', { rootAuthority, key, onOutcome: (did, o) => outcomes.push([did, o]) });
    const worker = await joinWithTasks(nats, mesh, 'worker', { rootAuthority });
    worker.t.serve('calc:**', (input) => {
      if (input === 0) throw new Error('division by zero');
      return 1 / (input as number);
    });
    await expect(boss.t.delegate({ to: worker.did, capability: 'calc:inverse', input: 4 }).result).resolves.toBe(0.25);
    const failing = boss.t.delegate({ to: worker.did, capability: 'calc:inverse', input: 0 });
    const error = await failing.result.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TaskFailedError);
    expect(error).toMatchObject({ remoteCode: 'handler_error', remoteMessage: 'division by zero', from: worker.did });
    expect(failing.state).toBe('failed');
    expect(outcomes).toEqual([
      [worker.did, 'success'],
      [worker.did, 'failure'],
    ]);
  });

  it('tasks - a task for a capability nobody at the worker serves is rejected with no_handler', async () => {
    const mesh = uniqueMesh('task');
    const key = generateKey();
    const rootAuthority = { [key.did]: ['*:**'] };
    const boss = await joinWithTasks(nats, mesh, 'boss', { rootAuthority, key });
    const worker = await joinWithTasks(nats, mesh, 'worker', { rootAuthority });
    worker.t.serve('read:docs/**', () => 'read');
    const error = await boss.t.delegate({ to: worker.did, capability: 'write:docs/a' }).result.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TaskRejectedError);
    expect(error).toMatchObject({ reason: 'no_handler' });
    expect(worker.t.stats().rejected).toEqual({ no_handler: 1 });
  });

  it('tasks - the honest API refuses to sign a wider, longer or deeper link, so it never produces evidence against its caller', async () => {
    const mesh = uniqueMesh('task');
    const root = generateKey();
    const rootAuthority = { [root.did]: ['read:**'] };
    const middle = await joinWithTasks(nats, mesh, 'middle', { rootAuthority });
    const worker = generateKey();
    const chain = [issueRootToken(root, { audience: middle.did, scope: ['read:docs/*'], expiry: Date.now() + 60_000, depth: 1 })];
    const attempt = (extra: object) => () => middle.t.delegate({ to: worker.did, capability: 'read:docs/a', chain, ...extra });
    expect(attempt({ scope: ['read:**'] })).toThrow(DelegationError);
    expect(attempt({ scope: ['read:**'] })).toThrow(/scope_escalation/);
    expect(attempt({ depth: 1 })).toThrow(/depth_exceeded/);
    expect(attempt({ capability: 'write:docs/a', scope: ['write:docs/a'] })).toThrow(/scope_escalation/);
    // Not a root authority and no chain: nothing to delegate from.
    expect(() => middle.t.delegate({ to: worker.did, capability: 'read:docs/a' })).toThrow(/no root authority/);
    expect(middle.t.stats().delegated).toBe(0);
  });

  it('tasks - cancel reaches every hop: each handler sees its signal abort, and the acknowledgement comes after the sub-tasks', async () => {
    const mesh = uniqueMesh('task');
    const key = generateKey();
    const rootAuthority = { [key.did]: ['job:**'] };
    const a = await joinWithTasks(nats, mesh, 'a', { rootAuthority, key });
    const b = await joinWithTasks(nats, mesh, 'b', { rootAuthority });
    const c = await joinWithTasks(nats, mesh, 'c', { rootAuthority });
    const d = await joinWithTasks(nats, mesh, 'd', { rootAuthority });
    const aborted: string[] = [];
    const reached = deferred();
    const waitForAbort = (name: string, signal: AbortSignal) =>
      new Promise((_, reject) =>
        signal.addEventListener('abort', () => {
          aborted.push(name);
          reject(signal.reason);
        }),
      );
    d.t.serve('job:**', (_input, ctx) => {
      reached.resolve();
      return waitForAbort('d', ctx.signal);
    });
    c.t.serve('job:**', (_input, ctx) => {
      ctx.delegate({ to: d.did, capability: 'job:x' });
      return waitForAbort('c', ctx.signal);
    });
    b.t.serve('job:**', (_input, ctx) => {
      ctx.delegate({ to: c.did, capability: 'job:x' });
      return waitForAbort('b', ctx.signal);
    });
    const task = a.t.delegate({ to: b.did, capability: 'job:x', timeoutMs: 10_000 });
    await reached.promise;
    const acknowledged = await task.cancel('plans changed');
    expect(acknowledged).toBe(true);
    expect(aborted.sort()).toEqual(['b', 'c', 'd']);
    await expect(task.result).rejects.toBeInstanceOf(TaskCanceledError);
    for (const agent of [b, c, d]) expect(agent.t.list().find((s) => s.role === 'worker')?.state).toBe('canceled');
    for (const agent of [b, c]) expect(agent.t.list().find((s) => s.role === 'delegator')?.state).toBe('canceled');
  });

  it('tasks - aborting the delegate signal cancels the task', async () => {
    const mesh = uniqueMesh('task');
    const key = generateKey();
    const rootAuthority = { [key.did]: ['job:**'] };
    const a = await joinWithTasks(nats, mesh, 'a', { rootAuthority, key });
    const b = await joinWithTasks(nats, mesh, 'b', { rootAuthority });
    const started = deferred();
    const stopped = deferred<unknown>();
    b.t.serve('job:**', (_input, ctx) => {
      started.resolve();
      return new Promise((_, reject) =>
        ctx.signal.addEventListener('abort', () => {
          stopped.resolve(ctx.signal.reason);
          reject(ctx.signal.reason);
        }),
      );
    });
    const controller = new AbortController();
    const task = a.t.delegate({ to: b.did, capability: 'job:x', signal: controller.signal });
    await started.promise;
    controller.abort();
    await expect(task.result).rejects.toBeInstanceOf(TaskCanceledError);
    expect(String(await stopped.promise)).toMatch(/canceled/);
  });

  it('tasks - a signal aborted before delegate() sends nothing', async () => {
    const mesh = uniqueMesh('task');
    const key = generateKey();
    const rootAuthority = { [key.did]: ['job:**'] };
    const a = await joinWithTasks(nats, mesh, 'a', { rootAuthority, key });
    const b = await joinWithTasks(nats, mesh, 'b', { rootAuthority });
    let runs = 0;
    b.t.serve('job:**', () => ++runs);
    const signal = AbortSignal.abort();
    const direct = a.t.delegate({ to: b.did, capability: 'job:x', signal });
    const offered = a.t.delegate({ to: { capability: 'job:**' }, capability: 'job:y', signal });
    await expect(direct.result).rejects.toBeInstanceOf(TaskCanceledError);
    await expect(offered.result).rejects.toBeInstanceOf(TaskCanceledError);
    // A task sent afterwards completes, and is the only one the worker ever saw.
    await expect(a.t.delegate({ to: b.did, capability: 'job:z' }).result).resolves.toBe(1);
    expect(b.t.stats().served).toBe(1);
  });

  it('tasks - a timed-out task is canceled at the worker and reported as a failure of that worker', async () => {
    const mesh = uniqueMesh('task');
    const key = generateKey();
    const rootAuthority = { [key.did]: ['slow:**'] };
    const outcomes: [string, string, string][] = [];
    const records: (Uint8Array | undefined)[] = [];
    const a = await joinWithTasks(nats, mesh, 'a', {
      rootAuthority,
      key,
      onOutcome: (did, outcome, task, record) => {
        outcomes.push([did, outcome, task.history.at(-1)?.error?.code ?? '']);
        records.push(record);
      },
    });
    const b = await joinWithTasks(nats, mesh, 'b', { rootAuthority });
    const workerAborted = deferred();
    b.t.serve(
      'slow:**',
      (_input, ctx) =>
        new Promise((resolve) =>
          ctx.signal.addEventListener('abort', () => {
            workerAborted.resolve();
            resolve('late');
          }),
        ),
    );
    const task = a.t.delegate({ to: b.did, capability: 'slow:job', timeoutMs: 300 });
    const error = await task.result.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TaskTimeoutError);
    expect(error).toMatchObject({ worker: b.did, timeoutMs: 300 });
    expect(task.state).toBe('failed');
    expect(outcomes).toEqual([[b.did, 'failure', 'timeout']]);
    // The task record for a report: the worker's own signed 'working' status, proof that it accepted the task.
    const opened = openFrame(records[0]!);
    expect(opened.ok && [opened.frame.iss, opened.frame.typ, (opened.frame.data as { state: string }).state]).toEqual([
      b.did,
      'tm.task.status',
      'working',
    ]);
    await workerAborted.promise; // the cancel reached the worker
    expect(a.t.stats()).toMatchObject({ timedOut: 1, failed: 0 });
  });

  it('tasks - statuses are accepted only from the worker the task went to', async () => {
    const mesh = uniqueMesh('task');
    const key = generateKey();
    const rootAuthority = { [key.did]: ['job:**'] };
    const a = await joinWithTasks(nats, mesh, 'a', { rootAuthority, key });
    const b = await joinWithTasks(nats, mesh, 'b', { rootAuthority });
    const mallory = await joinWithTasks(nats, mesh, 'mallory', { rootAuthority });
    const release = deferred();
    b.t.serve('job:**', async () => {
      await release.promise;
      return 'from b';
    });
    const task = a.t.delegate({ to: b.did, capability: 'job:x' });
    await waitFor(() => task.state === 'working', 'the working status');
    // Mallory signs a status for a task id she learned: a validly signed frame, from the wrong agent.
    const sub = meshSubjects(mesh).addressed('task', a.agent.agentId, mallory.agent.agentId);
    const nc = await nats.connect();
    const ignoredBefore = a.t.stats().ignored;
    nc.publish(
      sub,
      signFrame(mallory.key, { sub, typ: 'tm.task.status', aud: a.did, data: { id: task.id, state: 'completed', result: 'forged' } }).bytes,
    );
    await nc.flush();
    await waitFor(() => a.t.stats().ignored > ignoredBefore, 'the forged status to be ignored');
    expect(task.state).toBe('working');
    release.resolve();
    await expect(task.result).resolves.toBe('from b');
  });
});
