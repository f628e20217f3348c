import { randomBytes } from 'node:crypto';
import { appendFile, readFile, readdir, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generateKey } from '@trustmesh/protocol';
import { describe, expect, it } from 'vitest';
import { encodeStored, openFileStore, openLogFile, signCheckpoint, verifyLog } from '../src/index.ts';
import { recordRanges, signedRecords, tempDir, writeLog } from './helpers.ts';

const newDir = tempDir();
const MESH = 'fs';

describe('file store', () => {
  it('file store - records survive close and reopen; the chain goes on from the head', async () => {
    const dir = await newDir();
    const path = await writeLog(dir, MESH, 20);
    const store = await openFileStore(path, { mesh: MESH });
    expect(store.length).toBe(20);
    expect(store.lastSeq).toBe(20);
    expect(store.repaired).toBeUndefined();
    const more = signedRecords(MESH, 25).slice(20);
    const appended = await store.append(more);
    expect(appended.map((r) => r.position)).toEqual([21, 22, 23, 24, 25]);
    await store.close();
    const report = await verifyLog(await openLogFile(path), { workers: 0 });
    expect(report).toMatchObject({ ok: true, records: 25, frames: 25 });
  });

  it('file store - a torn last write (cut mid-record) is cut off on open; every complete record is kept', async () => {
    const dir = await newDir();
    const path = await writeLog(dir, MESH, 10);
    const ranges = recordRanges(await readFile(path), MESH);
    const [start, end] = ranges[9]!;
    await truncate(path, start + Math.floor((end - start) / 2));
    const store = await openFileStore(path, { mesh: MESH });
    expect(store.length).toBe(9);
    expect(store.repaired?.bytes).toBe(Math.floor((end - start) / 2));
    expect((await readFile(store.repaired!.savedTo)).length).toBe(store.repaired!.bytes);
    await store.append(signedRecords(MESH, 10).slice(9));
    await store.close();
    expect(await verifyLog(await openLogFile(path), { workers: 0 })).toMatchObject({ ok: true, records: 10 });
  });

  it('file store - garbage after the last record (random, zeros, or record-shaped) is cut off on open', async () => {
    const dir = await newDir();
    const path = await writeLog(dir, MESH, 5);
    const shaped = encodeStored(randomBytes(200), randomBytes(32));
    for (const garbage of [randomBytes(100), Buffer.alloc(300), shaped]) {
      await appendFile(path, garbage);
      const store = await openFileStore(path, { mesh: MESH });
      expect(store.length).toBe(5);
      expect(store.repaired?.bytes).toBe(garbage.length);
      await store.close();
    }
    expect(await verifyLog(await openLogFile(path), { workers: 0 })).toMatchObject({ ok: true, records: 5 });
  });

  it('file store - damage before the last record is not a torn write: open refuses and changes nothing', async () => {
    const dir = await newDir();
    const path = await writeLog(dir, MESH, 5);
    const bytes = await readFile(path);
    const [start] = recordRanges(bytes, MESH)[2]!;
    bytes[start + 60]! ^= 0x01;
    await writeFile(path, bytes);
    await expect(openFileStore(path, { mesh: MESH })).rejects.toMatchObject({ code: 'log_corrupt' });
    expect((await readFile(path)).equals(bytes)).toBe(true);
  });

  it('file store - one writer: a second open fails; another mesh or a non-log file is refused', async () => {
    const dir = await newDir();
    const path = join(dir, 'one.log');
    const store = await openFileStore(path, { mesh: MESH });
    await expect(openFileStore(path, { mesh: MESH })).rejects.toMatchObject({ code: 'writer_conflict' });
    await store.close();
    await expect(openFileStore(path, { mesh: 'other' })).rejects.toMatchObject({ code: 'log_mismatch' });
    await writeFile(join(dir, 'not.log'), 'hello world, not a log');
    await expect(openFileStore(join(dir, 'not.log'), { mesh: MESH })).rejects.toMatchObject({ code: 'log_mismatch' });
    await expect(openFileStore('', { mesh: MESH })).rejects.toMatchObject({ code: 'invalid_argument' });
  });

  it('file store - a log cut cleanly below a stored checkpoint is refused on open', async () => {
    const dir = await newDir();
    const path = join(dir, 'cp.log');
    const store = await openFileStore(path, { mesh: MESH });
    await store.append(signedRecords(MESH, 8));
    await store.saveCheckpoint(signCheckpoint(generateKey(), MESH, store.length, store.head).frame);
    await store.close();
    const ranges = recordRanges(await readFile(path), MESH);
    await truncate(path, ranges[5]![1]); // records 1..6 kept, whole
    await expect(openFileStore(path, { mesh: MESH })).rejects.toMatchObject({ code: 'log_behind_checkpoint' });
    expect((await readdir(dir)).some((f) => f.includes('.torn-'))).toBe(false);
  });

  it('file store - a torn last line of the checkpoint file is ignored; the checkpoints before it count', async () => {
    const dir = await newDir();
    const path = join(dir, 'cpt.log');
    const key = generateKey();
    const store = await openFileStore(path, { mesh: MESH });
    await store.append(signedRecords(MESH, 4));
    await store.saveCheckpoint(signCheckpoint(key, MESH, store.length, store.head).frame);
    await store.close();
    await appendFile(`${path}.checkpoints`, '{"position":4,"head":"ab","frame":"AQID');
    const again = await openFileStore(path, { mesh: MESH });
    expect((await again.checkpoints()).length).toBe(1);
    await again.close();
    const report = await verifyLog(await openLogFile(path), { trusted: key.did, workers: 0 });
    expect(report).toMatchObject({ ok: true, checkpoints: { valid: 1, latest: 4 } });
  });

  it('file store - a crash while the header was written (a prefix of it) is repaired; anything else is refused', async () => {
    const dir = await newDir();
    const path = join(dir, 'hdr.log');
    await writeFile(path, Buffer.from('TMAUD'));
    const store = await openFileStore(path, { mesh: MESH });
    await store.append(signedRecords(MESH, 2));
    await store.close();
    expect(await verifyLog(await openLogFile(path), { workers: 0 })).toMatchObject({ ok: true, records: 2 });
    await writeFile(join(dir, 'x.log'), Buffer.from('TMAUX'));
    await expect(openFileStore(join(dir, 'x.log'), { mesh: MESH })).rejects.toMatchObject({ code: 'log_mismatch' });
  });
});
