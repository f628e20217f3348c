import { connect, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import {
  agentIdFromDid,
  byteKey,
  didFromAgentId,
  FrameVerifier,
  generateKey,
  InvalidArgumentError,
  REJECT_REASONS,
  senderOfSubject,
  signFrame,
  subjects,
  assertMeshName,
  DEFAULT_MAX_FRAME_BYTES,
  type AgentKey,
  type OpenedFrame,
  type RejectReason,
  type VerifyResult,
} from '@trustmesh/protocol';
import { Emitter } from './emitter.ts';
import { AgentClosedError, FrameTooLargeError, RemoteError, RequestTimeoutError } from './errors.ts';
import { parsePresence, presenceData, type Lineage, type PeerInfo, type PresenceStatus } from './presence.ts';
import { PresenceHub, type PresenceListener } from './presence-hub.ts';

export const DEFAULT_REQUEST_TIMEOUT_MS = 5_000;
/** setTimeout's ceiling (2^31 - 1 ms, about 24.8 days); larger values would fire at once. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;
/** Protocol message types (docs/protocol.md §9–10); application types must not start with `tm.`. */
export const TYPE_PRESENCE = 'tm.presence';
export const TYPE_REPLY = 'tm.reply';
export const TYPE_ERROR = 'tm.error';

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
  /** Default timeout of `request()`; 5 s. */
  requestTimeoutMs?: number;
  /** Frames larger than this are neither sent nor read; default 1 MiB. */
  maxFrameBytes?: number;
  /** Accepted clock skew for `iat`; default 30 s. */
  windowMs?: number;
  /** Bound on remembered (iss, id) pairs; default 250,000. */
  maxReplayEntries?: number;
  /** Answer peers' `join` with an `alive` announcement so they learn about this agent; default true. */
  answerJoins?: boolean;
  /** Clock (ms since epoch); injectable for tests. */
  now?: () => number;
}

export interface MessageContext {
  /** The sender's DID, proven by its signature. */
  from: string;
  typ: string;
  /** The verified frame, raw bytes included (for audit or evidence). */
  frame: OpenedFrame;
  /** True when the sender waits for a reply. */
  isRequest: boolean;
}

export type Handler = (data: unknown, context: MessageContext) => unknown;

export interface RejectionEvent {
  reason: RejectReason;
  detail: string;
  subject: string;
  size: number;
  /** DID of the key whose valid signature the frame carries; absent when the signature did not verify (then nobody is attributable). */
  signer?: string;
}

export interface AgentStats {
  sent: number;
  received: number;
  accepted: number;
  rejected: Record<RejectReason, number>;
  rejectedTotal: number;
  handlerErrors: number;
  unhandled: number;
  pendingRequests: number;
  peers: number;
}

export type AgentEvents = {
  /** A verified frame passed every check. */
  accepted: (frame: OpenedFrame) => void;
  /** A frame was refused; the reason is also counted in `stats().rejected`. */
  rejected: (event: RejectionEvent) => void;
  /** A verified one-way message had no handler for its type. */
  unhandled: (frame: OpenedFrame) => void;
  /** A handler threw (for requests the requester also gets a signed `tm.error`). */
  handlerError: (error: unknown, frame: OpenedFrame) => void;
  peerJoined: (peer: PeerInfo) => void;
  peerLeft: (peer: PeerInfo) => void;
};

export interface RequestOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
}

interface PendingRequest {
  to: string;
  typ: string;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
  timer: NodeJS.Timeout;
  cleanup: () => void;
}

function checkTimeout(timeoutMs: number): number {
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > MAX_TIMEOUT_MS) {
    throw new InvalidArgumentError(`timeoutMs must be an integer from 1 to ${MAX_TIMEOUT_MS} (got ${timeoutMs})`);
  }
  return timeoutMs;
}

const zeroCounts = (): Record<RejectReason, number> =>
  Object.fromEntries(Object.keys(REJECT_REASONS).map((r) => [r, 0])) as Record<RejectReason, number>;

/**
 * An agent on the mesh. Every frame it sends is signed with its key; every
 * frame it receives is verified (docs/protocol.md §7) before anything else
 * looks at it.
 */
export class Agent extends Emitter<AgentEvents> implements PresenceListener {
  readonly mesh: string;
  readonly name: string;
  readonly key: AgentKey;
  readonly did: string;
  readonly agentId: string;
  readonly version: string;
  readonly capabilities: readonly string[];
  readonly lineage: Lineage | undefined;

  private readonly nc: NatsConnection;
  private readonly ownsConnection: boolean;
  private readonly verifier: FrameVerifier;
  private readonly handlers = new Map<string, Handler>();
  private readonly pending = new Map<string, PendingRequest>();
  private readonly peerTable = new Map<string, PeerInfo>();
  private readonly resolvedPeers = new Map<string, { did: string; agentId: string }>();
  private readonly subscriptions: Subscription[] = [];
  private readonly presenceSettings: { windowMs?: number; maxReplayEntries?: number; now?: () => number };
  private presenceHub: PresenceHub | undefined;
  private readonly requestTimeoutMs: number;
  private readonly maxFrameBytes: number;
  private readonly answerJoins: boolean;
  private readonly now: () => number;
  private readonly counters = { sent: 0, received: 0, accepted: 0, handlerErrors: 0, unhandled: 0 };
  private readonly rejectedCounts = zeroCounts();
  private closed = false;

  /** Use {@link joinMesh}. */
  constructor(init: AgentInit, nc: NatsConnection, ownsConnection: boolean) {
    super();
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
    const announced = presenceData('join', this.name, this.version, [...this.capabilities], this.lineage);
    if (parsePresence(announced) === undefined) {
      throw new InvalidArgumentError(
        'presence out of bounds: name is a string of at most 128 chars, version at most 64, up to 256 capabilities of at most 128, lineage values at most 256',
      );
    }
    this.nc = nc;
    this.ownsConnection = ownsConnection;
    this.requestTimeoutMs = checkTimeout(init.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS);
    this.maxFrameBytes = init.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    this.answerJoins = init.answerJoins ?? true;
    this.now = init.now ?? Date.now;
    this.presenceSettings = {
      ...(init.windowMs !== undefined && { windowMs: init.windowMs }),
      ...(init.maxReplayEntries !== undefined && { maxReplayEntries: init.maxReplayEntries }),
      ...(init.now !== undefined && { now: init.now }),
    };
    this.verifier = new FrameVerifier({
      self: this.did,
      maxFrameBytes: this.maxFrameBytes,
      now: this.now,
      ...(init.windowMs !== undefined && { windowMs: init.windowMs }),
      ...(init.maxReplayEntries !== undefined && { maxEntries: init.maxReplayEntries }),
    });
  }

  /** Subscribes and announces `join`. Called by {@link joinMesh}. */
  async start(): Promise<void> {
    const inbox = this.nc.subscribe(subjects.inbox(this.mesh, this.agentId), {
      callback: (err, msg) => {
        if (err === null) this.onInbox(msg.subject, msg.data); // err: subscription closed, nothing delivered
      },
    });
    this.subscriptions.push(inbox);
    this.presenceHub = PresenceHub.attach(this.nc, { mesh: this.mesh, maxFrameBytes: this.maxFrameBytes, ...this.presenceSettings }, this);
    this.announce('join');
    await this.nc.flush();
  }

  /** Registers the handler for one message type; its return value (or promise) answers requests. */
  handle(typ: string, handler: Handler): this {
    this.assertApplicationType(typ);
    if (typeof handler !== 'function') throw new InvalidArgumentError('handler must be a function');
    this.handlers.set(typ, handler);
    return this;
  }

  /** Sends a signed one-way message. `to` is a DID or an agent id. */
  send(to: string, typ: string, data?: unknown): void {
    const peer = this.resolvePeer(to);
    this.assertApplicationType(typ);
    this.publish(subjects.message(this.mesh, peer.agentId, this.agentId), { typ, data, aud: peer.did });
  }

  /** Sends a signed request and resolves with the data of the verified reply. */
  request<T = unknown>(to: string, typ: string, data?: unknown, options: RequestOptions = {}): Promise<T> {
    const peer = this.resolvePeer(to);
    this.assertApplicationType(typ);
    const timeoutMs = options.timeoutMs === undefined ? this.requestTimeoutMs : checkTimeout(options.timeoutMs);
    const signal = options.signal;
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<T>((resolve, reject) => {
      const sub = subjects.request(this.mesh, peer.agentId, this.agentId);
      let frameId: string;
      const onAbort = () => {
        this.pending.get(frameId)?.cleanup();
        reject(signal!.reason);
      };
      const entry: PendingRequest = {
        to: peer.agentId,
        typ,
        resolve: resolve as (value: unknown) => void,
        reject,
        timer: setTimeout(() => {
          entry.cleanup();
          reject(new RequestTimeoutError(peer.did, typ, timeoutMs));
        }, timeoutMs),
        cleanup: () => {
          clearTimeout(entry.timer);
          signal?.removeEventListener('abort', onAbort);
          this.pending.delete(frameId);
        },
      };
      try {
        this.publish(sub, { typ, data, aud: peer.did }, (id) => {
          frameId = byteKey(id);
          this.pending.set(frameId, entry);
        });
      } catch (err) {
        entry.cleanup();
        reject(err);
        return;
      }
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Peers known from verified presence announcements. */
  peers(): PeerInfo[] {
    return [...this.peerTable.values()].map((p) => ({ ...p, capabilities: [...p.capabilities] }));
  }

  stats(): AgentStats {
    let rejectedTotal = 0;
    for (const n of Object.values(this.rejectedCounts)) rejectedTotal += n;
    return {
      ...this.counters,
      rejected: { ...this.rejectedCounts },
      rejectedTotal,
      pendingRequests: this.pending.size,
      peers: this.peerTable.size,
    };
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Announces `leave`, fails pending requests, and stops receiving. Drains the connection if the agent opened it. */
  async leave(): Promise<void> {
    if (this.closed) return;
    try {
      this.announce('leave');
    } catch {
      // the connection may already be gone; leaving must still succeed
    }
    this.closed = true;
    for (const entry of [...this.pending.values()]) {
      entry.cleanup();
      entry.reject(new AgentClosedError('agent left the mesh before the reply arrived'));
    }
    if (this.ownsConnection) {
      if (!this.nc.isClosed()) await this.nc.drain();
      return;
    }
    if (!this.nc.isClosed()) await this.nc.flush().catch(() => undefined);
    await Promise.all([...this.subscriptions.map((s) => s.drain().catch(() => undefined)), this.presenceHub?.detach(this)]);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.leave();
  }

  private publish(
    subject: string,
    init: { typ: string; data?: unknown; aud?: string; cor?: Uint8Array },
    beforeSend?: (id: Uint8Array) => void,
  ): Uint8Array {
    if (this.closed) throw new AgentClosedError();
    const { bytes, body } = signFrame(this.key, { sub: subject, ...init });
    if (bytes.length > this.maxFrameBytes) throw new FrameTooLargeError(bytes.length, this.maxFrameBytes);
    beforeSend?.(body.id);
    this.nc.publish(subject, bytes);
    this.counters.sent++;
    return bytes;
  }

  private announce(status: PresenceStatus): void {
    this.publish(subjects.presence(this.mesh, this.agentId), {
      typ: TYPE_PRESENCE,
      data: presenceData(status, this.name, this.version, [...this.capabilities], this.lineage),
    });
  }

  private resolvePeer(to: string): { did: string; agentId: string } {
    if (typeof to !== 'string') throw new InvalidArgumentError('recipient must be a DID or agent id string');
    // Validating a DID is a base58 decode and re-encode; peers repeat, so remember them (bounded).
    let peer = this.resolvedPeers.get(to);
    if (peer === undefined) {
      peer = to.startsWith('did:key:') ? { did: to, agentId: agentIdFromDid(to) } : { did: didFromAgentId(to), agentId: to };
      if (this.resolvedPeers.size >= 4096) this.resolvedPeers.clear();
      this.resolvedPeers.set(to, peer);
    }
    return peer;
  }

  private assertApplicationType(typ: string): void {
    if (typeof typ !== 'string' || typ.length === 0 || typ.startsWith('tm.')) {
      throw new InvalidArgumentError(`message type must be a non-empty string not starting with 'tm.' (got ${JSON.stringify(typ)})`);
    }
  }

  private verify(subject: string, data: Uint8Array): OpenedFrame | undefined {
    this.counters.received++;
    const result = this.verifier.verify(data, { subject });
    if (!result.ok) {
      this.refuse(result.reason, result.detail, subject, data.length, result.signer);
      return undefined;
    }
    return result.frame;
  }

  private accept(frame: OpenedFrame): void {
    this.counters.accepted++;
    this.emit('accepted', frame);
  }

  private refuse(reason: RejectReason, detail: string, subject: string, size: number, signer?: string): void {
    this.rejectedCounts[reason]++;
    this.emit('rejected', signer === undefined ? { reason, detail, subject, size } : { reason, detail, subject, size, signer });
  }

  private onInbox(subject: string, data: Uint8Array): void {
    if (this.closed) return;
    const frame = this.verify(subject, data);
    if (frame === undefined) return;
    const kind = subject.split('.', 3)[2];
    if (kind === 'rep') this.onReply(frame, subject);
    else if (kind !== 'msg' && kind !== 'req') {
      this.refuse('subject_mismatch', `'${kind}' is not a message kind (msg, req, rep)`, subject, data.length, frame.iss);
    } else {
      this.accept(frame);
      this.dispatch(frame, kind === 'req', subject);
    }
  }

  private onReply(frame: OpenedFrame, subject: string): void {
    const entry = frame.cor === undefined ? undefined : this.pending.get(byteKey(frame.cor));
    if (entry === undefined || entry.to !== senderOfSubject(subject) || (frame.typ !== TYPE_REPLY && frame.typ !== TYPE_ERROR)) {
      this.refuse('unsolicited', 'reply matches no pending request to its sender', subject, frame.raw.length, frame.iss);
      return;
    }
    entry.cleanup();
    this.accept(frame);
    if (frame.typ === TYPE_REPLY) {
      entry.resolve(frame.data);
      return;
    }
    const err = frame.data as { code?: unknown; message?: unknown } | null;
    const code = typeof err?.code === 'string' ? err.code : 'remote_error';
    const message = typeof err?.message === 'string' ? err.message : 'peer reported an error';
    entry.reject(new RemoteError(code, message, frame.iss));
  }

  private dispatch(frame: OpenedFrame, isRequest: boolean, subject: string): void {
    const handler = this.handlers.get(frame.typ);
    const replyTo = senderOfSubject(subject);
    if (handler === undefined) {
      if (isRequest) this.reply(replyTo, frame, TYPE_ERROR, { code: 'no_handler', message: `no handler for '${frame.typ}'` });
      else {
        this.counters.unhandled++;
        this.emit('unhandled', frame);
      }
      return;
    }
    const context: MessageContext = { from: frame.iss, typ: frame.typ, frame, isRequest };
    let outcome: unknown;
    try {
      outcome = handler(frame.data, context);
    } catch (err) {
      this.onHandlerError(err, frame, isRequest, replyTo);
      return;
    }
    if (outcome instanceof Promise) {
      outcome.then(
        (value) => isRequest && this.reply(replyTo, frame, TYPE_REPLY, value),
        (err) => this.onHandlerError(err, frame, isRequest, replyTo),
      );
    } else if (isRequest) {
      this.reply(replyTo, frame, TYPE_REPLY, outcome);
    }
  }

  private onHandlerError(err: unknown, frame: OpenedFrame, isRequest: boolean, replyTo: string): void {
    this.counters.handlerErrors++;
    this.emit('handlerError', err, frame);
    if (isRequest) {
      const message = err instanceof Error ? err.message : String(err);
      this.reply(replyTo, frame, TYPE_ERROR, { code: 'handler_error', message: message.slice(0, 1024) });
    }
  }

  private reply(to: string, request: OpenedFrame, typ: string, data: unknown): void {
    if (this.closed) return;
    try {
      this.publish(subjects.reply(this.mesh, to, this.agentId), { typ, data, aud: request.iss, cor: request.id });
    } catch (err) {
      // e.g. the result is too large or not encodable: tell the requester instead of leaving it hanging
      if (typ === TYPE_ERROR) return;
      const code = err instanceof FrameTooLargeError ? 'reply_too_large' : 'reply_unencodable';
      this.publish(subjects.reply(this.mesh, to, this.agentId), {
        typ: TYPE_ERROR,
        data: { code, message: err instanceof Error ? err.message : String(err) },
        aud: request.iss,
        cor: request.id,
      });
    }
  }

  /** Called by the {@link PresenceHub} with the one verification of a presence frame. */
  onPresenceResult(subject: string, size: number, result: VerifyResult): void {
    if (this.closed) return;
    this.counters.received++;
    if (!result.ok) {
      this.refuse(result.reason, result.detail, subject, size, result.signer);
      return;
    }
    const frame = result.frame;
    const presence = frame.typ === TYPE_PRESENCE && frame.aud === undefined ? parsePresence(frame.data) : undefined;
    if (presence === undefined) {
      this.refuse('bad_frame', 'presence frame with malformed data, wrong type or an aud', subject, size, frame.iss);
      return;
    }
    this.accept(frame);
    if (frame.iss === this.did) return; // own announcements come back too
    const agentId = frame.iss.slice('did:key:'.length);
    const known = this.peerTable.get(agentId);
    if (presence.status === 'leave') {
      if (known !== undefined) {
        this.peerTable.delete(agentId);
        this.emit('peerLeft', known);
      }
      return;
    }
    const peer: PeerInfo = {
      did: frame.iss,
      agentId,
      name: presence.name,
      version: presence.version,
      capabilities: presence.capabilities,
      lastSeen: this.now(),
      ...(presence.lineage !== undefined && { lineage: presence.lineage }),
    };
    this.peerTable.set(agentId, peer);
    if (known === undefined) {
      this.emit('peerJoined', peer);
      if (presence.status === 'join' && this.answerJoins) this.announce('alive');
    }
  }
}

/**
 * Connects (or reuses `init.connection`), subscribes, and announces the agent on the mesh.
 */
export async function joinMesh(init: AgentInit): Promise<Agent> {
  const owns = init.connection === undefined;
  const nc = init.connection ?? (await connect({ servers: init.servers ?? 'nats://127.0.0.1:4222', name: `trustmesh:${init.name}` }));
  let agent: Agent;
  try {
    agent = new Agent(init, nc, owns);
    await agent.start();
  } catch (err) {
    if (owns) await nc.close();
    throw err;
  }
  return agent;
}
