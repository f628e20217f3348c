import type { z } from 'zod';
import { type Tier, tierAtLeast } from '../tiers.ts';
import { safeText } from './detail.ts';
import { RateLimiter } from './rate-limiter.ts';
import { type CompiledRuleSet, compileRules, type PolicyRules } from './rules.ts';

/** Names of the rules a frame can break, as they appear in {@link PolicyRefusal.rule}. */
export const POLICY_RULES = {
  minTier: "the sender's tier is below the rule's minimum",
  allow: 'the sender is neither a listed DID nor announced a listed capability',
  rate: 'the sender exceeded the rate limit',
  maxBytes: 'the frame is larger than the rule allows',
  schema: 'the payload does not match the schema',
} as const;
export type PolicyRuleName = keyof typeof POLICY_RULES;

/** What the receiver knows about one verified frame. Every field but `now` comes from the peer or the trust cache. */
export interface PolicyInput {
  /** DID of the verified signer. */
  readonly from: string;
  /** The frame's message type. */
  readonly typ: string;
  /** Bytes of the whole signed frame. */
  readonly size: number;
  /** The decoded payload. */
  readonly data: unknown;
  /** The sender's tier from the trust cache (a new, unknown sender is `standard`). */
  readonly senderTier: Tier;
  /** Capabilities the sender announced in its presence record. */
  readonly senderCapabilities?: readonly string[];
  /** ms since the epoch; default the engine's clock. */
  readonly now?: number;
}

export interface PolicyAccept {
  readonly ok: true;
}

/**
 * A refusal. `untrusted` when the sender's tier is below a `minTier`;
 * `policy` for every other rule. `evidence` is true when the breach is
 * evidence against the signer that the receiver should report to the broker
 * with the signed frame attached (docs/trust.md §Reporting).
 */
export interface PolicyRefusal {
  readonly ok: false;
  readonly reason: 'policy' | 'untrusted';
  /** The broken rule: `minTier`, `allow`, `rate`, `maxBytes` or `schema`. */
  readonly rule: PolicyRuleName;
  /** Where the rule was declared: `mesh`, or the message type it applies to. */
  readonly scope: string;
  /** Human-readable, at most 1024 characters, control characters escaped. */
  readonly detail: string;
  /** The offending value (a tier, a size, a rate) when it is a number or a tier; absent for `allow` and `schema`. */
  readonly value?: number | string;
  /** The rule's limit, when it has one. */
  readonly limit?: number | string;
  readonly evidence: boolean;
}

export type PolicyResult = PolicyAccept | PolicyRefusal;

export interface PolicyInit {
  /** Rules as data (validated here; see {@link compileRules}). */
  readonly rules: PolicyRules | unknown;
  /** Most senders each rate rule tracks; default 10,000. */
  readonly maxTrackedSenders?: number;
  /** Clock for checks that pass no `now`; default `Date.now`. */
  readonly now?: () => number;
}

/** Checks verified frames against a receiver's rules. Never throws on peer data. */
export interface PolicyEngine {
  check(input: PolicyInput): PolicyResult;
  /** Senders tracked by all rate rules together (for metrics and tests). */
  readonly trackedSenders: number;
}

const ACCEPT: PolicyAccept = Object.freeze({ ok: true });
const MAX_ISSUES = 3;
const MAX_SEGMENT = 64;

/**
 * Creates a {@link PolicyEngine}. Mesh rules apply to every frame, then the
 * rules of the frame's `typ`; the first broken rule is reported. Within a
 * scope rules run cheapest first: minTier, allow, maxBytes, rate, schema (a
 * frame refused earlier does not spend a rate token; an over-rate frame is
 * not schema-checked).
 */
export function createPolicy(init: PolicyInit): PolicyEngine {
  const compiled = compileRules(init.rules);
  const clock = init.now ?? Date.now;
  const limiters = new Map<CompiledRuleSet, RateLimiter>();
  for (const set of [compiled.mesh, ...compiled.types.values()]) {
    if (set.rate) limiters.set(set, new RateLimiter({ ...set.rate, maxSenders: init.maxTrackedSenders }));
  }

  const checkSet = (set: CompiledRuleSet, input: PolicyInput, now: number): PolicyRefusal | undefined => {
    const refuse = (rule: PolicyRuleName, detail: string, extra: Partial<PolicyRefusal> = {}): PolicyRefusal => ({
      ok: false,
      reason: 'policy',
      rule,
      scope: safeText(set.scope, 128),
      detail: safeText(detail),
      evidence: true,
      ...extra,
    });
    if (set.minTier !== undefined && !tierAtLeast(input.senderTier, set.minTier)) {
      return refuse('minTier', `sender tier ${input.senderTier} is below ${set.minTier}`, {
        reason: 'untrusted',
        value: input.senderTier,
        limit: set.minTier,
        evidence: false,
      });
    }
    if (set.allowDids !== undefined || set.allowCapabilities !== undefined) {
      if (!isAllowed(set, input)) return refuse('allow', `sender ${input.from} is not allowed`);
    }
    if (set.maxBytes !== undefined && !(input.size <= set.maxBytes)) {
      return refuse('maxBytes', `frame is ${input.size} bytes, limit ${set.maxBytes}`, { value: input.size, limit: set.maxBytes });
    }
    const limiter = limiters.get(set);
    if (limiter !== undefined && !limiter.take(input.from, now)) {
      const { count, perMs } = set.rate!;
      return refuse('rate', `more than ${count} frames per ${perMs} ms`, { limit: count });
    }
    if (set.schema !== undefined) {
      const failure = schemaFailure(set.schema, input.data);
      if (failure !== undefined) return refuse('schema', failure.detail, { evidence: !failure.threw });
    }
    return undefined;
  };

  return {
    check(input: PolicyInput): PolicyResult {
      try {
        const now = input.now ?? clock();
        const meshRefusal = checkSet(compiled.mesh, input, now);
        if (meshRefusal) return meshRefusal;
        const typed = typeof input.typ === 'string' ? compiled.types.get(input.typ) : undefined;
        if (typed) {
          const typeRefusal = checkSet(typed, input, now);
          if (typeRefusal) return typeRefusal;
        }
        return ACCEPT;
      } catch (error) {
        // Unreachable by design; if a bug throws anyway, refuse (fail closed) without blaming the sender.
        return {
          ok: false,
          reason: 'policy',
          rule: 'schema',
          scope: 'mesh',
          detail: safeText(`policy check failed: ${error instanceof Error ? error.message : 'unknown error'}`),
          evidence: false,
        };
      }
    },
    get trackedSenders(): number {
      let total = 0;
      for (const limiter of limiters.values()) total += limiter.size;
      return total;
    },
  };
}

function isAllowed(set: CompiledRuleSet, input: PolicyInput): boolean {
  if (set.allowDids?.has(input.from)) return true;
  const announced = input.senderCapabilities;
  if (set.allowCapabilities === undefined || !Array.isArray(announced)) return false;
  for (const capability of announced) if (typeof capability === 'string' && set.allowCapabilities.has(capability)) return true;
  return false;
}

function schemaFailure(schema: z.ZodType, data: unknown): { detail: string; threw: boolean } | undefined {
  let result: ReturnType<z.ZodType['safeParse']>;
  try {
    result = schema.safeParse(data);
  } catch (error) {
    return { detail: `schema validator threw: ${error instanceof Error ? error.message.slice(0, 200) : 'non-error value'}`, threw: true };
  }
  if (result.success) return undefined;
  const issues = result.error.issues;
  const parts = issues.slice(0, MAX_ISSUES).map((issue) => {
    const path = issue.path.map((segment) => String(segment).slice(0, MAX_SEGMENT)).join('.');
    return `${path || '(root)'}: ${issue.message.slice(0, 200)}`;
  });
  if (issues.length > MAX_ISSUES) parts.push(`and ${issues.length - MAX_ISSUES} more`);
  return { detail: `payload does not match the schema: ${parts.join('; ')}`, threw: false };
}
