/**
 * The `delegation` claim (docs/trust.md §9.7): a capability link whose issuer
 * signed more than its parent grants. The token pair proves it by itself
 * (docs/delegation.md §7): the broker re-checks it with `verifyEvidence` and
 * needs nobody's word.
 */
import { TASK_TYPES } from '@trustmesh/client';
import { type ChainRejectReason, equalBytes, type StatelessVerifier, toHex, tokenHash, verifyEvidence } from '@trustmesh/protocol';
import type { TrustReport } from '@trustmesh/trust';
import type { PenaltyEvent } from '../scoring/events.ts';
import type { EvidenceContext, Finding } from './evidence.ts';

/**
 * The penalty for each chain rule a link's issuer can break. `broken_link` is
 * attributable only when the issuer delegated a parent granted to another
 * agent: it claimed a scope it was never given, so it counts as an escalation.
 */
export const DELEGATION_EVENTS: Readonly<Partial<Record<ChainRejectReason, PenaltyEvent>>> = {
  scope_escalation: 'scope_escalation',
  broken_link: 'scope_escalation',
  expiry_extended: 'expiry_extended',
  depth_exceeded: 'depth_exceeded',
};

const invalid = (detail: string): Finding => ({ kind: 'invalid', detail: `delegation: ${detail}` });

/** Checks a `delegation` report. Never throws on report data. */
export function checkDelegation(report: TrustReport, ctx: EvidenceContext, stateless: StatelessVerifier): Finding {
  const [parent, token] = report.tokens ?? [];
  if (parent === undefined || token === undefined || report.tokens?.length !== 2) return invalid('two tokens: [parent, token]');
  const verdict = verifyEvidence(parent, token);
  if (!verdict.attributable) return invalid(verdict.detail);
  const event = DELEGATION_EVENTS[verdict.reason];
  if (event === undefined) return invalid(`no penalty for ${verdict.reason}`);
  if (report.frames.length > 1) return invalid('at most one task frame');
  const item = report.frames[0];
  if (item !== undefined) {
    // Optional context, but if it is there it must be what it says: the task frame that carried this link to the reporter.
    const r = stateless.verify(item.frame, item.subject);
    if (!r.ok) return invalid(`the task frame does not verify (${r.reason})`);
    if (r.frame.typ !== TASK_TYPES.submit) return invalid('the attached frame is not a task submit');
    if (r.frame.aud !== ctx.reporter) return invalid('the task frame was not addressed to the reporter');
    if (!carries(r.frame.data, parent, token)) return invalid('the task frame does not carry this link after this parent');
  }
  const hash = toHex(tokenHash(token));
  // One token is one offence, however many workers report it (docs/delegation.md T8).
  return { kind: 'attributed', did: verdict.issuer, event, key: hash, ref: `token:${hash}` };
}

/** Whether a task submit's `chain` holds `parent` immediately followed by `token`. */
function carries(data: unknown, parent: Uint8Array, token: Uint8Array): boolean {
  const chain = (data as { chain?: unknown } | null)?.chain;
  if (!Array.isArray(chain)) return false;
  for (let i = 1; i < chain.length; i++) {
    const a = chain[i - 1];
    const b = chain[i];
    if (a instanceof Uint8Array && b instanceof Uint8Array && equalBytes(a, parent) && equalBytes(b, token)) return true;
  }
  return false;
}
