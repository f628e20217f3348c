/** Shared by the audit specs: real signed frames, real files in a temp dir. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type AgentKey, generateKey, signFrame, subjects } from '@trustmesh/protocol';
import { afterAll } from 'vitest';
import { type NewRecord, openFileStore, statelessVerdict } from '../src/index.ts';

/** A temp dir removed after the file's tests. */
export function tempDir(): () => Promise<string> {
  const made: string[] = [];
  afterAll(async () => {
    await Promise.all(made.map((d) => rm(d, { recursive: true, force: true })));
  });
  return async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tm-audit-'));
    made.push(dir);
    return dir;
  };
}

/** `n` signed messages between a few agents, as frame records with capture sequences 1..n. */
export function signedRecords(mesh: string, n: number, keys: AgentKey[] = [generateKey(), generateKey(), generateKey()]): NewRecord[] {
  const out: NewRecord[] = [];
  for (let i = 0; i < n; i++) {
    const from = keys[i % keys.length]!;
    const to = keys[(i + 1) % keys.length]!;
    const subject = subjects.message(mesh, to.agentId, from.agentId);
    const frame = signFrame(from, { sub: subject, typ: i % 2 === 0 ? 'greet' : 'add', aud: to.did, data: { i } }).bytes;
    out.push({
      kind: 'frame',
      time: 1_700_000_000_000 + i,
      seqFirst: i + 1,
      seqLast: i + 1,
      subject,
      verdict: statelessVerdict(subject, frame),
      frame,
    });
  }
  return out;
}

/** A log file with `n` records; returns its path. */
export async function writeLog(dir: string, mesh: string, n: number): Promise<string> {
  const path = join(dir, `${mesh}.log`);
  const store = await openFileStore(path, { mesh });
  await store.append(signedRecords(mesh, n));
  await store.close();
  return path;
}

/** Byte ranges [start, end) of each stored record in a log file's bytes. */
export function recordRanges(file: Uint8Array, mesh: string): [number, number][] {
  const out: [number, number][] = [];
  let at = 10 + Buffer.byteLength(mesh);
  while (at < file.length) {
    const n = Buffer.from(file.buffer, file.byteOffset + at, 4).readUInt32BE(0);
    out.push([at, at + 4 + n + 32]);
    at += 4 + n + 32;
  }
  return out;
}
