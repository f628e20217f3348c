/**
 * The embedded mesh that `trustmesh up` and `trustmesh demo` run: a private
 * nats-server (JetStream, store under the mesh directory, a fixed port once
 * chosen), secure mode's authority and JWTs (or open mode, said loudly), the
 * JetStream state an operator provisions, the trust broker and the audit
 * service. Commands that talk to a running mesh use {@link connectAs}.
 */
import { join } from 'node:path';
import { Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { type AuditService, startAudit } from '@trustmesh/audit';
import { type Broker, type BrokerInit, createBroker } from '@trustmesh/broker';
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
import { CliError, EXIT, NATS_INSTALL_HINT } from './errors.ts';
import type { Output } from './output.ts';

/** The presence registry as the client creates it (history 1, ttl 4 expiries of the default 45 s). */
const PRESENCE_BUCKET = { history: 1, ttl: 180_000, allow_direct: false } as const;

export interface StartMeshInit {
  dir: string;
  mesh?: string;
  port?: number;
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
  readonly server: NatsServerHandle | undefined;
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

  let server: NatsServerHandle | undefined;
  let url: string;
  if (external === undefined) {
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
  } else {
    url = external;
  }

  const config: MeshConfig = {
    type: 'trustmesh-cli-mesh',
    version: 1,
    mesh,
    mode,
    nats: server === undefined ? { url, embedded: false } : { url, port: server.port, embedded: true },
    operator: { did: operatorKey.did, keyFile: 'operator.key' },
    broker: { did: brokerKey.did, keyFile: 'broker.key' },
    audit: { did: auditKey.did, keyFile: 'audit.key', log: join('audit', `${mesh}.log`) },
    createdAt: previous?.createdAt ?? new Date().toISOString(),
  };
  const connections: NatsConnection[] = [];
  let broker: Broker | undefined;
  let audit: AuditService | undefined;
  const connectAs = async (key: AgentKey, role: Role, name: string) => {
    const nc = await connectTo(url, mode, authority, key, role, name);
    connections.push(nc);
    return nc;
  };
  const stop = async () => {
    await audit?.stop().catch(() => undefined);
    await broker?.close().catch(() => undefined);
    await Promise.all(connections.map((nc) => nc.close().catch(() => undefined)));
    await server?.stop();
  };
  try {
    if (mode === 'open') out.warn(openModeWarning(url));
    const operatorNc = await connectAs(operatorKey, 'operator', 'trustmesh-operator');
    out.progress('provisioning JetStream state (presence registry)');
    const kvm = new Kvm(operatorNc);
    const presence = meshBuckets(mesh).presence;
    await kvm.create(presence, { ...PRESENCE_BUCKET }).catch(() => kvm.open(presence));
    if (mode === 'secure') await hardenBucket(operatorNc, presence);
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
      ...(init.checkpointIntervalMs !== undefined && { checkpointIntervalMs: init.checkpointIntervalMs }),
    });
    await writeConfig(init.dir, config);
  } catch (err) {
    await stop();
    throw err;
  }
  const running: RunningMesh = { config, dir: p.root, url, server, authority, broker, audit, operatorKey, connectAs, stop };
  return running;
}

/** Connects `key` to the mesh at `url`; in secure mode the authority admits it with `role` first. */
export async function connectTo(
  url: string,
  mode: Mode,
  authority: MeshAuthority | undefined,
  key: AgentKey,
  role: Role,
  name: string,
): Promise<NatsConnection> {
  try {
    if (mode === 'open') return await connect({ servers: url, name, maxReconnectAttempts: 10 });
    if (authority === undefined) throw new CliError(EXIT.failure, 'secure mode needs the mesh authority (the mesh directory)');
    if (authority.revokedAt(key.did) !== undefined) {
      // Admitting on the fly would undo a revocation silently: only `trustmesh admit` does that, explicitly.
      throw new CliError(
        EXIT.failure,
        `${key.did} was revoked; re-admit it explicitly with \`trustmesh admit ${key.did}\` if that is intended`,
      );
    }
    const { jwt } = await authority.admit(key.did, { name, role });
    return await connect(secureConnectOptions(key, jwt, url, { name, maxReconnectAttempts: 10 }));
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
