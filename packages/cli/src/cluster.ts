/**
 * The local cluster of `trustmesh up --nodes N`: N nats-servers on loopback,
 * routes between all of them, clustered JetStream, each node with its store
 * under `<mesh dir>/nats/<node>` and ports chosen once and kept in the mesh
 * configuration, so a second `up` resumes the same cluster (same names,
 * ports and stores). `startNatsCluster` picks new ports on every start, which
 * a resumed cluster cannot use; the nodes are started here one by one instead.
 */
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { clusterNodeProblem, freeLoopbackPorts, type NatsServerHandle, startNatsServer } from '@trustmesh/embedded-nats';

const HOST = '127.0.0.1';

/** One node as the mesh configuration records it. */
export interface ClusterNodeConfig {
  name: string;
  port: number;
  clusterPort: number;
  httpPort: number;
}

export interface LocalClusterInit {
  /** Cluster name (prefix of each node's `server_name`). */
  name: string;
  /** The nodes to start: from the mesh configuration, or {@link planCluster} for a new one. */
  nodes: readonly ClusterNodeConfig[];
  /** Parent of the per-node stores. */
  storeDir: string;
  /** Appended to each node's config (secure mode: the authority's, with a resolver dir per node). */
  extraConfig?: (node: ClusterNodeConfig) => string;
  log?: (node: string, line: string) => void;
  startTimeoutMs?: number;
}

export interface LocalCluster {
  readonly nodes: readonly (ClusterNodeConfig & { url: string; storeDir: string; pid: number })[];
  readonly urls: readonly string[];
  /** Stops every node (SIGTERM). Idempotent. */
  stop(): Promise<void>;
}

/** Names and free ports for a new cluster of `count` nodes. */
export async function planCluster(name: string, count: number): Promise<ClusterNodeConfig[]> {
  const ports = await freeLoopbackPorts(count * 3);
  return Array.from({ length: count }, (_, i) => ({
    name: `${name}-n${i + 1}`,
    port: ports[i * 3]!,
    clusterPort: ports[i * 3 + 1]!,
    httpPort: ports[i * 3 + 2]!,
  }));
}

/** Starts every node and resolves once routes are up and JetStream has a meta leader. A failed start leaves no node running. */
export async function startLocalCluster(init: LocalClusterInit): Promise<LocalCluster> {
  const timeoutMs = init.startTimeoutMs ?? 30_000;
  const handles: (NatsServerHandle | undefined)[] = init.nodes.map(() => undefined);
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= Promise.all(handles.map((h) => h?.stop())).then(() => undefined);
    return stopping;
  };
  try {
    await Promise.all(
      init.nodes.map(async (node, i) => {
        handles[i] = await startNatsServer({
          host: HOST,
          port: node.port,
          httpPort: node.httpPort,
          serverName: node.name,
          storeDir: join(init.storeDir, node.name),
          jetstream: true,
          startTimeoutMs: timeoutMs,
          cluster: {
            name: init.name,
            port: node.clusterPort,
            routes: init.nodes.filter((other) => other !== node).map((other) => `nats-route://${HOST}:${other.clusterPort}`),
          },
          ...(init.extraConfig !== undefined && { extraConfig: init.extraConfig(node) }),
          ...(init.log !== undefined && { log: (line: string) => init.log?.(node.name, line) }),
        });
      }),
    );
    await waitUntilFormed(init.nodes, timeoutMs);
  } catch (err) {
    await stop();
    throw err;
  }
  const nodes = init.nodes.map((node, i) => ({
    ...node,
    url: `nats://${HOST}:${node.port}`,
    storeDir: join(init.storeDir, node.name),
    pid: handles[i]!.pid,
  }));
  return { nodes, urls: nodes.map((n) => n.url), stop };
}

async function waitUntilFormed(nodes: readonly ClusterNodeConfig[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const problems = await Promise.all(nodes.map((n) => clusterNodeProblem(n.httpPort, nodes.length, true)));
    const problem = problems.find((p) => p !== undefined);
    if (problem === undefined) return;
    if (Date.now() > deadline) throw new Error(`the cluster did not form within ${timeoutMs} ms: ${problem}`);
    await sleep(100);
  }
}
