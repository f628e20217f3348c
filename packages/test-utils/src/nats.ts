/**
 * A real nats-server per test file, and cleanup of everything a test opens on it.
 *
 * `withNats()` registers beforeAll/afterAll (start/stop a private server on a
 * free port, never the shared 4222) and afterEach (every agent joined and raw
 * connection opened through the fixture during the test is closed), so a test
 * only says what it needs.
 */
import { randomBytes } from 'node:crypto';
import { connect, type ConnectionOptions, type NatsConnection } from '@nats-io/transport-node';
import { joinMesh, type Agent, type AgentInit } from '@trustmesh/client';
import { startNatsServer, type NatsServerHandle, type NatsServerInit } from '@trustmesh/embedded-nats';
import { afterAll, afterEach, beforeAll } from 'vitest';

/** The shared server's port: tests must neither depend on nor disturb it. */
export const SHARED_NATS_PORT = 4222;

export interface NatsFixture {
  /** The running server (valid inside tests and hooks, after beforeAll). */
  readonly server: NatsServerHandle;
  readonly url: string;
  /** A raw NATS connection to the fixture's server, closed after the test. */
  connect(options?: Omit<ConnectionOptions, 'servers'>): Promise<NatsConnection>;
  /** `joinMesh` against the fixture's server (unless `connection` is given); the agent leaves after the test. */
  join(init: Omit<AgentInit, 'servers'>): Promise<Agent>;
  /** Registers an agent joined some other way, so it leaves after the test. */
  track(agent: Agent): Agent;
}

/** A mesh name no other test uses, so tests never see each other's frames. */
export const uniqueMesh = (prefix = 'm'): string => `${prefix}${randomBytes(6).toString('hex')}`;

export function withNats(init: NatsServerInit = {}): NatsFixture {
  let server: NatsServerHandle | undefined;
  const agents: Agent[] = [];
  const connections: NatsConnection[] = [];

  const running = (): NatsServerHandle => {
    if (server === undefined) throw new Error('withNats(): the server is only available inside tests and hooks');
    return server;
  };

  beforeAll(async () => {
    server = await startNatsServer(init);
    if (server.port === SHARED_NATS_PORT) {
      await server.stop();
      throw new Error(`withNats(): the private server took the shared port ${SHARED_NATS_PORT}`);
    }
  });

  afterEach(async () => {
    const leaving = agents.splice(0).map((agent) => agent.leave().catch(() => undefined));
    await Promise.all(leaving);
    await Promise.all(connections.splice(0).map((nc) => (nc.isClosed() ? undefined : nc.close().catch(() => undefined))));
  });

  afterAll(async () => {
    await server?.stop();
  });

  const fixture: NatsFixture = {
    get server() {
      return running();
    },
    get url() {
      return running().url;
    },
    async connect(options = {}) {
      const nc = await connect({ ...options, servers: running().url });
      connections.push(nc);
      return nc;
    },
    async join(agentInit) {
      const agent = await joinMesh({ ...agentInit, servers: running().url });
      agents.push(agent);
      return agent;
    },
    track(agent) {
      agents.push(agent);
      return agent;
    },
  };
  return fixture;
}
