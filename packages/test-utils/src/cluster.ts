/**
 * A real 3-node nats-server cluster per test file (routes on loopback,
 * JetStream clustered), started once in beforeAll and stopped in afterAll,
 * with cleanup of everything a test opens on it (afterEach), like `withNats()`.
 * Clients get every node's URL, so they fail over when one node dies.
 */
import { connect, type ConnectionOptions, type NatsConnection } from '@nats-io/transport-node';
import { joinMesh, type Agent, type AgentInit } from '@trustmesh/client';
import { startNatsCluster, type NatsClusterHandle, type NatsClusterInit } from '@trustmesh/embedded-nats';
import { afterAll, afterEach, beforeAll } from 'vitest';

export interface NatsClusterFixture {
  /** The running cluster (valid inside tests and hooks, after beforeAll). */
  readonly cluster: NatsClusterHandle;
  /** Every node's client URL. */
  readonly urls: string[];
  /**
   * A raw connection, closed after the test. Default: every URL, reconnecting
   * forever; `servers` picks nodes (e.g. `[fixture.urls[1]]` to start on node 1).
   */
  connect(options?: ConnectionOptions): Promise<NatsConnection>;
  /** `joinMesh` with every URL (unless `servers` or `connection` is given); the agent leaves after the test. */
  join(init: AgentInit): Promise<Agent>;
  /** Registers an agent joined some other way, so it leaves after the test. */
  track(agent: Agent): Agent;
  /** SIGKILL node `index`; its store is kept. */
  kill(index: number): Promise<void>;
  /** Starts node `index` again on its ports and store and waits until it rejoined. */
  restart(index: number): Promise<void>;
}

/** Reconnect forever, quickly: a cluster node coming back is the normal case here. */
export const CLUSTER_CLIENT_OPTIONS = {
  maxReconnectAttempts: -1,
  reconnectTimeWait: 250,
  reconnectJitter: 100,
} as const satisfies ConnectionOptions;

export function withNatsCluster(init: NatsClusterInit = {}): NatsClusterFixture {
  let cluster: NatsClusterHandle | undefined;
  const agents: Agent[] = [];
  const connections: NatsConnection[] = [];

  const running = (): NatsClusterHandle => {
    if (cluster === undefined) throw new Error('withNatsCluster(): the cluster is only available inside tests and hooks');
    return cluster;
  };

  beforeAll(async () => {
    cluster = await startNatsCluster(init);
  }, 60_000);

  afterEach(async () => {
    await Promise.all(agents.splice(0).map((agent) => agent.leave().catch(() => undefined)));
    await Promise.all(connections.splice(0).map((nc) => (nc.isClosed() ? undefined : nc.close().catch(() => undefined))));
  });

  afterAll(async () => {
    await Promise.all(agents.splice(0).map((agent) => agent.leave().catch(() => undefined)));
    await Promise.all(connections.splice(0).map((nc) => (nc.isClosed() ? undefined : nc.close().catch(() => undefined))));
    await cluster?.stop();
  }, 60_000);

  return {
    get cluster() {
      return running();
    },
    get urls() {
      return [...running().urls];
    },
    async connect(options = {}) {
      const nc = await connect({ ...CLUSTER_CLIENT_OPTIONS, servers: [...running().urls], ...options });
      connections.push(nc);
      return nc;
    },
    async join(agentInit) {
      const withServers =
        agentInit.servers !== undefined || agentInit.connection !== undefined
          ? agentInit
          : {
              ...agentInit,
              servers: [...running().urls],
              connectionOptions: { ...CLUSTER_CLIENT_OPTIONS, ...agentInit.connectionOptions },
            };
      const agent = await joinMesh(withServers);
      agents.push(agent);
      return agent;
    },
    track(agent) {
      agents.push(agent);
      return agent;
    },
    kill: (index) => running().kill(index),
    restart: (index) => running().restart(index),
  };
}
