import { assertMeshName, meshBuckets, meshRoot } from '@trustmesh/protocol';

/**
 * The JetStream buckets and streams of one mesh as the permission table needs
 * them: the bucket names come from @trustmesh/protocol `meshBuckets` (the one
 * place every package takes them from), plus the audit service's streams.
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
  /** The audit capture stream as @trustmesh/protocol `meshBuckets` names it: `tm_<mesh>_audit_capture`. */
  readonly auditStream: string;
  /**
   * Every stream the audit service may own: the capture stream `tm_<mesh>_audit_capture`,
   * and `_audit_log` and `_audit_checkpoints` (its JetStream store). A test checks them
   * against both packages.
   */
  readonly auditStreams: readonly string[];
  /** The subjects of the audit's JetStream store, outside the mesh root: `tmaudit.<mesh>.>`. */
  readonly auditStoreSubjects: string;
  /** The read-only buckets every agent may read. */
  readonly agentBuckets: readonly string[];
}

export function meshResources(mesh: string): MeshResources {
  assertMeshName(mesh);
  // The bucket names are @trustmesh/protocol's (one place for every package); the audit service's own streams are added.
  const buckets = meshBuckets(mesh);
  return Object.freeze({
    mesh,
    root: meshRoot(mesh),
    presenceBucket: buckets.presence,
    trustBucket: buckets.trust,
    killBucket: buckets.kill,
    auditStream: buckets.auditCapture,
    auditStreams: Object.freeze([buckets.auditCapture, `tm_${mesh}_audit_log`, `tm_${mesh}_audit_checkpoints`]),
    auditStoreSubjects: `tmaudit.${mesh}.>`,
    agentBuckets: Object.freeze([buckets.presence, buckets.trust, buckets.kill]),
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
