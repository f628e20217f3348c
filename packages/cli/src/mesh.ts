/**
 * The embedded mesh that `trustmesh up` and `trustmesh demo` run: a private
 * nats-server (JetStream, store under the mesh directory, a fixed port once
 * chosen), secure mode's authority and JWTs (or open mode, said loudly), the
 * JetStream state an operator provisions, the trust broker and the audit
 * service. Commands that talk to a running mesh use {@link connectAs}.
 */
import { join } from 'node:path';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { type AuditService, ensureCaptureStream, startAudit } from '@trustmesh/audit';
import { type Broker, type BrokerInit, createBroker } from '@trustmesh/broker';
import { replicasFor } from '@trustmesh/client';
import { findNatsServer, NatsServerError, type NatsServerHandle, startNatsServer } from '@trustmesh/embedded-nats';
import { type AgentKey, meshBuckets } from '@trustmesh/protocol';
import {
  hardenBucket,
  loadMeshAuthority,
  type MeshAuthority,
  openMeshAuthority,
  openModeWarning,
  type Role,
  secureConnectOptions,
} from '@trustmesh/secure';
import {
  checkMeshName,
  DEFAULT_MESH,
  ensureDir,
  ensureKey,
  loadKey,
  type MeshConfig,
  type Mode,
  paths,
  readConfig,
  writeConfig,
} from './config.ts';
import { type LocalCluster, planCluster, startLocalCluster } from './cluster.ts';
import { CliError, EXIT, NATS_INSTALL_HINT } from './errors.ts';
import type { Output } from './output.ts';

/** Runs `work` up to `attempts` times while it fails with a NATS timeout; any other error is thrown at once. */
async function retryTimeouts(work: () => Promise<void>, attempts: number): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await work();
      return;
    } catch (err) {
      const timedOut = err instanceof Error && (err.name === 'TimeoutError' || err.message === 'timeout');
      if (!timedOut || attempt >= attempts) throw err;
    }
  }
}

/** The presence registry as the client creates it (history 1, ttl 4 expiries of the default 45 s). */
const PRESENCE_BUCKET = { history: 1, ttl: 180_000, allow_direct: false } as const;

export interface StartMeshInit {
  dir: string;
  mesh?: string;
  port?: number;
  /** Nodes of the local cluster to start (>= 3); 1 (default) is one nats-server. A resumed mesh keeps its count. */
  nodes?: number;
  open?: boolean;
  /** Use this NATS instead of starting one (open mode: the CLI cannot configure its auth). */
  nats?: string;
  out: Output;
  /** Audit checkpoint cadence (the demo wants them often). */
  checkpointIntervalMs?: number;
  /** nats-server log lines. */
  serverLog?: (line: string) => void;
  /** Broker settings beyond the defaults (the demo shortens the rules declaration margin). */
  broker?: Pick<BrokerInit, 'declarationMarginMs' | 'windowMs'>;
}

export interface RunningMesh {
  readonly config: MeshConfig;
  readonly dir: string;
  readonly url: string;
  /** Every node's URL (one for a single server). */
  readonly urls: readonly string[];
  readonly server: NatsServerHandle | undefined;
  /** The local cluster of `up --nodes N`. */
  readonly cluster: LocalCluster | undefined;
  readonly authority: MeshAuthority | undefined;
  readonly broker: Broker;
  readonly audit: AuditService;
  readonly operatorKey: AgentKey;
  /** A connection for `key` (admitted with `role` in secure mode). */
  connectAs(key: AgentKey, role: Role, name: string): Promise<NatsConnection>;
  stop(): Promise<void>;
}

/** Starts (or resumes) the mesh of `init.dir`. */
export async function startMesh(init: StartMeshInit): Promise<RunningMesh> {
  const { out } = init;
  if (init.nats === undefined && findNatsServer() === undefined) {
    throw new CliError(EXIT.natsServerMissing, `nats-server not found: ${NATS_INSTALL_HINT}`);
  }
  if (init.nodes !== undefined && !(Number.isInteger(init.nodes) && (init.nodes === 1 || (init.nodes >= 3 && init.nodes <= 16)))) {
    throw new CliError(
      EXIT.usage,
      `--nodes must be 1 or from 3 to 16 (a cluster that keeps R3 state writable after losing a node), not ${init.nodes}`,
    );
  }
  const p = paths(init.dir);
  await ensureDir(p.root);
  const previous = await readConfig(init.dir);
  const mesh = checkMeshName(init.mesh ?? previous?.mesh ?? DEFAULT_MESH);
  if (previous !== undefined && previous.mesh !== mesh) {
    throw new CliError(EXIT.usage, `${p.root} holds mesh ${previous.mesh}, not ${mesh}: drop --mesh or use another --dir`);
  }
  const external = init.nats ?? (previous?.nats.embedded === false ? previous.nats.url : undefined);
  let mode: Mode = previous?.mode ?? (init.open === true || external !== undefined ? 'open' : 'secure');
  if (previous === undefined && external !== undefined) mode = 'open';
  if (previous !== undefined && init.open === true && previous.mode === 'secure') {
    throw new CliError(EXIT.usage, `${p.root} holds a secure mesh; it cannot be resumed in open mode (use another --dir for an open mesh)`);
  }
  const operatorKey = await ensureKey(init.dir, 'operator.key');
  const brokerKey = await ensureKey(init.dir, 'broker.key');
  const auditKey = await ensureKey(init.dir, 'audit.key');
  await ensureDir(p.auditDir);

  let authority: MeshAuthority | undefined;
  if (mode === 'secure') {
    out.progress(`secure mode: mesh authority in ${p.authority}`);
    authority = await openMeshAuthority({ dir: p.authority, mesh });
  }

  const nodes = init.nodes ?? previous?.nats.cluster?.nodes.length ?? 1;
  if (previous !== undefined && (previous.nats.cluster?.nodes.length ?? 1) !== nodes) {
    throw new CliError(
      EXIT.usage,
      `${p.root} holds a mesh on ${previous.nats.cluster?.nodes.length ?? 1} node(s), not ${nodes}: drop --nodes or use another --dir`,
    );
  }
  if (nodes > 1 && external !== undefined) throw new CliError(EXIT.usage, '--nodes starts a local cluster; it cannot be used with --nats');
  if (nodes > 1 && init.port !== undefined) throw new CliError(EXIT.usage, '--port is for one server; a cluster chooses its ports once');

  let server: NatsServerHandle | undefined;
  let cluster: LocalCluster | undefined;
  let url: string;
  let urls: string[];
  if (external === undefined && nodes > 1) {
    const name = `tm-${mesh}`.replace(/[^A-Za-z0-9_-]/g, '_');
    const planned = previous?.nats.cluster?.nodes ?? (await planCluster(name, nodes));
    out.progress(
      `starting a ${nodes}-node nats-server cluster (JetStream stores under ${p.natsStore}, client ports ${planned.map((n) => n.port).join(', ')})`,
    );
    await ensureDir(p.natsStore);
    try {
      cluster = await startLocalCluster({
        name: previous?.nats.cluster?.name ?? name,
        nodes: planned,
        storeDir: p.natsStore,
        ...(authority !== undefined && {
          extraConfig: (node) => authority.serverConfig({ resolverDir: join(p.natsStore, `jwt-${node.name}`) }),
        }),
        ...(init.serverLog !== undefined && { log: (node, line) => init.serverLog?.(`${node} ${line}`) }),
      });
    } catch (err) {
      if (err instanceof NatsServerError && err.code === 'nats_server_missing') {
        throw new CliError(EXIT.natsServerMissing, `nats-server not found: ${NATS_INSTALL_HINT}`, { cause: err });
      }
      throw new CliError(
        EXIT.failure,
        `the cluster could not start on ports ${planned.map((n) => `${n.port}/${n.clusterPort}/${n.httpPort}`).join(', ')}: is this mesh already up, or a port taken?\n${(err as Error).message}`,
        { cause: err },
      );
    }
    urls = [...cluster.urls];
    url = urls[0]!;
  } else if (external === undefined) {
    const port = init.port ?? previous?.nats.port;
    out.progress(`starting nats-server (JetStream store ${p.natsStore}${port === undefined ? '' : `, port ${port}`})`);
    await ensureDir(p.natsStore);
    try {
      server = await startNatsServer({
        storeDir: p.natsStore,
        ...(port !== undefined && { port }),
        ...(authority !== undefined && { extraConfig: authority.serverConfig() }),
        ...(init.serverLog !== undefined && { log: init.serverLog }),
      });
    } catch (err) {
      if (err instanceof NatsServerError && err.code === 'nats_server_missing') {
        throw new CliError(EXIT.natsServerMissing, `nats-server not found: ${NATS_INSTALL_HINT}`, { cause: err });
      }
      if (err instanceof NatsServerError && err.code === 'nats_server_start_failed' && port !== undefined) {
        throw new CliError(
          EXIT.failure,
          `nats-server could not start on port ${port}: is this mesh already up (another \`trustmesh up --dir ${init.dir}\`), or the port taken? Pass --port to choose another.\n${err.message}`,
          { cause: err },
        );
      }
      throw err;
    }
    url = server.url;
    urls = [url];
  } else {
    url = external;
    urls = [url];
  }

  const config: MeshConfig = {
    type: 'trustmesh-cli-mesh',
    version: 1,
    mesh,
    mode,
    nats:
      cluster !== undefined
        ? {
            url,
            embedded: true,
            urls,
            cluster: {
              name: previous?.nats.cluster?.name ?? cluster.nodes[0]!.name.replace(/-n1$/, ''),
              nodes: cluster.nodes.map(({ name, port, clusterPort, httpPort }) => ({ name, port, clusterPort, httpPort })),
            },
          }
        : server === undefined
          ? { url, embedded: false }
          : { url, port: server.port, embedded: true },
    operator: { did: operatorKey.did, keyFile: 'operator.key' },
    broker: { did: brokerKey.did, keyFile: 'broker.key' },
    audit: { did: auditKey.did, keyFile: 'audit.key', log: join('audit', `${mesh}.log`) },
    createdAt: previous?.createdAt ?? new Date().toISOString(),
  };
  const connections: NatsConnection[] = [];
  let broker: Broker | undefined;
  let audit: AuditService | undefined;
  const connectAs = async (key: AgentKey, role: Role, name: string) => {
    // Services on a cluster are given every node and reconnect forever: a node loss is a failover, not an outage.
    const nc = await connectTo(urls, mode, authority, key, role, name, cluster === undefined ? 10 : -1);
    connections.push(nc);
    return nc;
  };
  const stop = async () => {
    await audit?.stop().catch(() => undefined);
    await broker?.close().catch(() => undefined);
    await Promise.all(connections.map((nc) => nc.close().catch(() => undefined)));
    await server?.stop();
    await cluster?.stop();
  };
  try {
    if (mode === 'open') out.warn(openModeWarning(url));
    const operatorNc = await connectAs(operatorKey, 'operator', 'trustmesh-operator');
    out.progress('provisioning JetStream state (presence registry)');
    // Creating an R3 stream waits for a placement by the meta leader: on a loaded machine more than the default 5 s.
    const apiTimeout = { timeout: cluster === undefined ? 5_000 : 30_000 };
    const kvm = new Kvm(jetstream(operatorNc, apiTimeout));
    const presence = meshBuckets(mesh).presence;
    // R3 on a cluster of 3 or more, R1 on one server (replicasFor reads the server's INFO).
    const replicas = replicasFor(operatorNc);
    // A freshly formed cluster may not answer the JetStream API for a few seconds while leaders are elected.
    await retryTimeouts(
      async () => {
        await kvm.create(presence, { ...PRESENCE_BUCKET, replicas }).catch(() => kvm.open(presence));
        if (mode === 'secure') await hardenBucket(operatorNc, presence);
        // The audit creates its capture stream if missing; on a cluster it is created here first, with the longer timeout.
        if (cluster !== undefined) await ensureCaptureStream(await jetstreamManager(operatorNc, apiTimeout), mesh, { replicas });
      },
      cluster === undefined ? 1 : 6,
    );
    out.progress('starting the trust broker');
    broker = await createBroker({
      key: brokerKey,
      mesh,
      connection: await connectAs(brokerKey, 'broker', 'trust-broker'),
      secure: mode === 'secure',
      name: 'trust-broker',
      ...init.broker,
    });
    out.progress('starting the audit service');
    audit = await startAudit({
      mesh,
      key: auditKey,
      connection: await connectAs(auditKey, 'audit', 'audit'),
      path: join(p.root, config.audit.log),
      workers: 1,
      capture: { replicas },
      ...(init.checkpointIntervalMs !== undefined && { checkpointIntervalMs: init.checkpointIntervalMs }),
    });
    await writeConfig(init.dir, config);
  } catch (err) {
    await stop();
    throw err;
  }
  const running: RunningMesh = { config, dir: p.root, url, urls, server, cluster, authority, broker, audit, operatorKey, connectAs, stop };
  return running;
}

/** Connects `key` to the mesh at `url`; in secure mode the authority admits it with `role` first. */
export async function connectTo(
  servers: string | readonly string[],
  mode: Mode,
  authority: MeshAuthority | undefined,
  key: AgentKey,
  role: Role,
  name: string,
  maxReconnectAttempts = 10,
): Promise<NatsConnection> {
  const all = typeof servers === 'string' ? [servers] : [...servers];
  const url = all.join(', ');
  try {
    if (mode === 'open') return await connect({ servers: all, name, maxReconnectAttempts });
    if (authority === undefined) throw new CliError(EXIT.failure, 'secure mode needs the mesh authority (the mesh directory)');
    if (authority.revokedAt(key.did) !== undefined) {
      // Admitting on the fly would undo a revocation silently: only `trustmesh admit` does that, explicitly.
      throw new CliError(
        EXIT.failure,
        `${key.did} was revoked; re-admit it explicitly with \`trustmesh admit ${key.did}\` if that is intended`,
      );
    }
    const { jwt } = await authority.admit(key.did, { name, role });
    return await connect(secureConnectOptions(key, jwt, all, { name, maxReconnectAttempts }));
  } catch (err) {
    if (err instanceof CliError) throw err;
    const message = (err as Error).message;
    if (/ECONNREFUSED|CONNECTION_REFUSED|connection refused/i.test(`${message} ${(err as { code?: string }).code ?? ''}`)) {
      throw new CliError(EXIT.unreachable, `cannot reach NATS at ${url}: is \`trustmesh up\` running for this mesh directory?`, {
        cause: err,
      });
    }
    throw new CliError(EXIT.unreachable, `cannot connect to ${url} as ${name} (${role}): ${message}`, { cause: err });
  }
}

/** What a command needs to talk to a running mesh: from the mesh directory, or from --nats/--mesh. */
export interface MeshTarget {
  mesh: string;
  mode: Mode;
  url: string;
  /** Every node's URL: `url` alone, or a local cluster's nodes. */
  urls: string[];
  config: MeshConfig | undefined;
  dir: string;
  authority: MeshAuthority | undefined;
}

export interface TargetOptions {
  dir: string;
  nats?: string;
  mesh?: string;
}

export async function resolveTarget(options: TargetOptions): Promise<MeshTarget> {
  const config = await readConfig(options.dir);
  if (options.nats !== undefined) {
    const mesh = checkMeshName(options.mesh ?? config?.mesh ?? DEFAULT_MESH);
    const mode: Mode = config !== undefined && config.mode === 'secure' && config.nats.url === options.nats ? 'secure' : 'open';
    return {
      mesh,
      mode,
      url: options.nats,
      urls: [options.nats],
      config,
      dir: options.dir,
      authority: mode === 'secure' ? await authorityOf(options.dir) : undefined,
    };
  }
  if (config === undefined) {
    throw new CliError(
      EXIT.unreachable,
      `no mesh in ${paths(options.dir).root}: start one with \`trustmesh up --dir ${options.dir}\`, or pass --dir of a running mesh, or --nats URL --mesh NAME`,
    );
  }
  if (options.mesh !== undefined && options.mesh !== config.mesh)
    throw new CliError(EXIT.usage, `${options.dir} holds mesh ${config.mesh}, not ${options.mesh}`);
  return {
    mesh: config.mesh,
    mode: config.mode,
    url: config.nats.url,
    urls: config.nats.urls ?? [config.nats.url],
    config,
    dir: options.dir,
    authority: config.mode === 'secure' ? await authorityOf(options.dir) : undefined,
  };
}

async function authorityOf(dir: string): Promise<MeshAuthority> {
  try {
    return await loadMeshAuthority(paths(dir).authority);
  } catch (cause) {
    throw new CliError(EXIT.failure, `cannot load the mesh authority in ${paths(dir).authority}: ${(cause as Error).message}`, { cause });
  }
}

/** The operator key: `--key F`, or the mesh directory's. */
export async function operatorKeyOf(target: MeshTarget, keyFile: string | undefined): Promise<AgentKey> {
  if (keyFile !== undefined) return loadKey(keyFile);
  if (target.config === undefined) throw new CliError(EXIT.usage, 'no operator key: pass --key FILE (or --dir of the mesh directory)');
  return loadKey(join(paths(target.dir).root, target.config.operator.keyFile));
}
