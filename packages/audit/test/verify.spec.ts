import { readFile, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generateKey, signFrame, subjects } from '@trustmesh/protocol';
import { describe, expect, it } from 'vitest';
import {
  chainRecord,
  decodeBody,
  encodeStored,
  genesisHash,
  type LogSource,
  openFileStore,
  openLogFile,
  type RecordFields,
  readStored,
  signCheckpoint,
  verifyLog,
} from '../src/index.ts';
import { recordRanges, signedRecords, tempDir } from './helpers.ts';

const newDir = tempDir();
const MESH = 'vf';
const N = 40;

/** A log of N records with a checkpoint at N by `key`; returns path and key. */
async function checkpointedLog(name: string) {
  const dir = await newDir();
  const path = join(dir, `${name}.log`);
  const key = generateKey();
  const store = await openFileStore(path, { mesh: MESH });
  await store.append(signedRecords(MESH, N));
  await store.saveCheckpoint(signCheckpoint(key, MESH, 20, (await headAt(store, 20))!).frame);
  await store.saveCheckpoint(signCheckpoint(key, MESH, store.length, store.head).frame);
  await store.close();
  return { path, key };
}

async function headAt(source: LogSource, position: number): Promise<Uint8Array | undefined> {
  let i = 0;
  for await (const e of source.entries()) if (++i === position && 'hash' in e) return new Uint8Array(e.hash);
  return undefined;
}

/** Rewrites the file's records with `edit` and re-chains every hash, as an attacker with write access would. */
async function rewrite(path: string, edit: (records: RecordFields[]) => RecordFields[]) {
  const bytes = await readFile(path);
  const ranges = recordRanges(bytes, MESH);
  const records = ranges.map(([s]) => {
    const unit = readStored(bytes, s);
    if (unit.status !== 'record') throw new Error('bad fixture');
    const d = decodeBody(unit.body);
    if (!d.ok) throw new Error('bad fixture');
    return { ...d.fields, frame: new Uint8Array(d.fields.frame) };
  });
  let prev = genesisHash(MESH);
  const parts: Uint8Array[] = [bytes.subarray(0, ranges[0]![0])];
  for (const [i, r] of edit(records).entries()) {
    const { record, body } = chainRecord(prev, { ...r, position: i + 1 });
    parts.push(encodeStored(body, record.hash));
    prev = record.hash;
  }
  await writeFile(path, Buffer.concat(parts));
}

const verify = async (path: string, trusted?: string) => verifyLog(await openLogFile(path), { trusted, workers: 2, batchSize: 8 });

describe('verify', () => {
  it('verify - an untouched log passes: chain, checkpoints, every signature (in workers and in this thread)', async () => {
    const { path, key } = await checkpointedLog('clean');
    for (const workers of [0, 2]) {
      const report = await verifyLog(await openLogFile(path), { trusted: key.did, workers, batchSize: 8 });
      expect(report).toMatchObject({ ok: true, records: N, frames: N, gapRecords: 0, verdicts: { ok: N }, firstBad: undefined });
      expect(report.checkpoints).toMatchObject({ valid: 2, latest: N, signer: key.did, pinned: true });
    }
  });

  it('verify - a flipped byte fails at its record: in the frame, the subject, the stored hash', async () => {
    for (const where of ['frame', 'subject', 'hash'] as const) {
      const { path, key } = await checkpointedLog(`flip-${where}`);
      const bytes = await readFile(path);
      const [start, end] = recordRanges(bytes, MESH)[16]!;
      const at = where === 'frame' ? end - 40 : where === 'subject' ? start + 4 + 45 + 3 : end - 5;
      bytes[at]! ^= 0x20;
      await writeFile(path, bytes);
      const report = await verify(path, key.did);
      expect(report.ok).toBe(false);
      expect(report.firstBad).toMatchObject({ position: 17, problem: 'bad_hash' });
    }
  });

  it('verify - a deleted record fails at its position', async () => {
    const { path, key } = await checkpointedLog('delete');
    const bytes = await readFile(path);
    const [start, end] = recordRanges(bytes, MESH)[11]!;
    await writeFile(path, Buffer.concat([bytes.subarray(0, start), bytes.subarray(end)]));
    const report = await verify(path, key.did);
    expect(report.firstBad).toMatchObject({ position: 12 });
    expect(report.problems.filter((p) => p.position === 12).map((p) => p.problem)).toEqual(
      expect.arrayContaining(['bad_hash', 'bad_position', 'unrecorded_gap']),
    );
    expect(report.problems.some((p) => p.problem === 'truncated')).toBe(true); // the checkpoint at 40 now points past the end
  });

  it('verify - two swapped records fail at the first of them', async () => {
    const { path, key } = await checkpointedLog('swap');
    const bytes = await readFile(path);
    const ranges = recordRanges(bytes, MESH);
    const [a0, a1] = ranges[25]!;
    const [, b1] = ranges[26]!;
    await writeFile(path, Buffer.concat([bytes.subarray(0, a0), bytes.subarray(a1, b1), bytes.subarray(a0, a1), bytes.subarray(b1)]));
    const report = await verify(path, key.did);
    expect(report.firstBad).toMatchObject({ position: 26 });
  });

  it('verify - a cut tail is caught against the last checkpoint, at the first missing position', async () => {
    const { path, key } = await checkpointedLog('cut');
    const ranges = recordRanges(await readFile(path), MESH);
    await truncate(path, ranges[34]![1]); // 35 whole records left
    const report = await verify(path, key.did);
    expect(report).toMatchObject({ ok: false, records: 35 });
    expect(report.firstBad).toMatchObject({ position: 36, problem: 'truncated' });
  });

  it('verify - a rewritten chain (every hash recomputed) is caught: a deletion by its capture sequence, a change by the checkpoints', async () => {
    const deleted = await checkpointedLog('rechain-delete');
    await rewrite(deleted.path, (rs) => rs.filter((r) => r.position !== 30));
    const byGap = await verify(deleted.path, deleted.key.did);
    expect(byGap.problems.map((p) => [p.position, p.problem])).toEqual([
      [30, 'unrecorded_gap'],
      [40, 'truncated'],
    ]);
    const changed = await checkpointedLog('rechain-change');
    const other = signedRecords(MESH, 1)[0]!;
    await rewrite(changed.path, (rs) => rs.map((r) => (r.position === 25 ? { ...r, subject: other.subject, frame: other.frame } : r)));
    const byCheckpoint = await verify(changed.path, changed.key.did);
    // records 1..20 are covered by a good checkpoint; from 21 on nothing can be trusted
    expect(byCheckpoint.problems.map((p) => [p.position, p.problem])).toEqual([[21, 'checkpoint_mismatch']]);
  });

  it('verify - a rewritten verdict (bad_signature made ok, hashes recomputed) fails at that record', async () => {
    const { path, key } = await checkpointedLog('verdict');
    const forged = signFrame(generateKey(), { sub: subjects.message(MESH, 'x', key.agentId), typ: 'greet' }).bytes;
    forged[40]! ^= 1;
    await rewrite(path, (rs) => rs.map((r) => (r.position === 7 ? { ...r, frame: forged, subject: 'tm.vf.msg.x.y', verdict: 'ok' } : r)));
    const report = await verifyLog(await openLogFile(path), { workers: 2, batchSize: 8 });
    expect(report.problems.find((p) => p.problem === 'verdict_mismatch')).toMatchObject({ position: 7 });
  });

  it('verify - forged checkpoints are caught: a wrong key, and the right key over a wrong head', async () => {
    const { path, key } = await checkpointedLog('forged');
    const log = await openLogFile(path);
    const wrongKey = signCheckpoint(generateKey(), MESH, 40, (await headAt(log, 40))!).frame;
    const byKey = await verifyLog(log, { trusted: key.did, checkpoints: [wrongKey], workers: 0 });
    expect(byKey.problems.map((p) => p.problem)).toEqual(['untrusted_checkpoint_signer']);
    const wrongHead = signCheckpoint(key, MESH, 33, (await headAt(log, 32))!).frame;
    const byHead = await verifyLog(log, { trusted: key.did, checkpoints: [wrongHead], workers: 0 });
    expect(byHead.firstBad).toMatchObject({ position: 21, problem: 'checkpoint_mismatch' });
    const garbage = Uint8Array.from(wrongHead);
    garbage[50]! ^= 1;
    const bySig = await verifyLog(log, { trusted: key.did, checkpoints: [garbage], workers: 0 });
    expect(bySig.problems.map((p) => p.problem)).toEqual(['bad_checkpoint_frame']);
  });
});
