import type { Agent, ExtensionPort } from '@trustmesh/client';
import { agentIdFromDid, InvalidArgumentError, meshSubjects, tryPublicKeyFromDid } from '@trustmesh/protocol';
import { TRUST_TYPES, type TrustReport } from './wire.ts';

/**
 * What a worker knows when it refuses a capability link (the task module's
 * `ChainViolation` has this shape, so pass it as it is).
 */
export interface DelegationEvidence {
  /** The worker's reason code (`scope_escalation`, `expiry_extended`, ...); informational. */
  readonly reason: string;
  /** DID that signed the task frame. */
  readonly delegator: string;
  /** The parent and the offending token; absent when the refusal is evidence against nobody. */
  readonly evidence?: { readonly parent: Uint8Array; readonly token: Uint8Array };
  /** The signed task frame as received, attached for context (who presented the link, when). */
  readonly frame?: Uint8Array;
}

/** The kind task frames travel on: `tm.<mesh>.task.<worker>.<delegator>` (docs/delegation.md T1). */
const TASK_KIND = 'task';

/**
 * The `trust.report` a worker sends for a refused link: claim `delegation`,
 * the two tokens, and the task frame with the subject it arrived on (addressed
 * to `worker`). Undefined when the violation carries no evidence.
 */
export function delegationReport(mesh: string, worker: string, violation: DelegationEvidence): TrustReport | undefined {
  const pair = violation.evidence;
  if (pair === undefined) return undefined;
  const report: TrustReport = {
    v: 1,
    claim: 'delegation',
    reason: violation.reason.slice(0, 64),
    tokens: [pair.parent, pair.token],
    frames:
      violation.frame === undefined || tryPublicKeyFromDid(violation.delegator) === undefined
        ? []
        : [
            {
              subject: meshSubjects(mesh).addressed(TASK_KIND, agentIdFromDid(worker), agentIdFromDid(violation.delegator)),
              frame: violation.frame,
            },
          ],
  };
  return report;
}

const isPort = (target: Agent | ExtensionPort): target is ExtensionPort => 'publishSigned' in target;

/**
 * Reports a refused capability link to a trust broker, which re-checks the
 * token pair itself (docs/trust.md §9.7). `target` is the worker's agent, or
 * an extension's port on it; the report is an ordinary signed message, so the
 * agent's outbound guards run (a halted agent reports nothing: they throw).
 * Returns false when the violation carries no evidence (nothing to report).
 *
 * @example
 * ```ts
 * const t = tasks({ key, rootAuthority, onViolation: (v) => reportDelegationViolation(agent, brokerDid, v) })
 * ```
 */
export function reportDelegationViolation(target: Agent | ExtensionPort, brokerDid: string, violation: DelegationEvidence): boolean {
  if (typeof brokerDid !== 'string' || tryPublicKeyFromDid(brokerDid) === undefined)
    throw new InvalidArgumentError(`reportDelegationViolation: not a did:key: ${String(brokerDid).slice(0, 80)}`);
  const report = delegationReport(target.mesh, target.did, violation);
  if (report === undefined) return false;
  if (isPort(target)) {
    const to = { did: brokerDid, agentId: agentIdFromDid(brokerDid) };
    target.send(
      target.subjects.message(to.agentId, target.agentId),
      { kind: 'msg', to, typ: TRUST_TYPES.report, data: report },
      { aud: brokerDid },
    );
  } else {
    target.send(brokerDid, TRUST_TYPES.report, report);
  }
  return true;
}
