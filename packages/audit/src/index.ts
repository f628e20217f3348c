/**
 * @packageDocumentation
 * TrustMesh audit: a gap-free, hash-chained record of every frame on a mesh,
 * with signed checkpoints, that anyone can verify and query. The exact record,
 * file and checkpoint formats are in docs/audit.md.
 *
 * @example
 * ```ts
 * import { generateKey } from '@trustmesh/protocol'
 * import { startAudit, openLogFile, verifyLog, queryLog } from '@trustmesh/audit'
 *
 * const audit = await startAudit({ mesh: 'demo', key: generateKey(), servers: url, path: './audit/demo.log' })
 * // ... agents talk on tm.demo.> ...
 * await audit.caughtUp()
 * await audit.stop()
 *
 * const log = await openLogFile('./audit/demo.log')
 * const report = await verifyLog(log, { trusted: audit.did })
 * console.log(report.ok, report.records, report.firstBad)
 * for await (const r of queryLog(log, { type: 'add' })) console.log(r.position, r.subject, r.verdict)
 * ```
 */
export { AuditError, AUDIT_ERROR_CODES } from './errors.ts';
export type { AuditErrorCode } from './errors.ts';
export {
  RECORD_DOMAIN,
  GENESIS_DOMAIN,
  HASH_LENGTH,
  RECORD_KINDS,
  genesisHash,
  encodeBody,
  decodeBody,
  hashBody,
  chainRecord,
  encodeStored,
  readStored,
} from './record.ts';
export type { RecordKind, RecordFields, AuditRecord, Verdict, StoredUnit, BodyProblem } from './record.ts';
export type { AuditStore, LogSource, LogEntry, NewRecord } from './store.ts';
export { openFileStore, openLogFile, FILE_MAGIC } from './file-store.ts';
export type { FileStore, FileStoreInit, FileRepair } from './file-store.ts';
export { openJetStreamStore, logStreamName, checkpointStreamName } from './js-store.ts';
export type { JetStreamStoreInit } from './js-store.ts';
export { captureStreamName, captureStreamConfig, ensureCaptureStream } from './capture.ts';
export type { CaptureInit } from './capture.ts';
export { CHECKPOINT_TYPE, CHECKPOINT_PROBLEMS, checkpointSubject, signCheckpoint, openCheckpoint } from './checkpoint.ts';
export type { Checkpoint, CheckpointProblem, OpenCheckpointOptions, OpenCheckpointResult } from './checkpoint.ts';
export { VERDICT_OK, VERDICT_UNCHECKED, statelessVerdict } from './stateless.ts';
export { createSignaturePool } from './pool.ts';
export type { SignaturePool } from './pool.ts';
export { verifyLog, VERIFY_PROBLEMS } from './verify.ts';
export type { VerifyOptions, VerifyReport, VerifyProblem, VerifyProblemCode } from './verify.ts';
export { queryLog, subjectMatches, toJsonLine, writeJsonLines } from './query.ts';
export type { AuditQuery, QueryResult } from './query.ts';
export { startAudit } from './service.ts';
export { runAuditCli } from './cli.ts';
export type { CliIo } from './cli.ts';
export type { AuditService, AuditServiceInit, AuditStats, AuditEvents } from './service.ts';
