/**
 * The hello example's secure mode (`--secure`): a mesh authority in a temp
 * directory, a private nats-server running its config, the presence registry
 * provisioned by the operator, and agents admitted by their DID before they join.
 * docs/security.md says what this protects and what it does not.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { joinMesh, type Agent, type AgentInit } from '@trustmesh/client';
import { startNatsServer, type NatsServerHandle } from '@trustmesh/embedded-nats';
import { generateKey, type AgentKey } from '@trustmesh/protocol';
import { createMeshAuthority, hardenBucket, meshResources, secureConnectOptions, type MeshAuthority, type Role } from '@trustmesh/secure';

export interface SecureMesh {
  readonly dir: string;
  readonly server: NatsServerHandle;
  /** The operator's connection: it may read every subject of the mesh. */
  readonly operator: NatsConnection;
  /** Admits a fresh key as an agent and joins it with its credentials. */
  join(init: Omit<AgentInit, 'mesh' | 'servers' | 'key' | 'credentials'>): Promise<Agent>;
  /** Admits a fresh key with `role` and opens a connection authenticated by it (nothing joins). */
  connectAdmitted(name: string, role?: Role): Promise<{ key: AgentKey; nc: NatsConnection }>;
  stop(): Promise<void>;
}

export async function startSecureMesh(mesh: string): Promise<SecureMesh> {
  const dir = await mkdtemp(join(tmpdir(), 'trustmesh-hello-'));
  const connections: NatsConnection[] = [];
  let server: NatsServerHandle | undefined;
  try {
    // The operator, the mesh account and the system account, as nkeys and JWTs; seeds in `dir`, mode 0600.
    const authority: MeshAuthority = await createMeshAuthority({ dir, mesh });
    server = await startNatsServer({ extraConfig: authority.serverConfig() });
    const url = server.url;
    const connectAdmitted = async (name: string, role: Role = 'agent') => {
      const key = generateKey();
      const { jwt } = await authority.admit(key.did, { name, role });
      const nc = await connect(secureConnectOptions(key, jwt, url));
      connections.push(nc);
      return { key, nc };
    };
    // Agents may not create buckets: the operator provisions the presence registry, hardened
    // so that an agent allowed to write only its own record cannot roll up (wipe) the others.
    const operator = (await connectAdmitted('operator', 'operator')).nc;
    const bucket = meshResources(mesh).presenceBucket;
    await new Kvm(operator).create(bucket, { history: 1, allow_direct: false });
    await hardenBucket(operator, bucket);
    const running = server;
    return {
      dir,
      server: running,
      operator,
      async join(init) {
        const key = generateKey();
        const { jwt } = await authority.admit(key.did, { name: init.name, role: 'agent' });
        return joinMesh({ ...init, mesh, key, servers: url, credentials: { jwt } });
      },
      connectAdmitted,
      async stop() {
        await Promise.all(connections.map((nc) => nc.close().catch(() => undefined)));
        await running.stop();
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await Promise.all(connections.map((nc) => nc.close().catch(() => undefined)));
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}
