/**
 * A local nats-server cluster: N processes on loopback, routes between all of
 * them, JetStream clustered (each node its own `server_name` and store), and
 * per-node crash (SIGKILL), stop and restart on the same ports and store, so
 * tests and `trustmesh up --nodes 3` exercise what a real deployment does.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { NatsServerError } from './errors.ts';
import { type NatsServerHandle, type NatsServerInit, startNatsServer } from './server.ts';

/** Options of {@link startNatsCluster}; every field is optional. */
export interface NatsClusterInit {
  /** How many nodes. Default 3 (the smallest cluster that keeps an R3 stream writable after losing one). */
  nodes?: number;
  /** The cluster's name (also the prefix of each node's `server_name`). Default `trustmesh`. */
  name?: string;
  /** Enable JetStream on every node. Default `true`. */
  jetstream?: boolean;
  /** Parent of the per-node store dirs (`<storeDir>/<node name>`). Default: a temp dir, removed by `stop()`. A dir you pass is kept. */
  storeDir?: string;
  /** The nats-server to run. Default: the one `startNatsServer` finds. */
  binary?: string;
  /** Per-node start timeout, and the bound on waiting for routes and a JetStream meta leader. Default 20 000 ms. */
  startTimeoutMs?: number;
  maxPayload?: number;
  /**
   * Appended to every node's config (e.g. accounts for secure mode); its keys win. A
   * function gets each node, for what must differ per node (e.g. a JWT resolver dir).
   */
  extraConfig?: string | ((node: { index: number; name: string }) => string);
  /** Receives every log line of every node, with the node's name. */
  log?: (node: string, line: string) => void;
}

/** One node of a {@link NatsClusterHandle}: its fixed ports survive restarts. */
export interface NatsClusterNode {
  readonly index: number;
  /** `server_name`, e.g. `trustmesh-n1`. */
  readonly name: string;
  /** Where clients connect, e.g. `nats://127.0.0.1:41234`. */
  readonly url: string;
  readonly port: number;
  /** Where the other nodes route to. */
  readonly clusterPort: number;
  /** HTTP monitoring (`/jsz`, `/routez`, `/varz`). */
  readonly httpPort: number;
  readonly storeDir: string;
  /** The running process's id; `undefined` while the node is down. */
  readonly pid: number | undefined;
  readonly running: boolean;
}

export interface NatsClusterHandle {
  readonly name: string;
  readonly nodes: readonly NatsClusterNode[];
  /** Every node's client URL: give clients all of them, so they fail over. */
  readonly urls: readonly string[];
  /** SIGKILL one node (a crash); its store is kept for `restart`. */
  kill(index: number): Promise<void>;
  /** SIGTERM one node (a clean shutdown); its store is kept. */
  stopNode(index: number): Promise<void>;
  /** Starts a stopped or killed node again on its ports and store, and waits until it has rejoined. */
  restart(index: number): Promise<void>;
  /** Resolves once every running node has routes to every other running node and (JetStream) knows a meta leader. */
  waitUntilFormed(timeoutMs?: number): Promise<void>;
  /** JetStream meta leader's `server_name`, as the given (default: first running) node sees it; `undefined` when none. */
  metaLeader(index?: number): Promise<string | undefined>;
  /** Stops every node and removes the temp dirs this handle created. Idempotent. */
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

const HOST = '127.0.0.1';

/**
 * Starts a cluster of `nodes` nats-servers on loopback and resolves once the
 * routes are up and (with JetStream) a meta leader is elected, so replicated
 * streams can be created at once. Throws `NatsServerError` like
 * `startNatsServer`; a failed start leaves no process behind.
 */
export async function startNatsCluster(init: NatsClusterInit = {}): Promise<NatsClusterHandle> {
  const count = init.nodes ?? 3;
  // One node is startNatsServer: nats-server refuses clustered JetStream without routes.
  if (!(Number.isInteger(count) && count >= 2 && count <= 16)) {
    throw new NatsServerError('invalid_init', 'startNatsCluster: nodes must be an integer from 2 to 16 (one server: startNatsServer)');
  }
  const name = init.name ?? 'trustmesh';
  if (!/^[A-Za-z0-9_-]+$/.test(name)) throw new NatsServerError('invalid_init', 'startNatsCluster: name must be letters, digits, _ or -');
  const timeoutMs = init.startTimeoutMs ?? 20_000;
  const ownBase = init.storeDir === undefined;
  const base = init.storeDir ?? (await mkdtemp(join(tmpdir(), 'trustmesh-cluster-')));
  const ports = await freePorts(count * 3);
  const specs = Array.from({ length: count }, (_, i) => ({
    index: i,
    name: `${name}-n${i + 1}`,
    port: ports[i * 3]!,
    clusterPort: ports[i * 3 + 1]!,
    httpPort: ports[i * 3 + 2]!,
    storeDir: join(base, `${name}-n${i + 1}`),
  }));
  const handles: (NatsServerHandle | undefined)[] = specs.map(() => undefined);

  const serverInit = (i: number): NatsServerInit => {
    const spec = specs[i]!;
    return {
      host: HOST,
      port: spec.port,
      httpPort: spec.httpPort,
      serverName: spec.name,
      storeDir: spec.storeDir,
      jetstream: init.jetstream ?? true,
      startTimeoutMs: timeoutMs,
      cluster: {
        name,
        port: spec.clusterPort,
        routes: specs.filter((s) => s.index !== i).map((s) => `nats-route://${HOST}:${s.clusterPort}`),
      },
      ...(init.binary !== undefined && { binary: init.binary }),
      ...(init.maxPayload !== undefined && { maxPayload: init.maxPayload }),
      ...(init.extraConfig !== undefined && {
        extraConfig: typeof init.extraConfig === 'function' ? init.extraConfig({ index: i, name: spec.name }) : init.extraConfig,
      }),
      ...(init.log !== undefined && { log: (line: string) => init.log?.(spec.name, line) }),
    };
  };

  const nodeAt = (i: number): number => {
    if (!(Number.isInteger(i) && i >= 0 && i < count)) throw new NatsServerError('invalid_init', `no node ${i} in a cluster of ${count}`);
    return i;
  };

  const waitUntilFormed = async (waitMs = timeoutMs): Promise<void> => {
    const deadline = Date.now() + waitMs;
    let last = 'no node answered';
    for (;;) {
      const up = specs.filter((s) => handles[s.index] !== undefined);
      const problems = await Promise.all(up.map((s) => nodeProblem(s.httpPort, up.length, init.jetstream ?? true)));
      const problem = problems.find((p) => p !== undefined);
      if (problem === undefined) return;
      last = problem;
      if (Date.now() > deadline)
        throw new NatsServerError('nats_server_timeout', `cluster ${name} did not form within ${waitMs} ms: ${last}`);
      await sleep(100);
    }
  };

  let stopping: Promise<void> | undefined;
  const stopAll = async (): Promise<void> => {
    await Promise.all(handles.map((h) => h?.stop()));
    handles.fill(undefined);
    if (ownBase) await rm(base, { recursive: true, force: true });
  };

  try {
    await Promise.all(specs.map(async (s) => (handles[s.index] = await startNatsServer(serverInit(s.index)))));
    await waitUntilFormed();
  } catch (error) {
    await stopAll();
    throw error;
  }

  const nodes: NatsClusterNode[] = specs.map((spec) => ({
    ...spec,
    url: `nats://${HOST}:${spec.port}`,
    get pid() {
      return handles[spec.index]?.pid;
    },
    get running() {
      return handles[spec.index] !== undefined;
    },
  }));

  const down = async (i: number, how: 'kill' | 'stop'): Promise<void> => {
    const handle = handles[nodeAt(i)];
    handles[i] = undefined;
    await (how === 'kill' ? handle?.kill() : handle?.stop());
  };

  const handle: NatsClusterHandle = {
    name,
    nodes,
    urls: nodes.map((n) => n.url),
    kill: (i) => down(i, 'kill'),
    stopNode: (i) => down(i, 'stop'),
    async restart(i) {
      if (handles[nodeAt(i)] !== undefined) await down(i, 'stop');
      handles[i] = await startNatsServer(serverInit(i));
      await waitUntilFormed();
    },
    waitUntilFormed,
    async metaLeader(index) {
      const i = index ?? handles.findIndex((h) => h !== undefined);
      if (i < 0 || handles[i] === undefined) return undefined;
      const jsz = (await monitor(specs[i]!.httpPort, 'jsz')) as Jsz | undefined;
      return jsz?.meta_cluster?.leader || undefined;
    },
    stop() {
      stopping ??= stopAll();
      return stopping;
    },
    [Symbol.asyncDispose]() {
      return handle.stop();
    },
  };
  return Object.freeze(handle);
}

interface Jsz {
  meta_cluster?: { leader?: string; cluster_size?: number };
}

/** Why node at `httpPort` is not ready yet (routes to the others, a JetStream meta leader), or `undefined` when it is. */
export async function nodeProblem(httpPort: number, running: number, jetstream: boolean): Promise<string | undefined> {
  const routez = (await monitor(httpPort, 'routez')) as { num_routes?: number; routes?: { remote_id?: string }[] } | undefined;
  if (routez === undefined) return `node on http port ${httpPort} does not answer`;
  // A route counts once per remote (2.9 opens one route per pair).
  const remotes = new Set((routez.routes ?? []).map((r) => r.remote_id)).size;
  if (remotes < running - 1) return `node on http port ${httpPort} has ${remotes} of ${running - 1} routes`;
  if (!jetstream) return undefined;
  const jsz = (await monitor(httpPort, 'jsz')) as Jsz | undefined;
  if (!jsz?.meta_cluster?.leader) return `node on http port ${httpPort} knows no JetStream meta leader yet`;
  return undefined;
}

async function monitor(httpPort: number, path: string): Promise<unknown> {
  try {
    const response = await fetch(`http://${HOST}:${httpPort}/${path}`, { signal: AbortSignal.timeout(2_000) });
    return response.ok ? await response.json() : undefined;
  } catch {
    return undefined;
  }
}

/** Distinct free TCP ports on loopback (bound, read, released; the servers bind them right after). */
export async function freePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) {
    ports.add(
      await new Promise<number>((resolve, reject) => {
        const server = createServer();
        server.once('error', reject);
        server.listen(0, HOST, () => {
          const address = server.address();
          const port = typeof address === 'object' && address !== null ? address.port : 0;
          server.close(() => resolve(port));
        });
      }),
    );
  }
  return [...ports];
}
