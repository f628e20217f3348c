/**
 * The embedded default store: one append-only file (docs/audit.md §3).
 *
 *   file    = header || stored record*
 *   header  = "TMAUDIT1" || u16 mesh length || mesh (UTF-8)
 *   stored  = u32 body length || body || hash
 *
 * Crash safety: a batch is written with one positional write and made durable
 * with fdatasync before `append` resolves (the service acks only then). On
 * open the whole chain is re-hashed; a damaged tail (a torn last write, or
 * garbage after the last record) is moved to `<file>.torn-<ms>` and cut off,
 * so every complete record survives. Damage followed by more records is not a
 * torn write: the store refuses to open (`log_corrupt`) rather than cut evidence.
 * Checkpoint frames go to `<file>.checkpoints`, one JSON line each.
 */
import { closeSync, fsyncSync, openSync, readSync } from 'node:fs';
import { appendFile, type FileHandle, mkdir, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { AuditError, invalid } from './errors.ts';
import { type AuditRecord, chainRecord, decodeBody, encodeStored, genesisHash, hashBody, readStored } from './record.ts';
import type { AuditStore, LogEntry, LogSource, NewRecord } from './store.ts';
import { openCheckpoint } from './checkpoint.ts';

export const FILE_MAGIC = 'TMAUDIT1';
const MAGIC = Buffer.from(FILE_MAGIC, 'latin1');
const CHUNK = 8 * 1024 * 1024;

export interface FileStoreInit {
  /** The mesh this log records; a file of another mesh is refused. */
  mesh: string;
  /** fdatasync after every batch; default true. Turn off only for benchmarks. */
  fsync?: boolean;
}

/** What opening found and repaired. */
export interface FileRepair {
  /** Bytes cut from the end of the file. */
  bytes: number;
  /** Where the cut bytes were kept. */
  savedTo: string;
  /** Why they were not a record. */
  detail: string;
}

export interface FileStore extends AuditStore {
  readonly path: string;
  /** Set when opening cut a damaged tail. */
  readonly repaired: FileRepair | undefined;
}

function encodeHeader(mesh: string): Buffer {
  const name = Buffer.from(mesh, 'utf8');
  const out = Buffer.allocUnsafe(MAGIC.length + 2 + name.length);
  MAGIC.copy(out, 0);
  out.writeUInt16BE(name.length, MAGIC.length);
  name.copy(out, MAGIC.length + 2);
  return out;
}

/** Reads the header; undefined if the file does not start with one. */
function readHeader(buf: Uint8Array): { mesh: string; length: number } | undefined {
  if (buf.length < MAGIC.length + 2 || !MAGIC.equals(buf.subarray(0, MAGIC.length))) return undefined;
  const n = (buf[8]! << 8) + buf[9]!;
  if (buf.length < 10 + n) return undefined;
  return { mesh: Buffer.from(buf.subarray(10, 10 + n)).toString('utf8'), length: 10 + n };
}

/** Reads `[from, to)` of a file in chunks and yields its stored units. */
async function* readUnits(path: string, from: number, to: number): AsyncGenerator<LogEntry & { offset: number; end: number }> {
  const fh = await open(path, 'r');
  try {
    let buf: Buffer = Buffer.alloc(0);
    let bufStart = from; // file offset of buf[0]
    let at = 0;
    let pos = from;
    for (;;) {
      const unit = readStored(buf, at);
      if (unit.status === 'record') {
        yield { body: unit.body, hash: unit.hash, offset: bufStart + at, end: bufStart + unit.next };
        at = unit.next;
        continue;
      }
      if (unit.status === 'malformed') {
        yield { malformed: unit.detail, offset: bufStart + at, end: to };
        return;
      }
      if (pos >= to) {
        if (at < buf.length)
          yield { malformed: `incomplete record: ${buf.length - at} of ${unit.need} bytes`, offset: bufStart + at, end: to };
        return;
      }
      const want = Math.min(Math.max(CHUNK, unit.need), to - pos);
      const chunk = Buffer.allocUnsafe(want);
      const { bytesRead } = await fh.read(chunk, 0, want, pos);
      pos += bytesRead;
      buf = Buffer.concat([buf.subarray(at), chunk.subarray(0, bytesRead)]);
      bufStart += at;
      at = 0;
      if (bytesRead === 0) pos = to;
    }
  } finally {
    await fh.close();
  }
}

async function readCheckpointFile(path: string): Promise<Uint8Array[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const frames: Uint8Array[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    try {
      const parsed = JSON.parse(line) as { frame?: unknown };
      if (typeof parsed.frame === 'string') frames.push(new Uint8Array(Buffer.from(parsed.frame, 'base64')));
    } catch {
      // a torn last line: the checkpoint was not durable, so it was never published
    }
  }
  return frames;
}

/**
 * Opens a log file read-only, for verify and query. Takes no lock and repairs
 * nothing: a damaged tail is reported as the last entry.
 */
export async function openLogFile(path: string): Promise<LogSource> {
  const head = Buffer.alloc(10 + 0xffff);
  const fd = openSync(path, 'r');
  let n: number;
  try {
    n = readSync(fd, head, 0, head.length, 0);
  } finally {
    closeSync(fd);
  }
  const header = readHeader(head.subarray(0, n));
  if (header === undefined) throw new AuditError('log_mismatch', `${path} does not start with a TrustMesh audit header (${FILE_MAGIC})`);
  return {
    mesh: header.mesh,
    async *entries() {
      const size = (await stat(path)).size;
      for await (const unit of readUnits(path, header.length, size)) {
        yield 'malformed' in unit ? { malformed: unit.malformed } : { body: unit.body, hash: unit.hash };
      }
    },
    checkpoints: () => readCheckpointFile(`${path}.checkpoints`),
  };
}

/** Lock file beside the log: the pid of the one writer. A lock left by a dead process is taken over. */
async function lock(path: string): Promise<string> {
  const file = `${path}.lock`;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await writeFile(file, String(process.pid), { flag: 'wx' });
      return file;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number.parseInt(await readFile(file, 'utf8').catch(() => ''), 10);
      if (Number.isSafeInteger(pid) && pid > 0 && alive(pid)) {
        throw new AuditError('writer_conflict', `${path} is being written by process ${pid} (${file})`);
      }
      await rm(file, { force: true });
    }
  }
  throw new AuditError('writer_conflict', `could not take ${file}`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Opens (or creates) the log file for appending, re-hashing it and repairing a torn tail. */
export async function openFileStore(path: string, init: FileStoreInit): Promise<FileStore> {
  if (typeof path !== 'string' || path === '') throw invalid('path must be a non-empty string');
  if (typeof init?.mesh !== 'string' || init.mesh === '') throw invalid('mesh must be a non-empty string');
  await mkdir(dirname(path), { recursive: true });
  const lockFile = await lock(path);
  try {
    return await FileStoreImpl.open(path, init, lockFile);
  } catch (err) {
    await rm(lockFile, { force: true });
    throw err;
  }
}

class FileStoreImpl implements FileStore {
  repaired: FileRepair | undefined;
  #length = 0;
  #head: Uint8Array;
  #lastSeq = 0;
  #size: number;
  #closed = false;
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(
    readonly path: string,
    readonly mesh: string,
    private readonly fh: FileHandle,
    private readonly lockFile: string,
    private readonly fsync: boolean,
    private readonly headerLength: number,
  ) {
    this.#head = genesisHash(mesh);
    this.#size = headerLength;
  }

  static async open(path: string, init: FileStoreInit, lockFile: string): Promise<FileStoreImpl> {
    const fh = await open(path, 'a+');
    try {
      let size = (await fh.stat()).size;
      const expected = encodeHeader(init.mesh);
      if (size > 0 && size < expected.length) {
        // A crash while the header was being written: a prefix of our own header is a torn creation.
        const start = Buffer.alloc(size);
        await fh.read(start, 0, size, 0);
        if (start.equals(expected.subarray(0, size))) {
          await fh.truncate(0);
          size = 0;
        }
      }
      if (size === 0) {
        await fh.write(expected, 0, undefined, 0);
        await fh.sync();
        await syncDir(dirname(path));
        size = (await fh.stat()).size;
      }
      const first = Buffer.alloc(Math.min(size, 10 + 0xffff));
      await fh.read(first, 0, first.length, 0);
      const header = readHeader(first);
      if (header === undefined) throw new AuditError('log_mismatch', `${path} is not a TrustMesh audit log (no ${FILE_MAGIC} header)`);
      if (header.mesh !== init.mesh) throw new AuditError('log_mismatch', `${path} records mesh ${header.mesh}, not ${init.mesh}`);
      // 'a+' appends at the end whatever the position; reopen r+ for positional writes.
      await fh.close();
      const rw = await open(path, 'r+');
      const store = new FileStoreImpl(path, init.mesh, rw, lockFile, init.fsync ?? true, header.length);
      try {
        await store.#recover(size);
        await store.#checkCheckpoints();
      } catch (err) {
        await rw.close();
        throw err;
      }
      return store;
    } catch (err) {
      await fh.close().catch(() => undefined);
      throw err;
    }
  }

  /** Re-hashes the chain; cuts a damaged tail; refuses damage in the middle. */
  async #recover(size: number): Promise<void> {
    let bad: { offset: number; end: number; detail: string; lastUnit: boolean } | undefined;
    for await (const unit of readUnits(this.path, this.headerLength, size)) {
      if ('malformed' in unit) {
        bad = { offset: unit.offset, end: size, detail: unit.malformed, lastUnit: true };
        break;
      }
      const decoded = decodeBody(unit.body);
      const problem = !decoded.ok
        ? `undecodable record (${decoded.problem})`
        : decoded.fields.position !== this.#length + 1
          ? `position ${decoded.fields.position} where ${this.#length + 1} belongs`
          : !Buffer.from(hashBody(this.#head, unit.body)).equals(unit.hash)
            ? `hash of record ${this.#length + 1} does not match`
            : undefined;
      if (problem !== undefined || !decoded.ok) {
        bad = { offset: unit.offset, end: unit.end, detail: problem ?? 'undecodable', lastUnit: unit.end === size };
        break;
      }
      this.#length++;
      this.#head = new Uint8Array(unit.hash);
      this.#lastSeq = decoded.fields.seqLast;
      this.#size = unit.end;
    }
    if (bad === undefined) return;
    const tail = Buffer.alloc(size - bad.offset);
    await this.fh.read(tail, 0, tail.length, bad.offset);
    // Zeros after a crash (the size grew, the data never landed) are a torn write too.
    if (!bad.lastUnit && !tail.every((b) => b === 0)) {
      throw new AuditError(
        'log_corrupt',
        `${this.path}: record ${this.#length + 1} at byte ${bad.offset} is damaged (${bad.detail}) and more data follows it; ` +
          'this is not a torn write. Verify the log; it was left as it is.',
      );
    }
    const savedTo = `${this.path}.torn-${Date.now()}`;
    await writeFile(savedTo, tail);
    await this.fh.truncate(bad.offset);
    await this.fh.sync();
    this.repaired = { bytes: tail.length, savedTo, detail: bad.detail };
  }

  async #checkCheckpoints(): Promise<void> {
    for (const frame of await this.checkpoints()) {
      const cp = openCheckpoint(frame, { mesh: this.mesh });
      if (cp.ok && cp.checkpoint.position > this.#length) {
        throw new AuditError(
          'log_behind_checkpoint',
          `${this.path} holds ${this.#length} records but a checkpoint signed by ${cp.checkpoint.signer} covers ${cp.checkpoint.position}`,
        );
      }
    }
  }

  get length(): number {
    return this.#length;
  }
  get head(): Uint8Array {
    return this.#head;
  }
  get lastSeq(): number {
    return this.#lastSeq;
  }

  append(records: readonly NewRecord[]): Promise<AuditRecord[]> {
    const run = this.#queue.then(() => this.#append(records));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #append(records: readonly NewRecord[]): Promise<AuditRecord[]> {
    if (this.#closed) throw new AuditError('store_closed', `${this.path} is closed`);
    if (records.length === 0) return [];
    let head = this.#head;
    const out: AuditRecord[] = [];
    const parts: Buffer[] = [];
    for (let i = 0; i < records.length; i++) {
      const { record, body } = chainRecord(head, { ...records[i]!, position: this.#length + 1 + i });
      parts.push(encodeStored(body, record.hash));
      out.push(record);
      head = record.hash;
    }
    const buf = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
    let written = 0;
    while (written < buf.length) {
      const { bytesWritten } = await this.fh.write(buf, written, buf.length - written, this.#size + written);
      written += bytesWritten;
    }
    if (this.fsync) await this.fh.datasync();
    this.#size += buf.length;
    this.#length += records.length;
    this.#head = head;
    this.#lastSeq = out[out.length - 1]!.seqLast;
    return out;
  }

  async saveCheckpoint(frame: Uint8Array): Promise<void> {
    const cp = openCheckpoint(frame, { mesh: this.mesh });
    const line = JSON.stringify({
      position: cp.ok ? cp.checkpoint.position : null,
      head: cp.ok ? Buffer.from(cp.checkpoint.head).toString('hex') : null,
      frame: Buffer.from(frame).toString('base64'),
    });
    const file = `${this.path}.checkpoints`;
    await appendFile(file, `${line}\n`);
    if (this.fsync) {
      const fd = openSync(file, 'r');
      try {
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
    }
  }

  async *entries(): AsyncGenerator<LogEntry> {
    for await (const unit of readUnits(this.path, this.headerLength, this.#size)) {
      yield 'malformed' in unit ? { malformed: unit.malformed } : { body: unit.body, hash: unit.hash };
    }
  }

  checkpoints(): Promise<Uint8Array[]> {
    return readCheckpointFile(`${this.path}.checkpoints`);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    await this.#queue;
    this.#closed = true;
    await this.fh.close();
    await rm(this.lockFile, { force: true });
  }
}

async function syncDir(dir: string): Promise<void> {
  try {
    const fd = openSync(dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // some file systems refuse fsync on a directory; the data file itself is synced
  }
}
