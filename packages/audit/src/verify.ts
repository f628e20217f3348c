/**
 * Verify a log (docs/audit.md §5): recompute the chain, check every
 * checkpoint, re-verify every frame's signature on worker threads, and name
 * the first bad position and what is wrong with it. Problems are data, never
 * exceptions.
 */
import { toHex } from '@trustmesh/protocol';
import { type Checkpoint, type CheckpointProblem, openCheckpoint } from './checkpoint.ts';
import { invalid } from './errors.ts';
import { createSignaturePool, defaultWorkers } from './pool.ts';
import { decodeBody, genesisHash, HASH_LENGTH, hashBody } from './record.ts';
import { statelessVerdict, VERDICT_OK, VERDICT_UNCHECKED, verdictGivenSignature } from './stateless.ts';
import type { LogSource } from './store.ts';

export const VERIFY_PROBLEMS = {
  malformed_record: 'the stored bytes at this position are not a record (bad length, kind, integer or UTF-8), or the log ends mid-record',
  bad_position: 'the record holds another position than the one it sits at: a record was deleted, inserted or moved',
  bad_hash: 'the stored hash is not SHA-256 over the record and the previous hash: a byte was changed',
  bad_record_fields:
    'a frame record with a sequence range, a gap record with a subject, verdict or frame, or an outage record that moves the sequence',
  unrecorded_gap: 'the capture sequence jumps without a gap record',
  verdict_mismatch: 'the stored verdict is not what stateless verification of the frame says',
  checkpoint_mismatch: 'a valid checkpoint names another head hash at its position: the log was rewritten up to there',
  truncated: 'a valid checkpoint covers more records than the log holds: the log was cut short',
  bad_checkpoint_frame: 'a checkpoint kept beside the log or given by the auditor does not verify (signature, body or issuer)',
  bad_checkpoint_subject: 'a checkpoint is not on tm.<mesh>.audit.<signer id> with type tm.audit.checkpoint',
  bad_checkpoint_data: 'a checkpoint does not carry { mesh, position, head } for this mesh',
  untrusted_checkpoint_signer: 'a checkpoint kept beside the log or given by the auditor is signed by another key than the trusted one',
} as const satisfies Record<CheckpointProblem | string, string>;

export type VerifyProblemCode = keyof typeof VERIFY_PROBLEMS;

export interface VerifyProblem {
  /** The first position the problem concerns (1-based; a truncation names the first missing position). */
  position: number;
  problem: VerifyProblemCode;
  detail: string;
}

export interface VerifyOptions {
  /** The audit service's DID. Checkpoints by any other key are refused. Unpinned, the signer of the first stored checkpoint is taken (and `pinned` is false). */
  trusted?: string;
  /** Checkpoint frames the auditor kept elsewhere (e.g. captured off the mesh). */
  checkpoints?: readonly Uint8Array[];
  /** Worker threads for signatures; default one per core; 0 verifies in this thread. */
  workers?: number;
  /** Frames per worker message; default 512. */
  batchSize?: number;
  /** Re-verify signatures and verdicts; default true. */
  signatures?: boolean;
  /** Problems kept in the report (the first is always kept); default 100. */
  maxProblems?: number;
}

export interface VerifyReport {
  ok: boolean;
  mesh: string;
  records: number;
  frames: number;
  gapRecords: number;
  /** Capture messages the gap records say are missing. */
  missing: number;
  /** Outage records: times the server was replaced while the audit read (uncaptured messages possible). */
  outages: number;
  /** Position and hash of the last record (0 and the genesis hash when empty). */
  head: { position: number; hash: string };
  /** Frames per stored verdict. */
  verdicts: Record<string, number>;
  /** For frames stored as `unchecked`: what verification says of them now, per verdict. */
  unchecked: Record<string, number>;
  checkpoints: { valid: number; latest: number; signer: string | undefined; pinned: boolean };
  firstBad: VerifyProblem | undefined;
  problems: VerifyProblem[];
  durationMs: number;
  workers: number;
}

interface Pending {
  positions: number[];
  subjects: string[];
  verdicts: string[];
  frames: Uint8Array[];
}

export async function verifyLog(source: LogSource, options: VerifyOptions = {}): Promise<VerifyReport> {
  const started = performance.now();
  const workers = options.workers ?? defaultWorkers();
  const batchSize = options.batchSize ?? 512;
  const maxProblems = options.maxProblems ?? 100;
  if (!Number.isSafeInteger(batchSize) || batchSize < 1) throw invalid('batchSize must be a positive integer');
  const checkSignatures = options.signatures ?? true;
  const mesh = source.mesh;
  const problems: VerifyProblem[] = [];
  const report = (position: number, problem: VerifyProblemCode, detail: string) => {
    problems.push({ position, problem, detail });
  };

  const genesis = genesisHash(mesh);
  let hashes = Buffer.alloc(HASH_LENGTH * 1024);
  let prev: Uint8Array = genesis; // the stored hash of the previous record
  let slot = 0;
  let lastPosition = 0;
  let lastSeq = 0;
  let frames = 0;
  let gapRecords = 0;
  let missing = 0;
  let outages = 0;
  const verdicts: Record<string, number> = {};
  const unchecked: Record<string, number> = {};
  const inChain: { frame: Uint8Array; at: number }[] = [];

  // With no workers, the protocol's verifier checks each frame in this thread (its signer cache included).
  const pool = checkSignatures && workers > 0 ? createSignaturePool(workers) : undefined;
  const inFlight = new Set<Promise<void>>();
  let batch: Pending = { positions: [], subjects: [], verdicts: [], frames: [] };
  const flush = async () => {
    if (pool === undefined || batch.frames.length === 0) return;
    const b = batch;
    batch = { positions: [], subjects: [], verdicts: [], frames: [] };
    const job = pool.check(b.frames).then((valid) => {
      for (let i = 0; i < valid.length; i++) {
        const verdict = verdictGivenSignature(b.subjects[i]!, b.frames[i]!, valid[i]!);
        if (b.verdicts[i] === VERDICT_UNCHECKED) unchecked[verdict] = (unchecked[verdict] ?? 0) + 1;
        else if (verdict !== b.verdicts[i])
          report(b.positions[i]!, 'verdict_mismatch', `stored ${b.verdicts[i]}, the frame gives ${verdict}`);
      }
    });
    inFlight.add(job);
    void job.finally(() => inFlight.delete(job));
    if (inFlight.size >= Math.max(2, pool.workers * 3)) await Promise.race(inFlight);
  };

  try {
    for await (const entry of source.entries()) {
      slot++;
      if ('malformed' in entry) {
        report(slot, 'malformed_record', entry.malformed);
        slot--;
        break;
      }
      const decoded = decodeBody(entry.body);
      const stored = entry.hash;
      if (hashes.length < (slot + 1) * HASH_LENGTH) {
        const grown = Buffer.alloc(hashes.length * 2);
        hashes.copy(grown);
        hashes = grown;
      }
      hashes.set(stored, slot * HASH_LENGTH);
      if (!Buffer.from(hashBody(prev, entry.body)).equals(stored)) {
        report(slot, 'bad_hash', `record at ${slot} does not hash to its stored hash over the previous one`);
      }
      prev = stored;
      if (!decoded.ok) {
        report(slot, 'malformed_record', `undecodable record body (${decoded.problem})`);
        lastPosition++;
        continue;
      }
      const r = decoded.fields;
      if (r.position !== lastPosition + 1) report(slot, 'bad_position', `record says position ${r.position}, expected ${lastPosition + 1}`);
      lastPosition = r.position;
      if (r.kind === 'outage') {
        outages++;
        if (r.seqFirst !== lastSeq || r.seqLast !== lastSeq || r.subject !== '' || r.verdict !== 'server_changed') {
          report(
            slot,
            'bad_record_fields',
            'an outage record repeats the last capture sequence, with no subject and verdict server_changed',
          );
        }
        continue;
      }
      if (r.seqFirst !== lastSeq + 1) {
        report(slot, 'unrecorded_gap', `capture sequence ${r.seqFirst} follows ${lastSeq} with no gap record between`);
      }
      lastSeq = Math.max(lastSeq, r.seqLast);
      if (r.kind === 'gap') {
        gapRecords++;
        missing += r.seqLast - r.seqFirst + 1;
        if (r.seqLast < r.seqFirst || r.subject !== '' || r.verdict !== '' || r.frame.length !== 0) {
          report(slot, 'bad_record_fields', 'a gap record must have seqFirst <= seqLast and an empty subject, verdict and frame');
        }
        continue;
      }
      frames++;
      verdicts[r.verdict] = (verdicts[r.verdict] ?? 0) + 1;
      if (r.seqFirst !== r.seqLast) report(slot, 'bad_record_fields', 'a frame record covers exactly one capture sequence');
      if ((r.verdict === VERDICT_OK || r.verdict === VERDICT_UNCHECKED) && r.subject.includes('.audit.'))
        inChain.push({ frame: r.frame, at: slot });
      if (checkSignatures && pool === undefined) {
        const verdict = statelessVerdict(r.subject, r.frame);
        if (r.verdict === VERDICT_UNCHECKED) unchecked[verdict] = (unchecked[verdict] ?? 0) + 1;
        else if (verdict !== r.verdict) report(slot, 'verdict_mismatch', `stored ${r.verdict}, the frame gives ${verdict}`);
      } else if (pool !== undefined) {
        batch.positions.push(slot);
        batch.subjects.push(r.subject);
        batch.verdicts.push(r.verdict);
        batch.frames.push(r.frame);
        if (batch.frames.length >= batchSize) await flush();
      }
    }
    await flush();
    await Promise.all(inFlight);
  } finally {
    await pool?.close();
  }

  // Checkpoints: kept beside the log, given by the auditor, and those the chain itself recorded.
  const stored = await source.checkpoints();
  const given = options.checkpoints ?? [];
  let trusted = options.trusted;
  const pinned = trusted !== undefined;
  const valid: Checkpoint[] = [];
  for (const frame of [...stored, ...given]) {
    let cp = openCheckpoint(frame, { mesh });
    if (cp.ok && trusted === undefined) trusted = cp.checkpoint.signer;
    if (cp.ok) cp = openCheckpoint(frame, { mesh, trusted });
    if (!cp.ok) report(slot + 1, cp.problem, cp.detail);
    else valid.push(cp.checkpoint);
  }
  for (const { frame, at } of inChain) {
    const cp = openCheckpoint(frame, { mesh });
    if (!cp.ok || trusted === undefined || cp.checkpoint.signer !== trusted) continue; // other agents' traffic
    if (cp.checkpoint.position >= at) {
      report(at, 'checkpoint_mismatch', `recorded checkpoint at ${at} claims position ${cp.checkpoint.position}, not before itself`);
    }
    valid.push(cp.checkpoint);
  }
  valid.sort((a, b) => a.position - b.position);
  let goodBelow = 0;
  let latest = 0;
  const headAt = (p: number): Uint8Array => (p === 0 ? genesis : hashes.subarray(p * HASH_LENGTH, (p + 1) * HASH_LENGTH));
  for (const cp of valid) {
    latest = Math.max(latest, cp.position);
    if (cp.position > slot) {
      report(
        slot + 1,
        'truncated',
        `the log ends at ${slot}; a checkpoint signed at ${new Date(cp.iat).toISOString()} covers ${cp.position}`,
      );
    } else if (!Buffer.from(headAt(cp.position)).equals(cp.head)) {
      // A chain problem in (goodBelow, position] already names the first bad record; otherwise
      // (the chain was re-hashed consistently) the first record that can no longer be trusted is named.
      const explained = problems.some((p) => p.position > goodBelow && p.position <= cp.position);
      report(
        explained ? cp.position : goodBelow + 1,
        'checkpoint_mismatch',
        `checkpoint at ${cp.position} names head ${toHex(cp.head).slice(0, 16)}…, the log has ${toHex(headAt(cp.position)).slice(0, 16)}…; ` +
          `records ${goodBelow + 1}..${cp.position} were rewritten`,
      );
    } else goodBelow = Math.max(goodBelow, cp.position);
  }

  problems.sort((a, b) => a.position - b.position);
  const firstBad = problems[0];
  return {
    ok: problems.length === 0,
    mesh,
    records: slot,
    frames,
    gapRecords,
    missing,
    outages,
    head: { position: slot, hash: toHex(headAt(slot)) },
    verdicts,
    unchecked,
    checkpoints: { valid: valid.length, latest, signer: trusted, pinned },
    firstBad,
    problems: problems.slice(0, Math.max(1, maxProblems)),
    durationMs: performance.now() - started,
    workers: pool?.workers ?? 0,
  };
}
