import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { joinMesh } from '@trustmesh/client';
import { type NatsServerHandle, startNatsServer } from '@trustmesh/embedded-nats';
import { generateKey } from '@trustmesh/protocol';
import { uniqueMesh, waitFor } from '@trustmesh/test-utils';
import { afterAll, describe, expect, it } from 'vitest';
import { createOperator, KilledError, killSwitch } from '../src/index.ts';

const cleanup: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const step of cleanup.reverse()) await step().catch(() => undefined);
});

describe('kill - reconnect', () => {
  it('kill - a kill published while an agent was disconnected is read from the record when it reconnects', async () => {
    const storeDir = await mkdtemp(join(tmpdir(), 'trustmesh-kill-'));
    cleanup.push(() => rm(storeDir, { recursive: true, force: true }));
    let server: NatsServerHandle = await startNatsServer({ storeDir });
    cleanup.push(() => server.stop());
    const mesh = uniqueMesh();
    const opKey = generateKey();
    // The agent waits 2 s between reconnect attempts: the kill below is published before it is back.
    const agentNc = await connect({ servers: server.url, reconnectTimeWait: 2_000, reconnectJitter: 0, maxReconnectAttempts: -1 });
    cleanup.push(() => agentNc.close());
    const ks = killSwitch({ operators: [opKey.did] });
    const agent = await joinMesh({ mesh, name: 'a', connection: agentNc, extensions: [ks] });
    cleanup.push(() => agent.leave());
    const operator0 = await createOperator({ key: opKey, mesh, servers: server.url });
    await operator0.close(); // the bucket exists now

    const port = server.port;
    await server.stop();
    server = await startNatsServer({ storeDir, port });
    const operator = await createOperator({ key: opKey, mesh, servers: server.url });
    cleanup.push(() => operator.close());
    const result = await operator.kill({ timeoutMs: 100 });
    expect(result.seq).toBe(1);
    expect(ks.state().halted).toBe(false); // it missed the frame

    await waitFor(() => ks.state().halted, 'the agent to read the kill after reconnecting', 10_000);
    expect(ks.state()).toMatchObject({ seq: 1, all: true, source: 'record' });
    expect(() => agent.send(agent.did, 'hello')).toThrow(KilledError);
  });
});
