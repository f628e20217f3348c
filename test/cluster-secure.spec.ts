/**
 * Secure mode on a real 3-node cluster: every node runs the mesh authority's
 * config (operator JWT, full resolver with the accounts preloaded, a resolver
 * dir per node), the operator creates the presence bucket (R3 by replicasFor),
 * agents join with their own key and JWT, talk across nodes, and an agent whose
 * node is SIGKILLed is authenticated again by the node it fails over to.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { type Agent, joinMesh, replicasFor } from '@trustmesh/client';
import { type NatsClusterHandle, startNatsCluster } from '@trustmesh/embedded-nats';
import { generateKey } from '@trustmesh/protocol';
import { createMeshAuthority, hardenBucket, type MeshAuthority, meshResources, secureConnectOptions } from '@trustmesh/secure';
import { CLUSTER_CLIENT_OPTIONS, loadKv, uniqueMesh, waitFor } from '@trustmesh/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const mesh = uniqueMesh('s');
let dir: string;
let authority: MeshAuthority;
let cluster: NatsClusterHandle;
const serverLog: string[] = [];
const agents: Agent[] = [];
const connections: NatsConnection[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'trustmesh-secure-cluster-'));
  authority = await createMeshAuthority({ dir: join(dir, 'mesh'), mesh });
  cluster = await startNatsCluster({
    extraConfig: (node) => authority.serverConfig({ resolverDir: join(dir, `jwt-${node.name}`) }),
    log: (node, line) => serverLog.push(`${node} ${line}`),
  });
}, 60_000);

afterAll(async () => {
  for (const agent of agents) await agent.leave().catch(() => undefined);
  for (const nc of connections) await nc.close().catch(() => undefined);
  await cluster?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
}, 30_000);

async function admitAndJoin(name: string, node: number): Promise<Agent> {
  const key = generateKey();
  const { jwt } = await authority.admit(key.did, { name, role: 'agent' });
  const servers = [cluster.urls[node]!, ...cluster.urls.filter((_, i) => i !== node)];
  const agent = await joinMesh({
    mesh,
    name,
    key,
    servers,
    credentials: { jwt },
    connectionOptions: { ...CLUSTER_CLIENT_OPTIONS, noRandomize: true },
  });
  agents.push(agent);
  return agent;
}

describe('secure mode on a cluster', () => {
  it('secure cluster - agents admitted by JWT talk across nodes, and one whose node dies is let in by another', async () => {
    const opKey = generateKey();
    const { jwt: opJwt } = await authority.admit(opKey.did, { name: 'operator', role: 'operator' });
    const op = await connect(secureConnectOptions(opKey, opJwt, [...cluster.urls], CLUSTER_CLIENT_OPTIONS));
    connections.push(op);
    const bucket = meshResources(mesh).presenceBucket;
    const { Kvm } = await loadKv();
    await new Kvm(op).create(bucket, { history: 1, allow_direct: false, replicas: replicasFor(op) });
    await hardenBucket(op, bucket);
    const info = (await op.request(`$JS.API.STREAM.INFO.KV_${bucket}`, '{}')).json<{ config: { num_replicas: number } }>();
    expect(info.config.num_replicas).toBe(3);

    const violations = () => serverLog.filter((l) => /Violation/i.test(l)).length;
    const before = violations();
    const bob = await admitAndJoin('bob', 0);
    bob.handle('add', (numbers) => (numbers as number[]).reduce((a, b) => a + b, 0));
    const alice = await admitAndJoin('alice', 1);
    await waitFor(() => alice.peers().some((p) => p.did === bob.did), 'alice to know bob', 10_000);
    await expect(alice.request(bob.did, 'add', [1, 2, 3])).resolves.toBe(6);

    const t0 = performance.now();
    await cluster.kill(0); // bob's node
    let answer: unknown;
    for (let i = 0; answer === undefined && performance.now() - t0 < 20_000; i++) {
      answer = await alice.request(bob.did, 'add', [i, 1], { timeoutMs: 1_000 }).catch(() => undefined);
    }
    console.log(`secure cluster figures: ${JSON.stringify({ firstAnswerAfterNodeLossMs: Math.round(performance.now() - t0) })}`);
    expect(answer).toBeTypeOf('number');
    expect(violations()).toBe(before);
    await cluster.restart(0);
  }, 60_000);
});
