import { jetstreamManager } from '@nats-io/jetstream';
import { type KV, Kvm } from '@nats-io/kv';
import type { ConnectionOptions, NatsConnection } from '@nats-io/transport-node';
import {
  type Agent,
  type AgentExtension,
  type AgentInit,
  type ExtensionPort,
  type InboundFrame,
  joinMesh,
  type MessageContext,
  replicasFor,
} from '@trustmesh/client';
import {
  type AgentKey,
  DEFAULT_WINDOW_MS,
  InvalidArgumentError,
  MESSAGE_TYPES,
  meshBuckets,
  signFrame,
  toHex,
  TrustMeshError,
  tryPublicKeyFromDid,
} from '@trustmesh/protocol';
import { parseTrustReport, TRUST_KINDS, TRUST_TYPES, type TrustUpdate, type TrustView } from '@trustmesh/trust';
import { countUnattributed, emptyTally, type UnattributedTally } from '../scoring/attribution.ts';
import { loadScoringPolicy, type ScoringPolicyOverride } from '../scoring/policy.ts';
import { type ApplyResult, createScorer, type Evidence, type Scorer } from '../scoring/scorer.ts';
import type { TrustState } from '../scoring/state.ts';
import { Declarations } from './declarations.ts';
import { type CaptureReader, EvidenceChecker, type Finding, rulesHash } from './evidence.ts';
import { isConflict, type Read, ScoreStore } from './store.ts';

export interface BrokerInit {
  /** The broker's identity: it joins the mesh as an agent with this key, and signs every update with it. */
  key: AgentKey;
  mesh: string;
  /** A connection to share (never closed by the broker), or `servers` to connect. */
  connection?: NatsConnection;
  servers?: string | string[];
  connectionOptions?: Omit<ConnectionOptions, 'servers'>;
  /** Scoring policy override, merged over the default and validated (docs/trust.md §3). */
  policy?: ScoringPolicyOverride;
  /**
   * Secure mode: the transport authenticates publishers, so a frame's subject
   * proves its publishing connection. Bad signatures and replays published on
   * X's subject, read back from the capture stream, are then evidence against X.
   */
  secure?: boolean;
  name?: string;
  /** Clock skew accepted for `iat` (the `future` check); default 30 s. */
  windowMs?: number;
  /** How long before a frame's `iat` the receiver's rules must have been published; default `windowMs`. */
  declarationMarginMs?: number;
  /** Reward verified presence frames as `valid_traffic`; default true. */
  presenceRewards?: boolean;
  /** Presence settings of the broker's own agent. */
  presence?: AgentInit['presence'];
  /** Compare-and-set attempts per change before giving up; default 64. */
  maxAttempts?: number;
  now?: () => number;
}

export interface BrokerStats {
  /** Reports received, and those that proved nothing (fabricated, unverifiable, malformed). */
  reports: number;
  invalid: number;
  /** Score changes written and pushed; evidence already applied (same key); rewards with nothing left to give. */
  applied: number;
  duplicates: number;
  capped: number;
  /** Compare-and-set conflicts (another writer got there first; re-read and re-applied). */
  conflicts: number;
  /** Rejections that blame nobody, by cause: no score changed. */
  unattributed: UnattributedTally;
  declarations: number;
  queries: number;
  /** Failures of the broker itself (bucket unavailable, ...). */
  errors: number;
  /** The last reasons a report was found invalid (at most 8, newest last). */
  lastInvalid: string[];
}

/** A change the broker wrote and pushed. */
export interface BrokerChange {
  readonly update: TrustUpdate;
  readonly result: ApplyResult;
}

export interface Broker {
  readonly did: string;
  readonly agentId: string;
  readonly mesh: string;
  readonly secure: boolean;
  /** The broker's own agent on the mesh. */
  readonly agent: Agent;
  readonly scorer: Scorer;
  /** The current score of any DID, from the bucket (baseline, version 0, for one never scored). */
  view(did: string): Promise<TrustView>;
  /** The stored state of a DID with its KV revision. */
  read(did: string): Promise<Read>;
  stats(): BrokerStats;
  /** Resolves once every report and presence frame received so far is processed. */
  idle(): Promise<void>;
  /** Listens to changes written and pushed by this broker; returns the function that stops. */
  onChange(listener: (change: BrokerChange) => void): () => void;
  /** Listens to what each report proved. */
  onFinding(listener: (finding: Finding, reporter: string) => void): () => void;
  close(): Promise<void>;
}

/** The broker gave up on a change after too many compare-and-set conflicts. */
export class BrokerConflictError extends TrustMeshError {
  constructor(did: string, attempts: number) {
    super('conflict', `trust state of ${did} kept changing under the broker (${attempts} attempts)`);
    this.name = 'BrokerConflictError';
  }
}

const MAX_CACHED = 50_000;
const MAX_TIMEOUT = 2 ** 31 - 1;

/**
 * Starts a trust broker: joins the mesh as an agent, opens (or creates) the
 * trust bucket, and serves reports (`trust.report`), queries (`trust.get`),
 * rules declarations and presence rewards. Every change is written with
 * compare-and-set and pushed as a signed `trust.update` broadcast.
 */
export async function createBroker(init: BrokerInit): Promise<Broker> {
  const policy = loadScoringPolicy(init.policy);
  const scorer = createScorer(policy);
  const now = init.now ?? Date.now;
  const windowMs = init.windowMs ?? DEFAULT_WINDOW_MS;
  const marginMs = init.declarationMarginMs ?? windowMs;
  const maxAttempts = init.maxAttempts ?? 64;
  const secure = init.secure === true;
  if (!Number.isInteger(marginMs) || marginMs < 0) throw new InvalidArgumentError('declarationMarginMs must be an integer >= 0');

  let port: ExtensionPort | undefined;
  const extension: AgentExtension = {
    name: 'trust-broker',
    attach(p) {
      port = p;
    },
  };
  const agent = await joinMesh({
    mesh: init.mesh,
    name: init.name ?? 'trust-broker',
    key: init.key,
    ...(init.connection !== undefined ? { connection: init.connection } : { servers: init.servers ?? 'nats://127.0.0.1:4222' }),
    ...(init.connectionOptions !== undefined && { connectionOptions: init.connectionOptions }),
    ...(init.presence !== undefined && { presence: init.presence }),
    authenticatedTransport: secure,
    extensions: [extension],
    ...(init.now !== undefined && { now: init.now }),
  });
  try {
    const p = port as ExtensionPort | undefined;
    if (p === undefined) throw new Error('the broker extension was not attached');
    const kvm = new Kvm(p.connection);
    const bucket = meshBuckets(init.mesh).trust;
    const kv: KV = await kvm.create(bucket, { history: 4, replicas: replicasFor(p.connection) }).catch(() => kvm.open(bucket));
    let capture: CaptureReader | undefined;
    if (secure) {
      const jsm = await jetstreamManager(p.connection);
      const stream = meshBuckets(init.mesh).auditCapture;
      capture = {
        async read(seq) {
          const m = await jsm.streams.getMessage(stream, { seq }).catch(() => null);
          return m === null ? undefined : { subject: m.subject, data: m.data };
        },
      };
    }
    return new TrustBroker(agent, p, kv, scorer, { ...init, secure, windowMs, marginMs, maxAttempts, now }, capture);
  } catch (error) {
    await agent.leave();
    throw error;
  }
}

interface Settings {
  readonly mesh: string;
  readonly key: AgentKey;
  readonly secure: boolean;
  readonly windowMs: number;
  readonly marginMs: number;
  readonly maxAttempts: number;
  readonly now: () => number;
  readonly presenceRewards?: boolean;
}

class TrustBroker implements Broker {
  readonly did: string;
  readonly agentId: string;
  readonly mesh: string;
  readonly secure: boolean;
  readonly #store: ScoreStore;
  readonly #declarations: Declarations;
  readonly #checker = new EvidenceChecker();
  readonly #cache = new Map<string, Read>();
  readonly #queues = new Map<string, Promise<unknown>>();
  readonly #pending = new Set<Promise<unknown>>();
  readonly #timers = new Map<string, NodeJS.Timeout>();
  readonly #changeListeners = new Set<(change: BrokerChange) => void>();
  readonly #findingListeners = new Set<(finding: Finding, reporter: string) => void>();
  readonly #updateSubject: string;
  readonly #stops: (() => Promise<void>)[] = [];
  readonly #stats: BrokerStats;
  #closed = false;

  constructor(
    readonly agent: Agent,
    private readonly port: ExtensionPort,
    kv: KV,
    readonly scorer: Scorer,
    private readonly settings: Settings,
    private readonly capture: CaptureReader | undefined,
  ) {
    this.did = agent.did;
    this.agentId = agent.agentId;
    this.mesh = settings.mesh;
    this.secure = settings.secure;
    this.#store = new ScoreStore(kv);
    this.#declarations = new Declarations(kv);
    this.#updateSubject = port.subjects.broadcast(TRUST_KINDS.update, this.agentId);
    this.#stats = {
      reports: 0,
      invalid: 0,
      applied: 0,
      duplicates: 0,
      capped: 0,
      conflicts: 0,
      unattributed: emptyTally(settings.now()),
      declarations: 0,
      queries: 0,
      errors: 0,
      lastInvalid: [],
    };
    agent.handle(TRUST_TYPES.report, (data, context) => this.#track(this.#onReport(data, context)));
    agent.handle(TRUST_TYPES.get, (data) => this.#onQuery(data));
    this.#stops.push(
      port.subscribe(port.subjects.broadcast(TRUST_KINDS.rules, '*'), (input) => this.#onDeclaration(input), { guards: false }),
    );
    if (settings.presenceRewards !== false) {
      this.#stops.push(port.subscribe(port.subjects.presenceAll, (input) => this.#onPresence(input), { guards: false }));
    }
  }

  #track<T>(work: Promise<T>): Promise<T> {
    this.#pending.add(work);
    const done = () => this.#pending.delete(work);
    work.then(done, done);
    return work;
  }

  #fail(error: unknown): void {
    this.#stats.errors++;
    if (this.#stats.lastInvalid.length >= 8) this.#stats.lastInvalid.shift();
    this.#stats.lastInvalid.push(`broker error: ${error instanceof Error ? error.message.slice(0, 200) : 'unknown'}`);
  }

  #invalid(detail: string): void {
    this.#stats.invalid++;
    if (this.#stats.lastInvalid.length >= 8) this.#stats.lastInvalid.shift();
    this.#stats.lastInvalid.push(detail);
  }

  async #onReport(data: unknown, context: MessageContext): Promise<void> {
    this.#stats.reports++;
    const parsed = parseTrustReport(data);
    if (!parsed.ok) {
      this.#invalid(`malformed report: ${parsed.detail}`);
      return;
    }
    const at = this.settings.now();
    const findings = await this.#checker.check(parsed.report, {
      mesh: this.mesh,
      reporter: context.from,
      now: at,
      windowMs: this.settings.windowMs,
      secure: this.secure,
      declaredAt: (agentId, t) => this.#declarations.inForce(agentId, t),
      declarationMarginMs: this.settings.marginMs,
      capabilitiesOf: (did) => this.agent.peers().find((peer) => peer.did === did)?.capabilities,
      capture: this.capture,
    });
    for (const finding of findings) {
      for (const listener of this.#findingListeners) listener(finding, context.from);
      if (finding.kind === 'invalid') this.#invalid(finding.detail);
      else if (finding.kind === 'unattributed') {
        this.#stats.unattributed = countUnattributed(this.#stats.unattributed, { outcome: 'unattributed', cause: finding.cause });
      } else {
        await this.#change(finding.did, { event: finding.event, key: finding.key, ref: finding.ref }).catch((e) => this.#fail(e));
      }
    }
  }

  #onPresence({ frame }: InboundFrame): void {
    if (frame.iss === this.did || frame.typ !== MESSAGE_TYPES.presence || this.#closed) return;
    const id = toHex(frame.id);
    this.#track(this.#change(frame.iss, { event: 'valid_traffic', key: `valid_traffic:${id}`, ref: `presence:${id}` })).catch((e) =>
      this.#fail(e),
    );
  }

  #onDeclaration({ frame, route }: InboundFrame): void {
    if (frame.typ !== TRUST_TYPES.rules || this.#closed) return;
    const data = frame.data as { v?: unknown; rules?: unknown } | null;
    if (data === null || typeof data !== 'object' || data.v !== 1) return;
    this.#track(this.#declarations.record(route.from, rulesHash(data.rules), this.settings.now()))
      .then((recorded) => {
        if (recorded) this.#stats.declarations++;
      })
      .catch((e) => this.#fail(e));
  }

  async #onQuery(data: unknown): Promise<TrustView> {
    this.#stats.queries++;
    const did = typeof data === 'string' ? data : (data as { did?: unknown } | null)?.did;
    if (typeof did !== 'string' || tryPublicKeyFromDid(did) === undefined)
      throw new InvalidArgumentError('trust.get: data must be { did }');
    return this.view(did);
  }

  async read(did: string): Promise<Read> {
    return this.#store.read(did);
  }

  async view(did: string): Promise<TrustView> {
    const { state } = await this.#store.read(did);
    const at = this.settings.now();
    if (state === undefined) {
      const fresh = this.scorer.newState(did, at);
      return { did, score: this.scorer.currentScore(fresh, at), tier: this.scorer.tier(fresh, at), version: 0 };
    }
    return { did, score: this.scorer.currentScore(state, at), tier: this.scorer.tier(state, at), version: state.version };
  }

  /** One change at a time per DID in this process (others are ordered by compare-and-set). */
  #change(did: string, evidence: Evidence | 'decay'): Promise<ApplyResult | undefined> {
    const previous = this.#queues.get(did) ?? Promise.resolve();
    const next = previous.then(
      () => this.#write(did, evidence),
      () => this.#write(did, evidence),
    );
    this.#queues.set(did, next);
    const clear = () => {
      if (this.#queues.get(did) === next) this.#queues.delete(did);
    };
    next.then(clear, clear);
    return next;
  }

  async #write(did: string, evidence: Evidence | 'decay'): Promise<ApplyResult | undefined> {
    for (let attempt = 0; attempt < this.settings.maxAttempts; attempt++) {
      const read = (attempt === 0 ? this.#cache.get(did) : undefined) ?? (await this.#store.read(did));
      const at = this.settings.now();
      const state = read.state ?? this.scorer.newState(did, at);
      let result: ApplyResult;
      let reason: string;
      let ref: string;
      if (evidence === 'decay') {
        // Decay alone changed the tier: store the settled score under a new version, so clients take the push.
        const settled = this.scorer.settle(state, at);
        const before = { score: this.scorer.currentScore(state, state.at), tier: this.scorer.tier(state, state.at) };
        const after = { score: this.scorer.currentScore(settled, at), tier: this.scorer.tier(settled, at) };
        if (read.state === undefined) return undefined;
        if (before.tier === after.tier) {
          // A timer may fire a little early: look again (never sooner than 10 ms).
          this.#schedule(did, state, 10);
          return undefined;
        }
        result = {
          outcome: 'applied',
          changed: true,
          state: { ...settled, version: state.version + 1 },
          delta: settled.score - state.score,
          reason: state.last?.event ?? 'valid_traffic',
          before,
          after,
        };
        reason = 'decay';
        ref = `decay:${at}`;
      } else {
        result = this.scorer.applyEvidence(state, evidence, at);
        reason = result.reason;
        ref = evidence.ref ?? '';
      }
      if (!result.changed) {
        if (result.outcome === 'duplicate') this.#stats.duplicates++;
        else this.#stats.capped++;
        this.#remember(did, read);
        return result;
      }
      const update: TrustUpdate = {
        did,
        score: result.after.score,
        tier: result.after.tier,
        reason,
        ref,
        version: result.state.version,
        at: result.state.at,
      };
      const signed = signFrame(this.settings.key, { sub: this.#updateSubject, typ: TRUST_TYPES.update, data: update });
      let revision: number;
      try {
        revision = await this.#store.write(
          did,
          { schema: 1, state: result.state, update: Buffer.from(signed.bytes).toString('base64') },
          read.revision,
        );
      } catch (error) {
        if (!isConflict(error)) throw error;
        this.#stats.conflicts++;
        this.#cache.delete(did);
        continue;
      }
      this.#remember(did, { state: result.state, revision });
      this.#stats.applied++;
      if (!this.#closed) this.port.publishSigned(this.#updateSubject, TRUST_TYPES.update, update);
      this.#schedule(did, result.state);
      for (const listener of this.#changeListeners) listener({ update, result });
      return result;
    }
    throw new BrokerConflictError(did, this.settings.maxAttempts);
  }

  #remember(did: string, read: Read): void {
    if (!this.#cache.has(did) && this.#cache.size >= MAX_CACHED) this.#cache.delete(this.#cache.keys().next().value!);
    this.#cache.set(did, read);
  }

  /** A timer for the moment decay alone changes this DID's tier (docs/trust.md §4, `nextTierChange`). */
  #schedule(did: string, state: TrustState, minDelayMs = 0): void {
    const existing = this.#timers.get(did);
    if (existing !== undefined) clearTimeout(existing);
    this.#timers.delete(did);
    const when = this.scorer.nextTierChange(state, this.settings.now());
    if (when === undefined || this.#closed) return;
    const delay = when - this.settings.now();
    if (delay > MAX_TIMEOUT) return; // re-scheduled on the next change; documented limitation
    const timer = setTimeout(
      () => {
        this.#timers.delete(did);
        this.#track(this.#change(did, 'decay')).catch((e) => this.#fail(e));
      },
      Math.max(minDelayMs, delay),
    );
    timer.unref();
    this.#timers.set(did, timer);
  }

  stats(): BrokerStats {
    return { ...this.#stats, unattributed: { ...this.#stats.unattributed }, lastInvalid: [...this.#stats.lastInvalid] };
  }

  async idle(): Promise<void> {
    while (this.#pending.size > 0) await Promise.allSettled([...this.#pending]);
  }

  onChange(listener: (change: BrokerChange) => void): () => void {
    this.#changeListeners.add(listener);
    return () => this.#changeListeners.delete(listener);
  }

  onFinding(listener: (finding: Finding, reporter: string) => void): () => void {
    this.#findingListeners.add(listener);
    return () => this.#findingListeners.delete(listener);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const timer of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
    await this.idle();
    for (const stop of this.#stops.splice(0)) await stop();
    await this.agent.leave();
  }
}
