import { createHash } from 'node:crypto';
import {
  agentIdFromDid,
  didFromPublicKey,
  MESSAGE_TYPES,
  type OpenedFrame,
  RESERVED_TYPE_PREFIX,
  type Route,
  StatelessVerifier,
  senderOfSubject,
  toHex,
} from '@trustmesh/protocol';
import { createPolicy, type PolicyEngine, type ReportedFrame, TRUST_KINDS, TRUST_TYPES, type TrustReport } from '@trustmesh/trust';
import { attribute, type Rejection } from '../scoring/attribution.ts';
import type { PenaltyEvent } from '../scoring/events.ts';
import { checkDelegation } from './delegation.ts';

/**
 * What one report proves, found by the broker itself:
 * - `attributed`: a penalty event against `did`, with the evidence's identity
 *   (`key`, so many reports of one frame count once) and where it is (`ref`);
 * - `unattributed`: a real rejection that the blame rule puts on nobody
 *   (a forgery claiming X, a replay of X's frame in open mode, ...): counted, no score changes;
 * - `invalid`: the report proves nothing (evidence that does not verify, or does not break the rule).
 */
export type Finding =
  | { readonly kind: 'attributed'; readonly did: string; readonly event: PenaltyEvent; readonly key: string; readonly ref: string }
  | { readonly kind: 'unattributed'; readonly cause: string; readonly claimed?: string; readonly publisher?: string }
  | { readonly kind: 'invalid'; readonly detail: string };

/** The capture stream, read to prove that bytes were published on a subject (secure mode). */
export interface CaptureReader {
  /** The subject and bytes stored at `seq`, or undefined. */
  read(seq: number): Promise<{ subject: string; data: Uint8Array } | undefined>;
}

export interface EvidenceContext {
  readonly mesh: string;
  /** The report's signer, proven by the report's own signature. */
  readonly reporter: string;
  readonly now: number;
  readonly windowMs: number;
  readonly secure: boolean;
  /** The reporter's declared rules in force at time `t` (hash of their JSON), per the broker's own record. */
  readonly declaredAt: (reporterAgentId: string, t: number) => Promise<string | undefined>;
  /** How long a declaration must have been public before a frame can break it. */
  readonly declarationMarginMs: number;
  /** Capabilities a DID announced in presence, as the broker saw it; undefined if the broker does not know it. */
  readonly capabilitiesOf: (did: string) => readonly string[] | undefined;
  readonly capture: CaptureReader | undefined;
}

const invalid = (detail: string): Finding => ({ kind: 'invalid', detail });
const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');
/** The frame's signature: identifies a frame (Ed25519 is deterministic; S < L is enforced). */
const signatureOf = (raw: Uint8Array): string => toHex(raw.subarray(33, 97));

export const rulesHash = (rules: unknown): string => createHash('sha256').update(JSON.stringify(rules)).digest('hex');

const publisherOf = (subject: string): string | undefined => {
  const token = senderOfSubject(subject);
  return /^z6Mk[1-9A-HJ-NP-Za-km-z]{40,60}$/.test(token) ? `did:key:${token}` : undefined;
};

/** The header key as a DID, if the frame has one: what a forgery claims. */
const claimedOf = (frame: Uint8Array): string | undefined => {
  if (frame.length < 33) return undefined;
  try {
    return didFromPublicKey(frame.subarray(1, 33));
  } catch {
    return undefined;
  }
};

/**
 * The receiver rules of docs/protocol.md §10 that the stateless stage does not
 * check but that only the signer can break: a `msg`, `req` or `rep` frame
 * without `aud`; an application `msg`/`req` with a reserved type; a reply of
 * another type than `tm.reply` / `tm.error`.
 */
function inboxFault(frame: OpenedFrame, route: Route): string | undefined {
  const kind = route.kind;
  if (kind !== 'msg' && kind !== 'req' && kind !== 'rep') return undefined;
  if (frame.aud === undefined) return `a ${kind} frame without aud`;
  if (kind !== 'rep' && frame.typ.startsWith(RESERVED_TYPE_PREFIX)) return `reserved type on a ${kind} subject`;
  if (kind === 'rep' && frame.typ !== MESSAGE_TYPES.reply && frame.typ !== MESSAGE_TYPES.error) return 'a reply of a non-reply type';
  return undefined;
}

/** Checks reports with the stateless stage and the blame rule. One instance per broker; never throws on report data. */
export class EvidenceChecker {
  private readonly stateless = new StatelessVerifier();
  private readonly engines = new Map<string, PolicyEngine>();

  async check(report: TrustReport, ctx: EvidenceContext): Promise<Finding[]> {
    try {
      for (const item of report.frames) {
        if (!item.subject.startsWith(`tm.${ctx.mesh}.`)) return [invalid('evidence from another mesh')];
      }
      switch (report.claim) {
        case 'protocol':
          return report.frames.length === 1 ? [await this.protocol(report.frames[0]!, ctx)] : [invalid('protocol: one frame')];
        case 'equivocation':
          return [this.equivocation(report.frames)];
        case 'policy':
          return [await this.policy(report, ctx)];
        case 'rejection':
          return Promise.all(report.frames.map((item, i) => this.rejection(item, report, i, ctx)));
        case 'delegation':
          return [checkDelegation(report, ctx, this.stateless)];
      }
    } catch (error) {
      return [invalid(`evidence check failed: ${error instanceof Error ? error.message.slice(0, 200) : 'unknown'}`)];
    }
  }

  private attributed(rejection: Rejection, raw: Uint8Array, ctx: EvidenceContext, ref?: string): Finding {
    const verdict = attribute(rejection, { secure: ctx.secure });
    if (verdict.outcome === 'unattributed') return { kind: 'unattributed', cause: verdict.cause, ...pick(verdict) };
    return {
      kind: 'attributed',
      did: verdict.did,
      event: verdict.event,
      key: `${verdict.event}:${signatureOf(raw)}`,
      ref: ref ?? `frame:${sha256(raw)}`,
    };
  }

  private async protocol(item: ReportedFrame, ctx: EvidenceContext): Promise<Finding> {
    const r = this.stateless.verify(item.frame, item.subject);
    const publisher = publisherOf(item.subject);
    if (!r.ok) {
      const rejection: Rejection = { reason: r.reason, claimed: claimedOf(item.frame), publisher };
      if (r.blame === 'signer' && r.signedBy !== undefined) return this.attributed({ ...rejection, signer: r.signedBy }, item.frame, ctx);
      return this.publisherFault(rejection, [item], ctx);
    }
    const frame = r.frame;
    if (frame.iat > ctx.now + ctx.windowMs) return this.attributed({ reason: 'future', signer: frame.iss, publisher }, item.frame, ctx);
    if (inboxFault(frame, r.route) !== undefined)
      return this.attributed({ reason: 'bad_frame', signer: frame.iss, publisher }, item.frame, ctx);
    return invalid('protocol: the frame is valid; no signer fault found');
  }

  private equivocation(frames: readonly ReportedFrame[]): Finding {
    if (frames.length !== 2) return invalid('equivocation: two frames');
    const [a, b] = frames.map((item) => this.stateless.verify(item.frame, item.subject));
    if (!a!.ok || !b!.ok) return invalid('equivocation: a frame does not verify');
    const fa = a!.frame;
    const fb = b!.frame;
    if (fa.iss !== fb.iss) return invalid('equivocation: two signers');
    if (toHex(fa.id) !== toHex(fb.id)) return invalid('equivocation: two ids');
    if (Buffer.compare(fa.raw, fb.raw) === 0) return invalid('equivocation: the same frame twice (a replay, not an equivocation)');
    return {
      kind: 'attributed',
      did: fa.iss,
      event: 'equivocation',
      key: `equivocation:${toHex(fa.id)}`,
      ref: `frames:${sha256(fa.raw)},${sha256(fb.raw)}`,
    };
  }

  private async policy(report: TrustReport, ctx: EvidenceContext): Promise<Finding> {
    if (report.frames.length !== 1) return invalid('policy: one frame');
    if (report.declaration === undefined) return invalid('policy: no rules declaration');
    const reporterId = agentIdFromDid(ctx.reporter);
    const decl = this.stateless.verify(report.declaration, `tm.${ctx.mesh}.${TRUST_KINDS.rules}.${reporterId}`);
    if (!decl.ok || decl.frame.iss !== ctx.reporter || decl.frame.typ !== TRUST_TYPES.rules)
      return invalid('policy: not a rules declaration signed by the reporter');
    const data = decl.frame.data as { v?: unknown; rules?: unknown } | null;
    if (data === null || typeof data !== 'object' || data.v !== 1) return invalid('policy: bad declaration data');
    const item = report.frames[0]!;
    const r = this.stateless.verify(item.frame, item.subject);
    if (!r.ok) return invalid(`policy: the frame does not verify (${r.reason})`);
    const frame = r.frame;
    if (frame.aud !== ctx.reporter) return invalid('policy: the frame was not addressed to the reporter');
    const hash = rulesHash(data.rules);
    const inForce = await ctx.declaredAt(reporterId, frame.iat - ctx.declarationMarginMs);
    if (inForce !== hash) return invalid('policy: these rules were not the reporter’s published rules when the frame was signed');
    const engine = this.engine(hash, data.rules);
    if (engine === undefined) return invalid('policy: the declared rules do not compile');
    const verdict = engine.check({
      from: frame.iss,
      typ: frame.typ,
      size: frame.raw.length,
      data: frame.data,
      // Tier rules are not evidence; rate rules were removed (one frame cannot prove a rate).
      senderTier: 'verified_partner',
      senderCapabilities: ctx.capabilitiesOf(frame.iss) ?? [],
      now: ctx.now,
    });
    if (verdict.ok || !verdict.evidence) return invalid('policy: the frame does not break the declared rules');
    if (verdict.rule === 'allow' && ctx.capabilitiesOf(frame.iss) === undefined && usesCapabilities(data.rules, verdict.scope))
      return invalid('policy: the sender’s announced capabilities are unknown to the broker');
    return {
      kind: 'attributed',
      did: frame.iss,
      event: 'policy_violation',
      key: `policy_violation:${signatureOf(frame.raw)}`,
      ref: `frame:${sha256(frame.raw)}`,
    };
  }

  private engine(hash: string, rules: unknown): PolicyEngine | undefined {
    let engine = this.engines.get(hash);
    if (engine === undefined) {
      try {
        engine = createPolicy({ rules: withoutRates(rules) });
      } catch {
        return undefined;
      }
      if (this.engines.size >= 256) this.engines.delete(this.engines.keys().next().value!);
      this.engines.set(hash, engine);
    }
    return engine;
  }

  /** Anything else the reporter refused: only what the frame proves by itself counts. */
  private async rejection(item: ReportedFrame, report: TrustReport, index: number, ctx: EvidenceContext): Promise<Finding> {
    const r = this.stateless.verify(item.frame, item.subject);
    const publisher = publisherOf(item.subject);
    if (!r.ok) {
      const rejection: Rejection = { reason: r.reason, claimed: claimedOf(item.frame), publisher };
      if (r.blame === 'signer' && r.signedBy !== undefined) return this.attributed({ ...rejection, signer: r.signedBy }, item.frame, ctx);
      return this.publisherFault(rejection, [item], ctx);
    }
    // A valid frame: the reporter says it was a replay (or stale, or misaddressed). That is the publisher's doing, never the signer's.
    const reason = report.reason ?? 'replay';
    if (reason === 'replay' && index === 1 && report.frames.length === 2) {
      return this.publisherFault({ reason, claimed: r.frame.iss, publisher }, report.frames, ctx);
    }
    if (reason !== 'replay' && reason !== 'stale' && reason !== 'audience_mismatch' && reason !== 'unsolicited')
      return invalid('rejection: the frame is valid and the reason is not one a valid frame can have');
    if (reason === 'replay' && report.frames.length === 2) return invalid('replay: counted once, on the second copy');
    return { kind: 'unattributed', cause: reason, claimed: r.frame.iss, ...(publisher ? { publisher } : {}) };
  }

  /**
   * Publisher-blamed rejections (bad signature, replay). In secure mode the
   * subject proves the publishing connection, but only if the broker sees
   * for itself that these bytes were published on that subject: it reads
   * them back from the capture stream at the reported positions. Otherwise,
   * and always in open mode, unattributed.
   */
  private async publisherFault(rejection: Rejection, items: readonly ReportedFrame[], ctx: EvidenceContext): Promise<Finding> {
    const unattributed: Finding = {
      kind: 'unattributed',
      cause: rejection.reason,
      ...(rejection.claimed ? { claimed: rejection.claimed } : {}),
      ...(rejection.publisher ? { publisher: rejection.publisher } : {}),
    };
    if (!ctx.secure || ctx.capture === undefined || rejection.publisher === undefined) return unattributed;
    if (rejection.reason === 'replay') {
      const [a, b] = items;
      if (a === undefined || b === undefined || a.seq === undefined || b.seq === undefined || a.seq === b.seq) return unattributed;
      if (a.subject !== b.subject || Buffer.compare(a.frame, b.frame) !== 0) return invalid('replay: the two copies differ');
    }
    for (const item of items) {
      if (item.seq === undefined) return unattributed;
      const stored = await ctx.capture.read(item.seq);
      if (stored === undefined || stored.subject !== item.subject || Buffer.compare(stored.data, item.frame) !== 0)
        return invalid('the capture stream does not hold these bytes on this subject at that position');
    }
    const last = items[items.length - 1]!;
    return this.attributed(rejection, last.frame, ctx, `audit:${items.map((i) => i.seq).join(',')}`);
  }
}

function pick(v: { claimed?: string; publisher?: string }): { claimed?: string; publisher?: string } {
  return { ...(v.claimed ? { claimed: v.claimed } : {}), ...(v.publisher ? { publisher: v.publisher } : {}) };
}

/** The rules with every `rate` removed: a rate is a fact about many frames, not provable from one. */
function withoutRates(rules: unknown): unknown {
  if (rules === null || typeof rules !== 'object') return rules;
  const r = rules as { mesh?: Record<string, unknown>; types?: Record<string, Record<string, unknown>> };
  const strip = (set: Record<string, unknown> | undefined) => {
    if (set === null || typeof set !== 'object') return set;
    const { rate: _, ...rest } = set;
    return rest;
  };
  const out: Record<string, unknown> = { ...r };
  if (r.mesh !== undefined) out.mesh = strip(r.mesh);
  if (r.types !== undefined && r.types !== null && typeof r.types === 'object')
    out.types = Object.fromEntries(Object.entries(r.types).map(([k, v]) => [k, strip(v)]));
  return out;
}

function usesCapabilities(rules: unknown, scope: string): boolean {
  const r = rules as { mesh?: { allow?: { capabilities?: unknown } }; types?: Record<string, { allow?: { capabilities?: unknown } }> };
  const set = scope === 'mesh' ? r?.mesh : r?.types?.[scope];
  return Array.isArray(set?.allow?.capabilities) && set.allow.capabilities.length > 0;
}
