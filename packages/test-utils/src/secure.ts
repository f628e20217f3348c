/**
 * A real nats-server in secure mode per test file: a fresh mesh authority
 * (operator, account, system account) in a temp mesh directory, the server
 * started with its config, and helpers to admit keys and connect as them.
 *
 * `withSecureNats()` registers beforeAll/afterAll (authority + server,
 * removed afterwards) and afterEach (every connection opened through the
 * fixture is closed), like `withNats()`.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { connect, type ConnectionOptions, type NatsConnection } from '@nats-io/transport-node';
import { startNatsServer, type NatsServerHandle } from '@trustmesh/embedded-nats';
import { generateKey, type AgentKey } from '@trustmesh/protocol';
import {
  createMeshAuthority,
  hardenBucket,
  meshResources,
  secureConnectOptions,
  type Admission,
  type AdmitOptions,
  type MeshAuthority,
  type Role,
} from '@trustmesh/secure';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { SHARED_NATS_PORT, uniqueMesh } from './nats.ts';

export interface SecureNatsInit {
  /** Mesh name; default a unique one. */
  mesh?: string;
  /** More nats-server config, appended after the authority's (e.g. `trace: true`). */
  extraConfig?: string;
  /** Receives every server log line (they are also kept in `serverLog`). */
  log?: (line: string) => void;
}

/** An admitted identity: its key, its admission, and (when connected) its connection. */
export interface Admitted {
  key: AgentKey;
  admission: Admission;
  nc: NatsConnection;
}

export interface SecureNatsFixture {
  readonly mesh: string;
  readonly authority: MeshAuthority;
  readonly server: NatsServerHandle;
  readonly url: string;
  /** Every line the server logged (permission and authorization violations show up here). */
  readonly serverLog: string[];
  /** Admits `key` (default role `agent`, name `role-<8 chars of the id>`). */
  admit(key: AgentKey, options?: Partial<AdmitOptions>): Promise<Admission>;
  /** Connects with `key` and `jwt` through `secureConnectOptions`; closed after the test. */
  connectAs(key: AgentKey, jwt: string, extra?: Omit<ConnectionOptions, 'servers' | 'authenticator'>): Promise<NatsConnection>;
  /** A fresh key, admitted with `role`, connected. */
  admitted(role?: Role, options?: Partial<AdmitOptions>): Promise<Admitted>;
  /**
   * Creates a KV bucket as an operator, as `trustmesh up` will: with
   * `allow_direct: false` unless `options` say otherwise (agents may not use
   * direct get), and the mesh's presence bucket hardened (`hardenBucket`: no
   * rollup headers, since agents write it). docs/security.md.
   */
  createBucket(bucket: string, options?: Record<string, unknown>): Promise<KvLike>;
  /** A connection of the system account user (account updates). */
  connectSystem(): Promise<NatsConnection>;
  /**
   * Stops the server and starts it again on the same port, JetStream store and
   * resolver directory, with the authority's current config; clients with
   * reconnect enabled come back.
   */
  restart(): Promise<void>;
  /** Registers a connection opened some other way, so it is closed after the test. */
  track(nc: NatsConnection): NatsConnection;
}

export function withSecureNats(init: SecureNatsInit = {}): SecureNatsFixture {
  const mesh = init.mesh ?? uniqueMesh('s');
  const serverLog: string[] = [];
  let dir: string | undefined;
  let storeDir: string | undefined;
  let authority: MeshAuthority | undefined;
  let server: NatsServerHandle | undefined;
  const connections: NatsConnection[] = [];

  const ready = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error('withSecureNats(): only available inside tests and hooks');
    return value;
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'trustmesh-mesh-'));
    authority = await createMeshAuthority({ dir, mesh });
    storeDir = await mkdtemp(join(tmpdir(), 'trustmesh-mesh-store-'));
    server = await start();
    if (server.port === SHARED_NATS_PORT) throw new Error(`withSecureNats(): the private server took the shared port ${SHARED_NATS_PORT}`);
  });

  afterEach(async () => {
    await Promise.all(connections.splice(0).map((nc) => (nc.isClosed() ? undefined : nc.close().catch(() => undefined))));
  });

  afterAll(async () => {
    await server?.stop();
    for (const path of [dir, storeDir]) if (path !== undefined) await rm(path, { recursive: true, force: true });
  });

  const start = (port?: number) =>
    startNatsServer({
      extraConfig: `${ready(authority).serverConfig()}\n${init.extraConfig ?? ''}`,
      storeDir: ready(storeDir),
      ...(port !== undefined && { port }),
      log: (line) => {
        serverLog.push(line);
        init.log?.(line);
      },
    });

  const fixture: SecureNatsFixture = {
    mesh,
    serverLog,
    get authority() {
      return ready(authority);
    },
    get server() {
      return ready(server);
    },
    get url() {
      return ready(server).url;
    },
    admit(key, options = {}) {
      const role = options.role ?? 'agent';
      return ready(authority).admit(key.did, { name: `${role}-${key.agentId.slice(-8)}`, ...options, role });
    },
    async connectAs(key, jwt, extra = {}) {
      const nc = await connect(secureConnectOptions(key, jwt, ready(server).url, extra));
      connections.push(nc);
      return nc;
    },
    async admitted(role = 'agent', options = {}) {
      const key = generateKey();
      const admission = await fixture.admit(key, { ...options, role });
      return { key, admission, nc: await fixture.connectAs(key, admission.jwt) };
    },
    async createBucket(bucket, options = {}) {
      const operator = await fixture.admitted('operator');
      const { Kvm } = await loadKv();
      const kv = await new Kvm(operator.nc).create(bucket, { allow_direct: false, ...options });
      if (bucket === meshResources(mesh).presenceBucket) await hardenBucket(operator.nc, bucket);
      return kv;
    },
    async connectSystem() {
      const nc = await connect(ready(authority).systemConnectOptions(ready(server).url));
      connections.push(nc);
      return nc;
    },
    async restart() {
      const port = ready(server).port;
      await ready(server).stop();
      server = await start(port);
    },
    track(nc) {
      connections.push(nc);
      return nc;
    },
  };
  return fixture;
}

/** The parts of nats.js v3 `@nats-io/kv` the secure-mode tests use. */
export interface KvEntryLike {
  key: string;
  operation: string;
  string(): string;
}
export interface KvLike {
  get(key: string): Promise<KvEntryLike | null>;
  put(key: string, value: string): Promise<number>;
  keys(): Promise<AsyncIterable<string>>;
  watch(options?: { key?: string }): Promise<AsyncIterable<KvEntryLike> & { stop(): void }>;
}
export interface KvModuleLike {
  Kvm: new (
    nc: NatsConnection,
  ) => {
    create(name: string, options?: Record<string, unknown>): Promise<KvLike>;
    open(name: string, options?: Record<string, unknown>): Promise<KvLike>;
  };
}

/**
 * nats.js v3 `@nats-io/kv`, loaded from the broker package that depends on it
 * (@trustmesh/secure and test-utils do not yet list it), so the secure-mode
 * tests exercise the real KV client.
 */
export async function loadKv(): Promise<KvModuleLike> {
  const require = createRequire(new URL('../../broker/package.json', import.meta.url));
  return (await import(pathToFileURL(require.resolve('@nats-io/kv')).href)) as KvModuleLike;
}
