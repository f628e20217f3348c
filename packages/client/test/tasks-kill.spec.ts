/**
 * The task module under the operator kill switch: the module runs the kill
 * switch's outbound guard before every task frame (the extension port's
 * publishSigned runs none), and the kill switch's change event aborts the
 * running handlers through `abortAll`.
 */
import { TaskCanceledError } from '@trustmesh/client';
import { createOperator, KilledError, killSwitch } from '@trustmesh/kill';
import { generateKey } from '@trustmesh/protocol';
import { uniqueMesh, waitFor, withNats } from '@trustmesh/test-utils';
import { describe, expect, it } from 'vitest';
import { deferred, joinWithTasks } from './tasks-fixture.ts';

const nats = withNats();

describe('tasks - kill switch', () => {
  it('tasks - a targeted kill aborts the halted worker handlers, and nobody delegates to it or through it', async () => {
    const mesh = uniqueMesh('kill');
    const operatorKey = generateKey();
    const key = generateKey();
    const rootAuthority = { [key.did]: ['job:**'] };
    const join = async (name: string, agentKey = generateKey()) => {
      const ks = killSwitch({ operators: [operatorKey.did] });
      const member = await joinWithTasks(nats, mesh, name, {
        rootAuthority,
        key: agentKey,
        outboundGuards: [ks.outbound!],
        extensions: [ks],
      });
      ks.on('change', (state) => {
        if (state.halted) member.t.abortAll('halted by an operator kill');
      });
      return member;
    };
    const delegator = await join('delegator', key);
    const worker = await join('worker');
    const aborted = deferred<unknown>();
    const started = deferred();
    worker.t.serve('job:**', (_input, ctx) => {
      started.resolve();
      return new Promise((_, reject) =>
        ctx.signal.addEventListener('abort', () => {
          aborted.resolve(ctx.signal.reason);
          reject(ctx.signal.reason);
        }),
      );
    });
    const task = delegator.t.delegate({ to: worker.did, capability: 'job:x', timeoutMs: 300 });
    await started.promise;

    const operator = await createOperator({ key: operatorKey, mesh, servers: nats.url, knownAgents: () => [worker.did, delegator.did] });
    try {
      await operator.kill({ agent: worker.did });
      expect(String(await aborted.promise)).toMatch(/halted by an operator kill/);
      await waitFor(() => worker.t.list()[0]?.state === 'canceled', "the worker's task canceled");
      // The halted worker sends nothing more (not even its status); the delegator's timeout ends the task there.
      await expect(task.result).rejects.toMatchObject({ code: 'timeout' });
      // The delegator's own kill switch refuses a task to the killed peer before anything is signed.
      const refused = delegator.t.delegate({ to: worker.did, capability: 'job:y' });
      await expect(refused.result).rejects.toBeInstanceOf(KilledError);
      expect(refused.state).toBe('failed');
      // A global kill halts the delegator too: its capability offers are refused, its pending tasks aborted.
      const pending = delegator.t.delegate({ to: { capability: 'job:**' }, capability: 'job:z', timeoutMs: 10_000 });
      await operator.kill();
      await expect(pending.result).rejects.toBeInstanceOf(TaskCanceledError);
      const offer = delegator.t.delegate({ to: { capability: 'job:**' }, capability: 'job:w' });
      await expect(offer.result).rejects.toBeInstanceOf(KilledError);
    } finally {
      await operator.close();
    }
  });
});
