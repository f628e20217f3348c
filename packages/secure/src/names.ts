import { assertMeshName, meshRoot } from '@trustmesh/protocol';

/**
 * The JetStream buckets and streams of one mesh, and the private reply inbox
 * of one connection: named here and nowhere else, so the permission table,
 * the broker, the kill switch and the audit agree.
 */
export interface MeshResources {
  readonly mesh: string;
  /** `tm.<mesh>` */
  readonly root: string;
  /** KV bucket of signed presence records: `tm_<mesh>_presence`. */
  readonly presenceBucket: string;
  /** KV bucket of trust scores (the broker writes it): `tm_<mesh>_trust`. */
  readonly trustBucket: string;
  /** KV bucket of kill state (operators write it): `tm_<mesh>_kill`. */
  readonly killBucket: string;
  /** The audit capture stream as @trustmesh/protocol `meshBuckets` names it: `tm_<mesh>_audit`. */
  readonly auditStream: string;
  /**
   * Every stream the audit service may own: `tm_<mesh>_audit`, and the names
   * @trustmesh/audit uses, `tm_<mesh>_audit_capture` (capture), `_audit_log` and
   * `_audit_checkpoints` (its JetStream store). A test checks them against both packages.
   */
  readonly auditStreams: readonly string[];
  /** The subjects of the audit's JetStream store, outside the mesh root: `tmaudit.<mesh>.>`. */
  readonly auditStoreSubjects: string;
  /** The read-only buckets every agent may read. */
  readonly agentBuckets: readonly string[];
}

export function meshResources(mesh: string): MeshResources {
  assertMeshName(mesh);
  const presenceBucket = `tm_${mesh}_presence`;
  const trustBucket = `tm_${mesh}_trust`;
  const killBucket = `tm_${mesh}_kill`;
  return Object.freeze({
    mesh,
    root: meshRoot(mesh),
    presenceBucket,
    trustBucket,
    killBucket,
    auditStream: `tm_${mesh}_audit`,
    auditStreams: Object.freeze([`tm_${mesh}_audit`, `tm_${mesh}_audit_capture`, `tm_${mesh}_audit_log`, `tm_${mesh}_audit_checkpoints`]),
    auditStoreSubjects: `tmaudit.${mesh}.>`,
    agentBuckets: Object.freeze([presenceBucket, trustBucket, killBucket]),
  });
}

/** The stream that backs KV bucket `bucket` (a nats.js v3 and nats-server convention). */
export const kvStream = (bucket: string): string => `KV_${bucket}`;

/**
 * The reply inbox prefix of one connection: `_tm.<mesh>.inbox.<agentId>`. Set
 * as nats.js `inboxPrefix`, JetStream API replies and consumer deliveries go
 * there, and the connection may subscribe to it and to no other inbox, so no
 * one reads another's replies (`_INBOX.>` is granted to nobody). It is outside
 * the mesh root, so the agent's mesh inbox `tm.<mesh>.*.<id>.*` never matches it.
 */
export function inboxPrefix(mesh: string, agentId: string): string {
  assertMeshName(mesh);
  return `_tm.${mesh}.inbox.${agentId}`;
}
