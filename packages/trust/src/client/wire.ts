import { MAX_TOKEN_BYTES } from '@trustmesh/protocol';
import { z } from 'zod';
import { TIER_NAMES, type Tier } from '../tiers.ts';

/**
 * The trust wire: what the broker pushes and stores, what clients report and
 * ask. Shared by the broker (`@trustmesh/broker`) and the client guard, so it
 * lives here, below both. docs/trust.md §9.
 *
 * Subjects (the last token is always the publisher's agent id):
 * - `tm.<mesh>.trust.<broker>`: score updates, broadcast by a broker, typ {@link TRUST_TYPES.update}.
 * - `tm.<mesh>.rules.<agent>`: an agent's policy rules declaration, typ {@link TRUST_TYPES.rules}.
 * - `tm.<mesh>.msg.<broker>.<agent>`: reports, typ {@link TRUST_TYPES.report} (ordinary one-way messages).
 * - `tm.<mesh>.req.<broker>.<agent>`: score queries, typ {@link TRUST_TYPES.get} (ordinary requests).
 */
export const TRUST_KINDS = { update: 'trust', rules: 'rules' } as const;

export const TRUST_TYPES = {
  /** A score change, signed by a broker. */
  update: 'trust.update',
  /** A receiver's declared policy rules, signed by the receiver. */
  rules: 'trust.rules',
  /** Evidence sent to a broker. */
  report: 'trust.report',
  /** A score query; answered with {@link TrustView}. */
  get: 'trust.get',
} as const;

/** The reason an update carries: a score event code (docs/trust.md §5), or `decay` when decay alone changed the tier. */
export type UpdateReason = string;

/** One score change as pushed on `tm.<mesh>.trust.<broker>` and stored (signed) in the trust bucket. */
export interface TrustUpdate {
  readonly did: string;
  /** The enforced (rounded) score after the change. */
  readonly score: number;
  readonly tier: Tier;
  readonly reason: UpdateReason;
  /** Where the evidence is: `frame:<sha256 hex>` of the offending frame, `audit:<seq>`, `presence:<id hex>`, `token:<token hash hex>`. */
  readonly ref: string;
  /** The state's version: clients apply an update only if it is newer than the one they hold. */
  readonly version: number;
  /** Broker time of the change, ms. */
  readonly at: number;
}

const did = z.string().min(8).max(256).startsWith('did:key:');

const updateSchema = z.strictObject({
  did,
  score: z.number().int().min(0).max(1000),
  tier: z.enum(TIER_NAMES),
  reason: z.string().min(1).max(64),
  ref: z.string().max(1024),
  version: z.number().int().min(1),
  at: z.number().int().min(0),
});

/** Reads an update's data; undefined for anything else. Never throws. */
export function parseTrustUpdate(data: unknown): TrustUpdate | undefined {
  const parsed = updateSchema.safeParse(data);
  return parsed.success ? (parsed.data as TrustUpdate) : undefined;
}

/** The answer to {@link TRUST_TYPES.get}: a DID never scored is at the baseline, version 0. */
export interface TrustView {
  readonly did: string;
  readonly score: number;
  readonly tier: Tier;
  readonly version: number;
}

/** One reported frame: the exact bytes and the subject they arrived on; `seq` is their audit capture position, if known. */
export interface ReportedFrame {
  readonly subject: string;
  readonly frame: Uint8Array;
  readonly seq?: number;
}

/**
 * What a report claims. The broker checks each claim itself; the claim only
 * says which check to run.
 * - `protocol`: the frame was refused for a signer fault (bad body, issuer mismatch, future iat).
 * - `equivocation`: two different frames signed by one key with one id (two frames).
 * - `policy`: the frame breaks the reporter's declared rules (carries `declaration`).
 * - `rejection`: any other refusal (bad signature, replay, stale...): checked, then counted as unattributed unless secure mode proves the publisher.
 * - `delegation`: a capability link that breaks a chain rule its issuer is to blame for (carries `tokens`;
 *   `frames` holds the task frame that carried it, or nothing). docs/trust.md §9.7.
 */
export const REPORT_CLAIMS = ['protocol', 'equivocation', 'policy', 'rejection', 'delegation'] as const;
export type ReportClaim = (typeof REPORT_CLAIMS)[number];

/** `trust.report` data. */
export interface TrustReport {
  readonly v: 1;
  readonly claim: ReportClaim;
  /** The reporter's reason code for the refusal (informational; the broker derives its own). */
  readonly reason?: string;
  /** The offending frame(s): one, or two for equivocation; for `delegation`, the task frame or none. */
  readonly frames: readonly ReportedFrame[];
  /** For `policy`: the reporter's signed rules declaration frame, as published on `tm.<mesh>.rules.<reporter>`. */
  readonly declaration?: Uint8Array;
  /** For `delegation` (and only there): `[parent token, offending token]`, the exact token bytes. */
  readonly tokens?: readonly Uint8Array[];
}

/** Most frames one report may carry. */
export const MAX_REPORT_FRAMES = 8;

const bytes = z.custom<Uint8Array>((v) => v instanceof Uint8Array);

const token = z.custom<Uint8Array>((v) => v instanceof Uint8Array && v.length <= MAX_TOKEN_BYTES);

const reportSchema = z
  .strictObject({
    v: z.literal(1),
    claim: z.enum(REPORT_CLAIMS),
    reason: z.string().max(64).optional(),
    frames: z
      .array(z.strictObject({ subject: z.string().min(1).max(512), frame: bytes, seq: z.number().int().min(1).optional() }))
      .max(MAX_REPORT_FRAMES),
    declaration: bytes.optional(),
    tokens: z.array(token).length(2).optional(),
  })
  .superRefine((report, ctx) => {
    // A delegation report proves its claim with two tokens; every other claim with at least one frame.
    if (report.claim === 'delegation') {
      if (report.tokens === undefined)
        ctx.addIssue({ code: 'custom', path: ['tokens'], message: 'a delegation report carries two tokens' });
      if (report.frames.length > 1)
        ctx.addIssue({ code: 'custom', path: ['frames'], message: 'a delegation report carries at most the task frame' });
    } else {
      if (report.frames.length === 0) ctx.addIssue({ code: 'custom', path: ['frames'], message: 'at least one frame' });
      if (report.tokens !== undefined) ctx.addIssue({ code: 'custom', path: ['tokens'], message: 'tokens belong to delegation reports' });
    }
  });

export type ParseReportResult = { ok: true; report: TrustReport } | { ok: false; detail: string };

/** Reads `trust.report` data from a peer. Never throws. */
export function parseTrustReport(data: unknown): ParseReportResult {
  const parsed = reportSchema.safeParse(data);
  if (parsed.success) return { ok: true, report: parsed.data as TrustReport };
  const issue = parsed.error.issues[0]!;
  return { ok: false, detail: `${issue.path.map(String).join('.') || '(root)'}: ${issue.message}`.slice(0, 200) };
}

/** `trust.rules` data: the rules, as plain JSON (JSON Schema payload schemas only). */
export interface RulesDeclaration {
  readonly v: 1;
  readonly rules: unknown;
}

/**
 * The value stored under an agent's id in the trust bucket (JSON). `state` is
 * the broker's scoring state; `update` is a broker-signed update frame (base64)
 * for the same version, so a client priming its cache from the bucket checks a
 * signature instead of trusting whoever could write the bucket.
 */
export interface StoredScore {
  readonly schema: 1;
  readonly state: unknown;
  readonly update: string;
}

/** Keys of the trust bucket that are not agent ids start with this (e.g. `rules.<agent>`). */
export const NON_AGENT_KEY_PREFIX = 'rules.';
