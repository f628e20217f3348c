/**
 * docs/vectors/audit.json: the generator reproduces it byte for byte, and every
 * hash is recomputed here from the JSON fields with node:crypto alone, by the
 * layout of docs/audit.md §2 (not through the package's encoder).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AUDIT_VECTORS_PATH, renderAuditVectors } from '../../../docs/vectors/generate-audit.ts';
import { openCheckpoint, openLogFile, verifyLog } from '../src/index.ts';
import { tempDir } from './helpers.ts';

interface VectorRecord {
  position: number;
  kind: 'frame' | 'gap' | 'outage';
  time: number;
  seq_first: number;
  seq_last: number;
  subject: string;
  verdict: string;
  frame_hex: string;
  prev_hash_hex: string;
  body_hex: string;
  hash_hex: string;
  stored_hex: string;
}
interface Vectors {
  mesh: string;
  record_domain: string;
  genesis_domain: string;
  genesis_hex: string;
  signers: { audit: string };
  records: VectorRecord[];
  checkpoint: { signer: string; position: number; head_hex: string; frame_hex: string };
  file_hex: string;
}

const vectors = JSON.parse(readFileSync(AUDIT_VECTORS_PATH, 'utf8')) as Vectors;
const newDir = tempDir();
const u64 = (n: number) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
};
const lp = (b: Buffer) =>
  Buffer.concat([Buffer.from([b.length >>> 24, (b.length >>> 16) & 255, (b.length >>> 8) & 255, b.length & 255]), b]);
const KIND = { frame: 1, gap: 2, outage: 3 };

describe('audit vectors', () => {
  it('vectors - the generator reproduces docs/vectors/audit.json byte for byte', () => {
    expect(renderAuditVectors()).toBe(readFileSync(AUDIT_VECTORS_PATH, 'utf8'));
  });

  it('vectors - genesis, bodies, hashes and stored forms recompute from the fields by the documented layout', () => {
    const genesis = createHash('sha256').update(vectors.genesis_domain).update(vectors.mesh).digest('hex');
    expect(genesis).toBe(vectors.genesis_hex);
    let prev = genesis;
    for (const r of vectors.records) {
      const body = Buffer.concat([
        Buffer.from([KIND[r.kind]]),
        u64(r.position),
        u64(r.time),
        u64(r.seq_first),
        u64(r.seq_last),
        lp(Buffer.from(r.subject, 'utf8')),
        lp(Buffer.from(r.verdict, 'utf8')),
        lp(Buffer.from(r.frame_hex, 'hex')),
      ]);
      expect(body.toString('hex')).toBe(r.body_hex);
      expect(r.prev_hash_hex).toBe(prev);
      const hash = createHash('sha256').update(vectors.record_domain).update(Buffer.from(prev, 'hex')).update(body).digest('hex');
      expect(hash).toBe(r.hash_hex);
      expect(Buffer.concat([lp(body), Buffer.from(hash, 'hex')]).toString('hex')).toBe(r.stored_hex);
      prev = hash;
    }
    const header = Buffer.concat([Buffer.from('TMAUDIT1'), Buffer.from([0, vectors.mesh.length]), Buffer.from(vectors.mesh)]);
    expect(vectors.file_hex).toBe(header.toString('hex') + vectors.records.map((r) => r.stored_hex).join(''));
  });

  it('vectors - the checkpoint verifies under the audit key and matches the chain; the vector file verifies as a log', async () => {
    const cp = openCheckpoint(Buffer.from(vectors.checkpoint.frame_hex, 'hex'), { mesh: vectors.mesh, trusted: vectors.signers.audit });
    expect(cp.ok).toBe(true);
    if (!cp.ok) return;
    expect(cp.checkpoint.position).toBe(vectors.checkpoint.position);
    expect(Buffer.from(cp.checkpoint.head).toString('hex')).toBe(vectors.records[cp.checkpoint.position - 1]!.hash_hex);
    const path = join(await newDir(), 'vectors.log');
    await writeFile(path, Buffer.from(vectors.file_hex, 'hex'));
    const report = await verifyLog(await openLogFile(path), { trusted: vectors.signers.audit, workers: 0 });
    expect(report).toMatchObject({ ok: true, records: 6, gapRecords: 1, missing: 3, outages: 1 });
    expect(report.checkpoints).toMatchObject({ valid: 1, latest: 5 }); // the one recorded in the chain at position 6
    expect(report.verdicts).toEqual({ ok: 2, bad_signature: 1, bad_frame: 1 });
  });
});
