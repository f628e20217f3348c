/**
 * startNatsCluster on real processes: routes, clustered JetStream (an R3 stream),
 * a node crashed and restarted on its ports and store, clean removal on stop.
 */
import { stat } from 'node:fs/promises';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NatsServerError, startNatsCluster, type NatsClusterHandle } from '../src/index.ts';

let cluster: NatsClusterHandle;
const connections: NatsConnection[] = [];

const exists = (path: string) =>
  stat(path).then(
    () => true,
    () => false,
  );

const isRunning = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function api<T>(nc: NatsConnection, subject: string, body: unknown = {}): Promise<T> {
  const reply = (await nc.request(`$JS.API.${subject}`, JSON.stringify(body), { timeout: 5_000 })).json<
    T & { error?: { description: string } }
  >();
  if (reply.error) throw new Error(reply.error.description);
  return reply;
}

beforeAll(async () => {
  cluster = await startNatsCluster({ nodes: 3 });
}, 60_000);

afterAll(async () => {
  await Promise.all(connections.map((nc) => nc.close().catch(() => undefined)));
  await cluster?.stop();
}, 30_000);

describe('embedded-nats cluster', () => {
  it('start - three nodes on loopback, fully routed, one JetStream meta leader, none on the shared 4222', async () => {
    expect(cluster.nodes).toHaveLength(3);
    expect(new Set(cluster.nodes.map((n) => n.name))).toEqual(new Set(['trustmesh-n1', 'trustmesh-n2', 'trustmesh-n3']));
    for (const node of cluster.nodes) {
      expect(node.running).toBe(true);
      expect([node.port, node.clusterPort, node.httpPort]).not.toContain(4222);
    }
    const nc = await connect({ servers: cluster.urls[0]! });
    connections.push(nc);
    expect(nc.info?.cluster).toBe('trustmesh');
    expect(new Set(nc.info?.connect_urls).size).toBe(3);
    const leader = await cluster.metaLeader();
    expect(cluster.nodes.map((n) => n.name)).toContain(leader);
  });

  it('jetstream - an R3 stream keeps taking writes with a node SIGKILLed, and the node catches up after restart', async () => {
    const nc = await connect({ servers: [...cluster.urls], maxReconnectAttempts: -1, reconnectTimeWait: 250 });
    connections.push(nc);
    await api(nc, 'STREAM.CREATE.R3', { name: 'R3', subjects: ['r3.>'], num_replicas: 3, storage: 'file' });
    // Each message is published until JetStream acks it (a lost leader means a few seconds
    // of election): the stream takes writes again with two nodes of three.
    const js = async (n: number) => {
      for (let i = 0; i < n; i++) {
        const deadline = Date.now() + 20_000;
        for (;;) {
          const ack = await nc
            .request(`r3.${i}`, 'x', { timeout: 2_000 })
            .then((m) => m.json<{ seq?: number }>())
            .catch(() => ({}) as { seq?: number });
          if (ack.seq !== undefined) break;
          if (Date.now() > deadline) throw new Error(`r3.${i} never acknowledged`);
        }
      }
    };
    await js(10);
    const victim = cluster.nodes[2]!;
    const pid = victim.pid!;
    await cluster.kill(2);
    expect(isRunning(pid)).toBe(false);
    expect(victim.running).toBe(false);
    expect(await exists(victim.storeDir)).toBe(true);
    await js(10); // two of three replicas: still a quorum
    await cluster.restart(2);
    expect(victim.running).toBe(true);
    let info = await api<{ state: { messages: number }; cluster: { replicas: { name: string; current: boolean }[] } }>(
      nc,
      'STREAM.INFO.R3',
    );
    const deadline = Date.now() + 20_000;
    while (!info.cluster.replicas.every((r) => r.current) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      info = await api(nc, 'STREAM.INFO.R3');
    }
    expect(info.state.messages).toBe(20);
    expect(info.cluster.replicas.every((r) => r.current)).toBe(true);
  });

  it('init - refuses a cluster of one node (that is startNatsServer) and a bad name', async () => {
    await expect(startNatsCluster({ nodes: 1 })).rejects.toBeInstanceOf(NatsServerError);
    await expect(startNatsCluster({ name: 'a b' })).rejects.toThrow(/name/);
  });

  it('stop - ends every node and removes the temp store', async () => {
    const small = await startNatsCluster({ nodes: 2, name: 'pair', jetstream: false });
    const pids = small.nodes.map((n) => n.pid!);
    await small.stop();
    await small.stop(); // idempotent
    for (const pid of pids) expect(isRunning(pid)).toBe(false);
    for (const node of small.nodes) expect(await exists(node.storeDir)).toBe(false);
  });
});
