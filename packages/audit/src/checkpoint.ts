/**
 * Signed checkpoints (docs/audit.md §4): an ordinary signed mesh frame by the
 * audit service's own key, on `tm.<mesh>.audit.<auditAgentId>` (last token =
 * publisher, as docs/protocol.md §6 requires), typ `tm.audit.checkpoint`,
 * data = { mesh, position, head }: "the first `position` records of this
 * mesh's log chain to `head`".
 */
import { type AgentKey, meshRoot, openFrame, signFrame, senderOfSubject, agentIdFromDid } from '@trustmesh/protocol';
import { invalid } from './errors.ts';
import { HASH_LENGTH } from './record.ts';

export const CHECKPOINT_TYPE = 'tm.audit.checkpoint';

/** The subject the audit service with this agent id publishes checkpoints on. */
export function checkpointSubject(mesh: string, auditAgentId: string): string {
  return `${meshRoot(mesh)}.audit.${auditAgentId}`;
}

export interface Checkpoint {
  mesh: string;
  /** Number of records covered (the position of the last one). */
  position: number;
  /** Hash of the record at `position`. */
  head: Uint8Array;
  /** DID that signed the checkpoint. */
  signer: string;
  /** When it was signed (ms). */
  iat: number;
  /** The signed frame, as published and stored. */
  frame: Uint8Array;
}

/** Signs "records 1..position chain to head". `iat` and `id` are fixed only for test vectors. */
export function signCheckpoint(
  key: AgentKey,
  mesh: string,
  position: number,
  head: Uint8Array,
  options: { iat?: number; id?: Uint8Array } = {},
): Checkpoint {
  if (!Number.isSafeInteger(position) || position < 0) throw invalid('position must be a non-negative integer');
  if (!(head instanceof Uint8Array) || head.length !== HASH_LENGTH) throw invalid(`head must be ${HASH_LENGTH} bytes`);
  const sub = checkpointSubject(mesh, key.agentId);
  // Above 2^32 msgpackr would write a plain number as a float64: send it as a 64-bit int.
  const data = { mesh, position: position > 0xffffffff ? BigInt(position) : position, head };
  const signed = signFrame(key, { sub, typ: CHECKPOINT_TYPE, data, ...options });
  return { mesh, position, head: Uint8Array.from(head), signer: key.did, iat: signed.body.iat, frame: signed.bytes };
}

export const CHECKPOINT_PROBLEMS = {
  bad_checkpoint_frame: 'the checkpoint frame does not verify (signature, body or issuer)',
  bad_checkpoint_subject: 'the checkpoint is not on tm.<mesh>.audit.<signer id>, or not of type tm.audit.checkpoint',
  bad_checkpoint_data: 'the checkpoint data is not { mesh, position, head } for this mesh',
  untrusted_checkpoint_signer: 'the checkpoint is signed by a key that is not the trusted audit key',
} as const;
export type CheckpointProblem = keyof typeof CHECKPOINT_PROBLEMS;

export interface OpenCheckpointOptions {
  mesh: string;
  /** The audit service's DID; when given, checkpoints by any other key are refused. */
  trusted?: string;
}

export type OpenCheckpointResult = { ok: true; checkpoint: Checkpoint } | { ok: false; problem: CheckpointProblem; detail: string };

/** Verifies a checkpoint frame; never throws on its bytes. */
export function openCheckpoint(frame: Uint8Array, options: OpenCheckpointOptions): OpenCheckpointResult {
  const opened = openFrame(frame);
  if (!opened.ok) return { ok: false, problem: 'bad_checkpoint_frame', detail: `${opened.reason}: ${opened.detail}` };
  const body = opened.frame;
  if (options.trusted !== undefined && body.iss !== options.trusted) {
    return { ok: false, problem: 'untrusted_checkpoint_signer', detail: `signed by ${body.iss}, trusted is ${options.trusted}` };
  }
  let expected: string | undefined;
  try {
    expected = checkpointSubject(options.mesh, agentIdFromDid(body.iss));
  } catch {
    expected = undefined;
  }
  if (body.typ !== CHECKPOINT_TYPE || body.sub !== expected || senderOfSubject(body.sub) !== agentIdFromDid(body.iss)) {
    return { ok: false, problem: 'bad_checkpoint_subject', detail: `typ ${body.typ.slice(0, 64)} on ${body.sub.slice(0, 120)}` };
  }
  const data = body.data as { mesh?: unknown; position?: unknown; head?: unknown } | null;
  const position = typeof data?.position === 'bigint' ? Number(data.position) : data?.position;
  if (
    data === null ||
    typeof data !== 'object' ||
    data.mesh !== options.mesh ||
    typeof position !== 'number' ||
    !Number.isSafeInteger(position) ||
    position < 0 ||
    !(data.head instanceof Uint8Array) ||
    data.head.length !== HASH_LENGTH
  ) {
    return {
      ok: false,
      problem: 'bad_checkpoint_data',
      detail: 'data must be { mesh, position (int >= 0), head (32 bytes) } for this mesh',
    };
  }
  return {
    ok: true,
    checkpoint: { mesh: options.mesh, position, head: Uint8Array.from(data.head), signer: body.iss, iat: body.iat, frame },
  };
}
