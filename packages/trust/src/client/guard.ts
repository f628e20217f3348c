import { Kvm } from '@nats-io/kv';
import { readBucket } from '@trustmesh/secure';
import type { AgentExtension, ExtensionPort, InboundFrame, OutboundMessage, Refusal, RejectionEvent } from '@trustmesh/client';
import {
  agentIdFromDid,
  InvalidArgumentError,
  meshBuckets,
  StatelessVerifier,
  type Verified,
  toHex,
  tryPublicKeyFromDid,
} from '@trustmesh/protocol';
import { createPolicy, type PolicyEngine } from '../policy/engine.ts';
import type { PolicyRules } from '../policy/rules.ts';
import { DEFAULT_TIER_LADDER, type Tier, type TierLadder } from '../tiers.ts';
import { ScoreCache } from './cache.ts';
import { UntrustedPeerError } from './errors.ts';
import { RecentFrames } from './recent-frames.ts';
import {
  NON_AGENT_KEY_PREFIX,
  parseTrustUpdate,
  type ReportedFrame,
  type StoredScore,
  TRUST_KINDS,
  TRUST_TYPES,
  type TrustReport,
  type TrustUpdate,
} from './wire.ts';

export interface TrustGuardInit {
  /** DIDs of the brokers whose updates this client accepts. At least one. */
  brokers: readonly string[];
  /**
   * This receiver's policy rules (docs/trust.md §2). Without rules, only the
   * refuse line applies (frames from `untrusted` senders are refused).
   */
  policy?: PolicyRules;
  /**
   * Report evidence to the first broker: policy breaches in frames addressed to
   * this agent (with the rules declaration), and rejections that blame the
   * signer (protocol violations, equivocation with both frames). Default false.
   */
  reportViolations?: boolean;
  /**
   * Publish the rules as a signed declaration on `tm.<mesh>.rules.<agent>` at
   * join and every `declareEveryMs` (default 60 s), so the broker can re-check
   * reported breaches against them. Default: true when `policy` is given.
   */
  declare?: boolean;
  declareEveryMs?: number;
  /** Capabilities a sender announced in presence, for `allow.capabilities` rules (the extension port does not expose them). */
  capabilitiesOf?: (did: string) => readonly string[] | undefined;
  ladder?: TierLadder;
  /** Most reports sent per second (token bucket); default 50. */
  maxReportsPerSecond?: number;
  now?: () => number;
}

export interface TrustGuardStats {
  /** Updates applied from broadcasts and from the bucket at join. */
  updates: number;
  primed: number;
  /** Updates ignored: unknown signer, bad data, or not newer. */
  ignored: number;
  reportsSent: number;
  reportsDropped: number;
  declarations: number;
  /** Why priming from the bucket did not happen (e.g. no bucket yet); undefined when it did. */
  primeProblem: string | undefined;
}

/** The trust extension: plug it into `joinMesh({ extensions: [guard] })`. */
export interface TrustGuard extends AgentExtension {
  /** The cached score of a DID (500 for one the cache has no update for). */
  trustOf(did: string): number;
  tierOf(did: string): Tier;
  /** The newest update held for a DID. */
  updateOf(did: string): TrustUpdate | undefined;
  /**
   * Reads the trust bucket again and applies what is newer than the cache. Pushes are
   * core NATS (at most once): call this after a reconnect, or when `stats` shows
   * dropped frames, to catch up on missed updates.
   */
  resync(): Promise<void>;
  /** Called for every update applied; returns the function that stops listening. */
  onUpdate(listener: (update: TrustUpdate) => void): () => void;
  readonly stats: TrustGuardStats;
}

const PROTOCOL_REASONS = new Set(['bad_frame', 'bad_version', 'issuer_mismatch', 'future']);

/**
 * Creates the client side of trust: a score cache primed from the trust
 * bucket at join and kept current from broker broadcasts; an inbound guard
 * (refuse line and policy rules), an outbound guard (no sends to untrusted
 * peers) and, optionally, evidence reports to the broker.
 */
export function trustGuard(init: TrustGuardInit): TrustGuard {
  if (!Array.isArray(init.brokers) || init.brokers.length === 0)
    throw new InvalidArgumentError('trustGuard: brokers must list at least one DID');
  for (const broker of init.brokers) {
    if (typeof broker !== 'string' || tryPublicKeyFromDid(broker) === undefined)
      throw new InvalidArgumentError(`trustGuard: not a did:key: ${String(broker).slice(0, 80)}`);
  }
  const brokers = new Set(init.brokers);
  const ladder = init.ladder ?? DEFAULT_TIER_LADDER;
  const now = init.now ?? Date.now;
  const cache = new ScoreCache(ladder);
  const engine: PolicyEngine | undefined = init.policy === undefined ? undefined : createPolicy({ rules: init.policy, now });
  const declarable = init.policy !== undefined && isPlainJson(init.policy);
  const declare = init.declare ?? declarable;
  if (declare && !declarable) throw new InvalidArgumentError('trustGuard: rules with zod schemas cannot be declared; use JSON Schema');
  const recent = new RecentFrames();
  const reported = new Set<string>();
  const listeners = new Set<(update: TrustUpdate) => void>();
  const stateless = new StatelessVerifier();
  const stats: TrustGuardStats = {
    updates: 0,
    primed: 0,
    ignored: 0,
    reportsSent: 0,
    reportsDropped: 0,
    declarations: 0,
    primeProblem: undefined,
  };
  const reportRate = init.maxReportsPerSecond ?? 50;
  let reportTokens = reportRate;
  let reportAt = now();
  let port: ExtensionPort | undefined;
  let declaration: Uint8Array | undefined;
  const stops: (() => unknown)[] = [];

  const apply = (update: TrustUpdate, primed: boolean): void => {
    if (!cache.apply(update)) {
      stats.ignored++;
      return;
    }
    if (primed) stats.primed++;
    else stats.updates++;
    for (const listener of listeners) {
      try {
        listener(update);
      } catch {
        // a listener's failure is its own
      }
    }
  };

  const onBroadcast = ({ frame }: InboundFrame): void => {
    const update = brokers.has(frame.iss) && frame.typ === TRUST_TYPES.update ? parseTrustUpdate(frame.data) : undefined;
    if (update === undefined) {
      stats.ignored++;
      return;
    }
    apply(update, false);
  };

  const report = (body: TrustReport, dedupe: string): void => {
    if (port === undefined || init.reportViolations !== true) return;
    if (reported.has(dedupe)) return;
    const t = now();
    reportTokens = Math.min(reportRate, reportTokens + ((t - reportAt) * reportRate) / 1000);
    reportAt = Math.max(reportAt, t);
    if (reportTokens < 1) {
      stats.reportsDropped++;
      return;
    }
    reportTokens--;
    if (reported.size >= 4096) reported.delete(reported.values().next().value!);
    reported.add(dedupe);
    const broker = init.brokers[0]!;
    try {
      port.publishSigned(port.subjects.message(agentIdFromDid(broker), port.agentId), TRUST_TYPES.report, body, { aud: broker });
      stats.reportsSent++;
    } catch {
      stats.reportsDropped++; // too large for one frame, or the agent is closing
    }
  };

  const onRejected = (event: RejectionEvent): void => {
    if (event.blame !== 'signer' || event.evidence === undefined || event.signer === undefined) return;
    if (brokers.has(event.signer)) return;
    const frames: ReportedFrame[] = [{ subject: event.subject, frame: event.evidence }];
    if (event.reason === 'equivocation') {
      const second = stateless.verify(event.evidence, event.subject);
      if (!second.ok) return;
      const first = recent.get(second.frame.iss, second.frame.id);
      if (first === undefined) return; // the first frame is gone from memory: nothing the broker could check
      frames.unshift({ subject: first.subject, frame: first.raw });
      report({ v: 1, claim: 'equivocation', reason: 'equivocation', frames }, `eq ${RecentFrames.key(second.frame.iss, second.frame.id)}`);
      return;
    }
    if (PROTOCOL_REASONS.has(event.reason)) {
      report({ v: 1, claim: 'protocol', reason: event.reason, frames }, `pv ${toHex(event.evidence.subarray(33, 97))}`);
    }
  };

  const publishDeclaration = (): void => {
    if (port === undefined || init.policy === undefined) return;
    try {
      // Reports carry the declaration's exact bytes.
      declaration = port.publishSigned(port.subjects.broadcast(TRUST_KINDS.rules, port.agentId), TRUST_TYPES.rules, {
        v: 1,
        rules: init.policy,
      }).bytes;
      stats.declarations++;
    } catch {
      // closing, or the connection is gone: the next interval tries again
    }
  };

  const prime = async (p: ExtensionPort): Promise<void> => {
    const subjects = [...brokers].map((did) => p.subjects.broadcast(TRUST_KINDS.update, agentIdFromDid(did)));
    try {
      const bucket = meshBuckets(p.mesh).trust;
      const kv = await new Kvm(p.connection).open(bucket);
      const status = await kv.status();
      if (status.values === 0) return;
      const take = (key: string, value: Uint8Array) => {
        if (key.startsWith(NON_AGENT_KEY_PREFIX)) return;
        const update = storedUpdate(value, subjects, brokers, stateless);
        if (update !== undefined) apply(update, true);
      };
      if (p.secure) {
        // Secure mode withholds consumers from agents: read the last values record by record.
        for (const { key, value } of await readBucket(p.connection, bucket)) take(key, value);
        return;
      }
      // One pass over the last values: `values` bounds it (a watch's `delta` is not a reliable end marker).
      const watch = await kv.watch();
      let seen = 0;
      const deadline = setTimeout(() => watch.stop(), 5_000);
      for await (const entry of watch) {
        seen++;
        if (entry.operation === 'PUT') take(entry.key, entry.value);
        if (seen >= status.values) break;
      }
      clearTimeout(deadline);
      watch.stop();
    } catch (error) {
      stats.primeProblem = `trust bucket not read (${error instanceof Error ? error.message : typeof error}); scores come from broadcasts only`;
    }
  };

  const inbound = (input: InboundFrame): Refusal | undefined => {
    const { frame, subject } = input;
    const from = frame.iss;
    if (brokers.has(from)) return undefined;
    recent.remember(from, frame.id, subject, frame.raw);
    const tier = cache.tier(from);
    if (engine === undefined) {
      if (tier !== 'untrusted') return undefined;
      return { reason: 'untrusted', detail: `sender is untrusted (score ${cache.score(from)})`, blame: 'none' };
    }
    const verdict = engine.check({
      from,
      typ: frame.typ,
      size: frame.raw.length,
      data: frame.data,
      senderTier: tier,
      senderCapabilities: init.capabilitiesOf?.(from),
      now: now(),
    });
    if (verdict.ok) return undefined;
    if (verdict.reason === 'untrusted') return { reason: 'untrusted', detail: verdict.detail, blame: 'none' };
    // A rate breach is a fact about many frames; the broker re-checks one frame at a time, so it is refused, not reported.
    if (verdict.evidence && verdict.rule !== 'rate' && port !== undefined && frame.aud === port.did && declaration !== undefined) {
      report(
        { v: 1, claim: 'policy', reason: 'policy', frames: [{ subject, frame: frame.raw }], declaration },
        `pol ${RecentFrames.key(from, frame.id)}`,
      );
    }
    return {
      reason: 'policy',
      detail: `${verdict.rule} (${verdict.scope}): ${verdict.detail}`,
      blame: verdict.evidence ? 'signer' : 'none',
    };
  };

  const outbound = (message: OutboundMessage): void => {
    const to = message.to;
    if (to === undefined || message.kind === 'rep' || message.kind === 'presence' || brokers.has(to.did)) return;
    const score = cache.score(to.did);
    const tier = cache.tier(to.did);
    if (tier === 'untrusted') throw new UntrustedPeerError(to.did, score, tier);
  };

  return {
    name: 'trust',
    inbound,
    outbound,
    async attach(p: ExtensionPort): Promise<void> {
      port = p;
      // Subscribe first, then read the bucket: an update in between is not missed (versions order both).
      stops.push(p.subscribe(p.subjects.broadcast(TRUST_KINDS.update, '*'), onBroadcast, { guards: false }));
      stops.push(p.on('rejected', onRejected));
      await prime(p);
      if (declare) {
        publishDeclaration();
        const every = init.declareEveryMs ?? 60_000;
        const timer = setInterval(publishDeclaration, every);
        timer.unref();
        stops.push(() => clearInterval(timer));
      }
    },
    async detach(): Promise<void> {
      for (const stop of stops.splice(0)) await Promise.resolve(stop()).catch(() => undefined);
      port = undefined;
    },
    async resync(): Promise<void> {
      if (port === undefined) throw new InvalidArgumentError('trustGuard: resync() before the agent joined');
      stats.primeProblem = undefined;
      await prime(port);
    },
    trustOf: (did) => cache.score(did),
    tierOf: (did) => cache.tier(did),
    updateOf: (did) => cache.get(did),
    onUpdate(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    stats,
  };
}

/** The broker-signed update in a stored score, if its signature verifies and a configured broker made it. */
function storedUpdate(
  value: Uint8Array,
  subjects: readonly string[],
  brokers: ReadonlySet<string>,
  stateless: StatelessVerifier,
): TrustUpdate | undefined {
  let stored: StoredScore;
  try {
    stored = JSON.parse(new TextDecoder().decode(value)) as StoredScore;
  } catch {
    return undefined;
  }
  if (stored === null || typeof stored !== 'object' || typeof stored.update !== 'string') return undefined;
  const bytes = new Uint8Array(Buffer.from(stored.update, 'base64'));
  for (const subject of subjects) {
    const result = stateless.verify(bytes, subject);
    if (!result.ok) continue;
    const verified = result as Verified;
    if (!brokers.has(verified.frame.iss) || verified.frame.typ !== TRUST_TYPES.update) return undefined;
    return parseTrustUpdate(verified.frame.data);
  }
  return undefined;
}

function isPlainJson(value: unknown, depth = 0): boolean {
  if (depth > 64) return false;
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return true;
  if (typeof value === 'number') return Number.isFinite(value);
  if (Array.isArray(value)) return value.every((v) => isPlainJson(v, depth + 1));
  if (typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype)
    return Object.values(value as object).every((v) => isPlainJson(v, depth + 1));
  return false;
}
