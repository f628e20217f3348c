import { inspect } from 'node:util';
import { type ConnectionOptions, connect, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import {
  type AgentKey,
  agentIdFromDid,
  assertMeshName,
  DEFAULT_MAX_FRAME_BYTES,
  DEFAULT_WINDOW_MS,
  didFromAgentId,
  FrameVerifier,
  generateKey,
  InvalidArgumentError,
  MESSAGE_TYPES,
  type MeshSubjects,
  meshSubjects,
  RESERVED_TYPE_PREFIX,
} from '@trustmesh/protocol';
import { DEFAULT_DISPATCH_LIMITS, type DispatchLimits, Dispatcher, type Handler } from './dispatch.ts';
import { AgentClosedError } from './errors.ts';
import type { AgentExtension, ExtensionPort, PeerRef } from './extensions.ts';
import { Inbound } from './inbound.ts';
import { DEFAULT_INTAKE_LIMITS, Intake, type IntakeLimits } from './intake.ts';
import { type AgentEvents, type AgentStats, Ledger, type RejectionEvent } from './ledger.ts';
import { Outbound } from './outbound.ts';
import { type Lineage, type PeerInfo, type PresenceStatus, parsePresence, presenceData } from './presence.ts';
import { DEFAULT_PRESENCE, type PresenceHub, PresenceHub as Hub, type PresenceMember } from './presence-hub.ts';
import { acquirePool, MAX_VERIFY_WORKERS, releasePool, type VerifyPool } from './pool/pool.ts';
import { PooledVerifier } from './pool/pooled.ts';
import { Requests } from './requests.ts';

export const DEFAULT_REQUEST_TIMEOUT_MS = 5_000;
/** setTimeout's ceiling (2^31 - 1 ms, about 24.8 days); larger values would fire at once. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

export interface AgentInit {
  /** Mesh name: subjects live under `tm.<mesh>.` */
  mesh: string;
  /** Human-readable name announced in presence. */
  name: string;
  /** Identity; a fresh one is generated when omitted. */
  key?: AgentKey;
  version?: string;
  capabilities?: string[];
  lineage?: Lineage;
  /** A connection to share between agents (one socket, many agents). The agent never closes it. */
  connection?: NatsConnection;
  /** NATS server URL(s) when no connection is given; default nats://127.0.0.1:4222. */
  servers?: string | string[];
  /** Extra nats.js connection options when no connection is given (e.g. secure mode's authenticator). */
  connectionOptions?: Omit<ConnectionOptions, 'servers'>;
  /**
   * Secure mode: the user JWT the mesh operator issued for this agent's key (its
   * connection then signs the server's nonce with the same key that signs its
   * frames), or a creds file (path or bytes) holding both. Implies
   * `authenticatedTransport`. Ignored when `connection` is given.
   */
  credentials?: { jwt: string } | { creds: string | Uint8Array };
  /**
   * The connection authenticates each agent's publishes (secure mode): a frame's
   * subject then proves who published it, and rejections say so. Default false.
   */
  authenticatedTransport?: boolean;
  /** Default timeout of `request()`; 5 s. */
  requestTimeoutMs?: number;
  /** Frames larger than this are neither sent nor read; default 1 MiB. */
  maxFrameBytes?: number;
  /** Accepted clock skew for `iat`; default 30 s. */
  windowMs?: number;
  /** Bound on remembered (iss, id) pairs; default 250,000. */
  maxReplayEntries?: number;
  /** Handler concurrency and queue bounds. */
  limits?: Partial<DispatchLimits>;
  /** Bounds of the queue before verification (known peers first, a budget per unknown key). */
  intake?: Partial<IntakeLimits>;
  /**
   * Signatures checked on this many worker threads (0: on the event loop, the
   * default). For a process hosting many agents, or one agent receiving more
   * than a core can verify: agents asking for the same number share one pool
   * per process. Frames keep their order per sender; the intake's bounds still
   * apply. Costs some latency at low load (docs/performance.md).
   */
  verifyWorkers?: number;
  /** Presence: heartbeat interval (default 15 s), expiry (default 3 heartbeats), peer cap, size limit, KV registry. */
  presence?: { heartbeatMs?: number; expiryMs?: number; maxPeers?: number; maxPresenceBytes?: number; registry?: boolean };
  /** Modules plugged into the pipeline: trust, kill switch, breakers, delegation, or your own guards. */
  extensions?: AgentExtension[];
  /** Clock (ms since epoch); injectable for tests. */
  now?: () => number;
}

export interface RequestOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** An agent on the mesh: what `joinMesh` returns. */
export interface Agent {
  readonly mesh: string;
  readonly name: string;
  readonly did: string;
  readonly agentId: string;
  readonly version: string;
  readonly capabilities: readonly string[];
  readonly lineage: Lineage | undefined;
  /** The agent's identity (its secret never shows in logs, JSON or inspect). */
  readonly key: AgentKey;
  readonly isClosed: boolean;
  /** Registers the handler for one message type; its return value (or promise) answers requests. */
  handle(typ: string, handler: Handler): this;
  /** Sends a signed one-way message. `to` is a DID or an agent id. */
  send(to: string, typ: string, data?: unknown): void;
  /** Sends a signed request and resolves with the data of the verified reply. */
  request<T = unknown>(to: string, typ: string, data?: unknown, options?: RequestOptions): Promise<T>;
  /** Peers known from verified presence. */
  peers(): PeerInfo[];
  stats(): AgentStats;
  on<K extends keyof AgentEvents>(event: K, listener: AgentEvents[K]): () => void;
  off<K extends keyof AgentEvents>(event: K, listener: AgentEvents[K]): void;
  /** Announces `leave`, fails pending requests, aborts running handlers, and stops receiving. */
  leave(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

function checkTimeout(timeoutMs: number): number {
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > MAX_TIMEOUT_MS) {
    throw new InvalidArgumentError(`timeoutMs must be an integer from 1 to ${MAX_TIMEOUT_MS} (got ${timeoutMs})`);
  }
  return timeoutMs;
}

function checkLimits(limits: DispatchLimits): DispatchLimits {
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isInteger(value) || value < 1) throw new InvalidArgumentError(`limits.${name} must be an integer >= 1 (got ${value})`);
  }
  return limits;
}

function checkWorkers(workers: number): number {
  if (!Number.isInteger(workers) || workers < 0 || workers > MAX_VERIFY_WORKERS) {
    throw new InvalidArgumentError(`verifyWorkers must be an integer from 0 to ${MAX_VERIFY_WORKERS} (got ${workers})`);
  }
  return workers;
}

function assertApplicationType(typ: string): void {
  if (typeof typ !== 'string' || typ.length === 0 || typ.startsWith(RESERVED_TYPE_PREFIX)) {
    throw new InvalidArgumentError(
      `message type must be a non-empty string not starting with '${RESERVED_TYPE_PREFIX}' (got ${JSON.stringify(typ)})`,
    );
  }
}

/** Recently failed keys, bounded: not served as known peers by the intake. */
class SuspectKeys {
  private readonly keys = new Set<string>();
  add(keyId: string): void {
    if (this.keys.size >= 4096) this.keys.delete(this.keys.values().next().value!);
    this.keys.add(keyId);
  }
  has(keyId: string): boolean {
    return this.keys.has(keyId);
  }
}

/**
 * The agent: a facade over the pipeline stages (intake, inbound, requests,
 * dispatch, outbound, presence) that all report to one ledger. Internals live in
 * #private fields, so a holder of an agent can reach only the {@link Agent} API.
 */
class MeshAgent implements Agent {
  readonly mesh: string;
  readonly name: string;
  readonly key: AgentKey;
  readonly did: string;
  readonly agentId: string;
  readonly version: string;
  readonly capabilities: readonly string[];
  readonly lineage: Lineage | undefined;

  readonly #nc: NatsConnection;
  readonly #ownsConnection: boolean;
  readonly #subjects: MeshSubjects;
  readonly #ledger = new Ledger();
  readonly #outbound: Outbound;
  readonly #requests: Requests;
  readonly #dispatcher: Dispatcher;
  readonly #inbound: Inbound;
  readonly #intake: Intake;
  readonly #extensions: AgentExtension[];
  readonly #init: AgentInit;
  readonly #requestTimeoutMs: number;
  readonly #resolved = new Map<string, PeerRef>();
  readonly #suspects = new SuspectKeys();
  readonly #member: PresenceMember;
  readonly #verifyWorkers: number;
  readonly #verifier: FrameVerifier;
  #pool: VerifyPool | undefined;
  #pooled: PooledVerifier | undefined;
  #wantsPresence = false;
  #hub: PresenceHub | undefined;
  #subscription: Subscription | undefined;
  readonly #extraSubscriptions = new Set<Subscription>();
  #closed = false;

  constructor(init: AgentInit, nc: NatsConnection, ownsConnection: boolean) {
    assertMeshName(init.mesh);
    this.mesh = init.mesh;
    this.name = init.name;
    this.key = init.key ?? generateKey();
    this.did = this.key.did;
    this.agentId = this.key.agentId;
    this.version = init.version ?? '0.0.0';
    this.capabilities = [...(init.capabilities ?? [])];
    this.lineage = init.lineage;
    // Peers refuse presence that breaks these bounds (§9); refuse it here, where the caller can fix it.
    if (parsePresence(presenceData('join', this.name, this.version, [...this.capabilities], this.lineage)) === undefined) {
      throw new InvalidArgumentError(
        'presence out of bounds: name is a string of at most 128 bytes, version at most 64, up to 256 capabilities of at most 128, lineage values at most 256',
      );
    }
    this.#init = init;
    this.#nc = nc;
    this.#ownsConnection = ownsConnection;
    this.#requestTimeoutMs = checkTimeout(init.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS);
    const maxFrameBytes = init.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    const now = init.now ?? Date.now;
    this.#subjects = meshSubjects(this.mesh);
    this.#extensions = [...(init.extensions ?? [])];
    this.#outbound = new Outbound(this.key, nc, maxFrameBytes, this.#ledger);
    this.#requests = new Requests(this.#outbound, this.#subjects, this.agentId, now);
    this.#dispatcher = new Dispatcher(
      this.#outbound,
      this.#ledger,
      this.#subjects,
      this.agentId,
      checkLimits({ ...DEFAULT_DISPATCH_LIMITS, ...init.limits }),
    );
    const verifier = new FrameVerifier({
      self: this.did,
      maxFrameBytes,
      now,
      // A restarted agent has lost its replay memory: nothing issued before it started is accepted.
      notBefore: now(),
      isKnown: (agentId) => this.#hub?.isPeer(agentId) === true,
      ...(init.windowMs !== undefined && { windowMs: init.windowMs }),
      ...(init.maxReplayEntries !== undefined && { maxEntries: init.maxReplayEntries }),
    });
    this.#verifier = verifier;
    this.#inbound = new Inbound(
      verifier,
      this.#ledger,
      this.#requests,
      this.#dispatcher,
      this.agentId,
      init.authenticatedTransport === true,
      (keyId) => this.#suspects.add(keyId),
    );
    this.#verifyWorkers = checkWorkers(init.verifyWorkers ?? 0);
    this.#intake = new Intake(
      (subject, data, sink) =>
        this.#pooled === undefined ? this.#inbound.process(subject, data, sink) : this.#pooled.submit(subject, data, sink),
      (subject, data, detail) => this.#inbound.refuse(subject, data.length, { reason: 'overloaded', detail, blame: 'none' }),
      (keyId) => this.#hub?.isPeerKey(keyId) === true && !this.#suspects.has(keyId),
      { ...DEFAULT_INTAKE_LIMITS, ...init.intake },
      now,
      this.#verifyWorkers > 0 ? () => this.#pooled === undefined || this.#pooled.ready() : undefined,
    );
    this.#member = {
      agentId: this.agentId,
      keyId: Buffer.from(this.key.publicKey).toString('latin1'),
      announce: (status: PresenceStatus) => this.#announce(status),
      peerJoined: (peer) => {
        if (this.#ledger.hasListeners('peerJoined')) this.#ledger.report('peerJoined', peer);
      },
      peerLeft: (peer, reason) => {
        if (this.#ledger.hasListeners('peerLeft')) this.#ledger.report('peerLeft', peer, reason);
      },
      rejected: (event: RejectionEvent) => {
        if (this.#ledger.hasListeners('rejected')) this.#ledger.report('rejected', event);
      },
    };
    for (const extension of this.#extensions) {
      if (extension.inbound !== undefined) this.#inbound.guards.push(extension.inbound);
      if (extension.outbound !== undefined) this.#outbound.addGuard(extension.outbound);
      if (extension.interceptRequest !== undefined) this.#requests.addInterceptor(extension.interceptRequest);
    }
  }

  /** Subscribes, attaches extensions, reads presence, and announces `join`. Called by {@link joinMesh}. */
  async start(): Promise<void> {
    this.#subscription = this.#nc.subscribe(this.#subjects.inbox(this.agentId), {
      callback: (err, msg) => {
        if (err !== null) return; // subscription closed; nothing was delivered
        // Nothing may escape into nats.js: a throw here would stop its reader for every agent on the connection.
        try {
          this.#ledger.counters.received++;
          this.#intake.push(msg.subject, msg.data);
        } catch (error) {
          this.#fault(error);
        }
      },
    });
    if (this.#extensions.length > 0) {
      const port = this.#port();
      for (const extension of this.#extensions) await extension.attach?.(port);
    }
    const presence = this.#init.presence ?? {};
    const heartbeatMs = presence.heartbeatMs ?? DEFAULT_PRESENCE.heartbeatMs;
    this.#hub = await Hub.attach(
      this.#nc,
      {
        mesh: this.mesh,
        maxPresenceBytes: presence.maxPresenceBytes ?? DEFAULT_PRESENCE.maxPresenceBytes,
        heartbeatMs,
        expiryMs: presence.expiryMs ?? 3 * heartbeatMs,
        maxPeers: presence.maxPeers ?? DEFAULT_PRESENCE.maxPeers,
        registry: presence.registry ?? true,
        secure: this.#init.authenticatedTransport === true,
        now: this.#init.now ?? Date.now,
        windowMs: this.#init.windowMs ?? DEFAULT_WINDOW_MS,
        ...(this.#init.maxReplayEntries !== undefined && { maxReplayEntries: this.#init.maxReplayEntries }),
      },
      this.#member,
      this.#init.now === undefined,
    );
    if (this.#wantsPresence) this.#hub.listen(this.#member);
    await this.#hub.announce(this.#member, 'join');
    await this.#nc.flush();
    // Last, so nothing after it can fail: a joinMesh that throws holds no workers.
    if (this.#verifyWorkers > 0) this.#startPool();
    this.#nc.closed().then(
      (err) => {
        if (!this.#closed) this.#fault(err ?? new Error('the NATS connection closed'));
      },
      (err) => this.#fault(err),
    );
  }

  #startPool(): void {
    this.#pool = acquirePool(this.#verifyWorkers);
    this.#pooled = new PooledVerifier({
      verifier: this.#verifier,
      pool: this.#pool,
      settle: (subject, data, result, sink) => this.#inbound.settle(subject, data, result, sink),
      resume: () => this.#intake.resume(),
      backlog: () => this.#intake.queued,
    });
  }

  #announce(status: PresenceStatus): Uint8Array | undefined {
    if (this.#closed && status !== 'leave') return undefined;
    try {
      const subject = this.#subjects.presence(this.agentId);
      this.#outbound.check({ kind: 'presence', typ: MESSAGE_TYPES.presence, data: status });
      const { bytes } = this.#outbound.publish(subject, {
        typ: MESSAGE_TYPES.presence,
        data: presenceData(status, this.name, this.version, [...this.capabilities], this.lineage),
      });
      return bytes;
    } catch {
      // a guard (e.g. kill) refused, or the connection is gone: presence waits for the next heartbeat
      return undefined;
    }
  }

  #port(): ExtensionPort {
    const ownSubject = (subject: string) => {
      if (typeof subject !== 'string' || !subject.endsWith(`.${this.agentId}`)) {
        throw new InvalidArgumentError("an extension may publish only on the agent's own subjects");
      }
    };
    return {
      key: this.key,
      secure: this.#init.authenticatedTransport === true,
      did: this.did,
      agentId: this.agentId,
      mesh: this.mesh,
      subjects: this.#subjects,
      connection: this.#nc,
      publishSigned: (subject, typ, data, options = {}) => {
        ownSubject(subject);
        return this.#outbound.publish(subject, { typ, data, ...options });
      },
      send: (subject, message, options = {}) => {
        ownSubject(subject);
        return this.#outbound.send(subject, message, { typ: message.typ, data: message.data, ...options });
      },
      refuse: (input, refusal) => {
        const blame = refusal.blame ?? 'signer';
        this.#inbound.refuse(
          input.subject,
          input.frame.raw.length,
          { ...refusal, blame },
          input.frame.iss,
          blame === 'signer' ? input.frame.raw : undefined,
        );
      },
      routeKind: (kind, handler, options = {}) => {
        if (['msg', 'req', 'rep', 'presence'].includes(kind))
          throw new InvalidArgumentError(`'${kind}' is a protocol kind, not an extension's`);
        this.#inbound.kinds.set(kind, { handler, guards: options.guards ?? true });
      },
      subscribe: (subject, handler, options = {}) => {
        const sink = { handler, guards: options.guards ?? true };
        const subscription = this.#nc.subscribe(subject, {
          ...(options.queue !== undefined && { queue: options.queue }),
          callback: (err, msg) => {
            if (err !== null) return;
            try {
              this.#ledger.counters.received++;
              this.#intake.push(msg.subject, msg.data, sink);
            } catch (error) {
              this.#fault(error);
            }
          },
        });
        this.#extraSubscriptions.add(subscription);
        return async () => {
          this.#extraSubscriptions.delete(subscription);
          await subscription.drain().catch(() => undefined);
        };
      },
      abortInFlight: (reason) => this.#abortAll(reason),
      failPending: (error) => this.#requests.failAll(error),
      on: (event, listener) => {
        this.#presenceInterest(event);
        return this.#ledger.on(event, listener);
      },
      isPeer: (agentId) => this.#hub?.isPeer(agentId) === true,
    };
  }

  /** Aborts running handlers and every extension's own in-flight work. */
  #abortAll(reason: unknown): void {
    this.#dispatcher.abortAll(reason);
    for (const extension of this.#extensions) {
      try {
        extension.abort?.(reason);
      } catch (err) {
        this.#fault(err);
      }
    }
  }

  #fault(error: unknown): void {
    const err = error instanceof Error ? error : new Error('a non-Error fault in the receive path');
    if (this.#ledger.hasListeners('fault')) this.#ledger.report('fault', err);
    else process.emitWarning(`trustmesh agent ${this.name}: ${err.message}`, { code: 'TRUSTMESH_FAULT' });
  }

  handle(typ: string, handler: Handler): this {
    assertApplicationType(typ);
    this.#dispatcher.handle(typ, handler);
    return this;
  }

  send(to: string, typ: string, data?: unknown): void {
    const peer = this.#resolve(to);
    assertApplicationType(typ);
    this.#outbound.send(
      this.#subjects.message(peer.agentId, this.agentId),
      { kind: 'msg', to: peer, typ, data },
      { typ, data, aud: peer.did },
    );
  }

  request<T = unknown>(to: string, typ: string, data?: unknown, options: RequestOptions = {}): Promise<T> {
    // Misuse throws at once; everything that can happen at run time rejects.
    const peer = this.#resolve(to);
    assertApplicationType(typ);
    const timeoutMs = options.timeoutMs === undefined ? this.#requestTimeoutMs : checkTimeout(options.timeoutMs);
    if (this.#closed) return Promise.reject(new AgentClosedError());
    return this.#requests.call({ to: peer, typ, data, timeoutMs, signal: options.signal }) as Promise<T>;
  }

  peers(): PeerInfo[] {
    return this.#hub?.peers(this.agentId) ?? [];
  }

  stats(): AgentStats {
    const { rejected, rejectedTotal } = this.#ledger.rejectedCounts();
    let total = rejectedTotal;
    for (const [reason, n] of this.#hub?.stats.rejected ?? []) {
      rejected[reason] = (rejected[reason] ?? 0) + n;
      total += n;
    }
    const { inFlight, queued } = this.#dispatcher.stats;
    const presence = this.#hub?.stats;
    return {
      ...this.#ledger.counters,
      // Presence is verified once per connection: its counts are shared by the agents on it.
      received: this.#ledger.counters.received + (presence?.received ?? 0),
      accepted: this.#ledger.counters.accepted + (presence?.accepted ?? 0),
      rejected,
      rejectedTotal: total,
      inFlight,
      queued,
      pendingRequests: this.#requests.size,
      peers: Math.max(0, (this.#hub?.peerCount ?? 0) - (this.#hub?.isPeer(this.agentId) ? 1 : 0)),
    };
  }

  on<K extends keyof AgentEvents>(event: K, listener: AgentEvents[K]): () => void {
    this.#presenceInterest(event);
    return this.#ledger.on(event, listener);
  }

  /** The presence hub tells only agents that listen for its events (decision 0015). */
  #presenceInterest(event: keyof AgentEvents): void {
    if (event !== 'peerJoined' && event !== 'peerLeft' && event !== 'rejected') return;
    this.#wantsPresence = true;
    this.#hub?.listen(this.#member);
  }

  off<K extends keyof AgentEvents>(event: K, listener: AgentEvents[K]): void {
    this.#ledger.off(event, listener);
  }

  get isClosed(): boolean {
    return this.#closed;
  }

  async leave(): Promise<void> {
    if (this.#closed) return;
    if (this.#hub !== undefined) void this.#hub.announce(this.#member, 'leave');
    this.#closed = true;
    this.#inbound.closed = true;
    this.#outbound.closed = true;
    const closed = new AgentClosedError('agent left the mesh');
    this.#requests.failAll(new AgentClosedError('agent left the mesh before the reply arrived'));
    this.#abortAll(closed);
    for (const extension of this.#extensions) await Promise.resolve(extension.detach?.()).catch(() => undefined);
    this.#pooled?.close();
    if (this.#pool !== undefined) await releasePool(this.#pool);
    if (this.#ownsConnection) {
      if (!this.#nc.isClosed()) await this.#nc.drain().catch(() => undefined);
      return;
    }
    if (!this.#nc.isClosed()) await this.#nc.flush().catch(() => undefined);
    await Promise.all([
      this.#subscription?.drain().catch(() => undefined),
      ...[...this.#extraSubscriptions].map((s) => s.drain().catch(() => undefined)),
      this.#hub?.detach(this.#member),
    ]);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.leave();
  }

  #resolve(to: string): PeerRef {
    if (typeof to !== 'string') throw new InvalidArgumentError('recipient must be a DID or agent id string');
    // Validating a DID is a base58 decode and re-encode; peers repeat, so remember them (bounded).
    let peer = this.#resolved.get(to);
    if (peer === undefined) {
      peer = to.startsWith('did:key:') ? { did: to, agentId: agentIdFromDid(to) } : { did: didFromAgentId(to), agentId: to };
      if (this.#resolved.size >= 4096) this.#resolved.clear();
      this.#resolved.set(to, peer);
    }
    return peer;
  }

  /** What `console.log(agent)` shows: identity and state, never the connection or its credentials. */
  [inspect.custom](): string {
    return `Agent { name: ${JSON.stringify(this.name)}, did: '${this.did}', mesh: '${this.mesh}', closed: ${this.#closed} }`;
  }

  toJSON(): { name: string; did: string; mesh: string } {
    return { name: this.name, did: this.did, mesh: this.mesh };
  }
}

/**
 * Connects (or reuses `init.connection`), subscribes, attaches extensions,
 * reads presence, and announces the agent on the mesh.
 */
export async function joinMesh(init: AgentInit): Promise<Agent> {
  const owns = init.connection === undefined;
  const servers = init.servers ?? 'nats://127.0.0.1:4222';
  let options: ConnectionOptions = { ...init.connectionOptions, servers, name: `trustmesh:${init.name}` };
  if (init.connection === undefined && init.credentials !== undefined) {
    const secure = await import('@trustmesh/secure');
    if ('jwt' in init.credentials) {
      if (init.key === undefined) throw new InvalidArgumentError('credentials.jwt needs the key it was issued for (init.key)');
      options = secure.secureConnectOptions(init.key, init.credentials.jwt, servers, { ...init.connectionOptions });
    } else {
      const { key, options: fromCreds } = await secure.credsConnectOptions(init.credentials.creds, servers, { ...init.connectionOptions });
      if (init.key !== undefined && init.key.did !== key.did)
        throw new InvalidArgumentError('the creds file holds another key than init.key');
      init = { ...init, key };
      options = fromCreds;
    }
    init = { ...init, authenticatedTransport: init.authenticatedTransport ?? true };
  }
  const nc = init.connection ?? (await connect(options));
  try {
    const agent = new MeshAgent(init, nc, owns);
    await agent.start();
    return agent;
  } catch (err) {
    if (owns) await nc.close().catch(() => undefined);
    throw err;
  }
}
