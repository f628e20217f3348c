/**
 * Ed25519 checks of frames across cores. The worker is self-contained plain
 * JavaScript (node:crypto only), started from source with `eval`, so it runs
 * the same under tsx, vitest and a bundler; it answers one byte per frame:
 * 1 = the signature verifies over "trustmesh/v1\n" || body, 0 = it does not
 * (or the frame is too short to hold one).
 */
import { Worker } from 'node:worker_threads';
import { cpus } from 'node:os';
import { createPublicKey, type KeyObject, verify } from 'node:crypto';

/**
 * The worker's whole program, as source text: a function's own source would
 * carry whatever helpers a TypeScript loader adds (tsx's `__name`), which do
 * not exist in the worker.
 */
const WORKER_SOURCE = String.raw`
'use strict';
const { parentPort } = require('node:worker_threads');
const crypto = require('node:crypto');
const SPKI = Buffer.from('302a300506032b6570032100', 'hex');
const DOMAIN = Buffer.from('trustmesh/v1\n', 'latin1');
const keys = new Map();
function check(frame) {
  if (frame.length < 98 || frame.length > 1024 * 1024 || frame[0] !== 1) return 0;
  const id = frame.toString('latin1', 1, 33);
  let key = keys.get(id);
  if (key === undefined) {
    if (keys.size > 16384) keys.clear();
    try {
      key = crypto.createPublicKey({ key: Buffer.concat([SPKI, frame.subarray(1, 33)]), format: 'der', type: 'spki' });
    } catch {
      key = null;
    }
    keys.set(id, key);
  }
  if (key === null) return 0;
  try {
    return crypto.verify(null, Buffer.concat([DOMAIN, frame.subarray(97)]), key, frame.subarray(33, 97)) ? 1 : 0;
  } catch {
    return 0;
  }
}
parentPort.on('message', (msg) => {
  const data = Buffer.from(msg.data);
  const ends = new Uint32Array(msg.ends);
  const out = new Uint8Array(ends.length);
  let start = 0;
  for (let i = 0; i < ends.length; i++) {
    out[i] = check(data.subarray(start, ends[i]));
    start = ends[i];
  }
  parentPort.postMessage({ id: msg.id, out: out.buffer }, [out.buffer]);
});
`;

const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const DOMAIN = Buffer.from('trustmesh/v1\n', 'latin1');

const hereKeys = new Map<string, KeyObject | null>();

/** Same check in this thread (workers: 0, or a pool whose workers died). */
function checkHere(frame: Uint8Array): boolean {
  if (frame.length < 98 || frame.length > 1024 * 1024 || frame[0] !== 1) return false;
  const id = Buffer.from(frame.buffer, frame.byteOffset + 1, 32).toString('latin1');
  let key = hereKeys.get(id);
  if (key === undefined) {
    if (hereKeys.size > 16384) hereKeys.clear();
    try {
      key = createPublicKey({ key: Buffer.concat([SPKI_PREFIX, frame.subarray(1, 33)]), format: 'der', type: 'spki' });
    } catch {
      key = null;
    }
    hereKeys.set(id, key);
  }
  if (key === null) return false;
  try {
    return verify(null, Buffer.concat([DOMAIN, frame.subarray(97)]), key, frame.subarray(33, 97));
  } catch {
    return false;
  }
}

/** Checks batches of frames' Ed25519 signatures on worker threads. */
export interface SignaturePool {
  readonly workers: number;
  /** One boolean per frame: does its signature verify? */
  check(frames: readonly Uint8Array[]): Promise<boolean[]>;
  close(): Promise<void>;
}

/** Default worker count: one per core. */
export const defaultWorkers = (): number => Math.max(1, cpus().length);

export function createSignaturePool(workers: number = defaultWorkers()): SignaturePool {
  if (!Number.isSafeInteger(workers) || workers < 0) throw new RangeError('workers must be a non-negative integer');
  if (workers === 0) {
    return { workers, check: async (frames) => frames.map(checkHere), close: async () => undefined };
  }
  const threads = Array.from({ length: workers }, () => {
    const w = new Worker(WORKER_SOURCE, { eval: true });
    w.unref();
    return w;
  });
  const pending = new Map<number, { resolve: (out: Uint8Array) => void; reject: (err: Error) => void }>();
  let failed: Error | undefined;
  let nextId = 0;
  let turn = 0;
  const busy = new Array<number>(workers).fill(0);
  for (const [i, w] of threads.entries()) {
    w.on('message', (msg: { id: number; out: ArrayBuffer }) => {
      busy[i]!--;
      const done = pending.get(msg.id);
      pending.delete(msg.id);
      done?.resolve(new Uint8Array(msg.out));
    });
    w.on('error', (err) => {
      failed = err;
      for (const p of pending.values()) p.reject(err);
      pending.clear();
    });
  }
  const send = (frames: readonly Uint8Array[]): Promise<Uint8Array> => {
    let total = 0;
    for (const f of frames) total += f.length;
    const data = new Uint8Array(total);
    const ends = new Uint32Array(frames.length);
    let at = 0;
    for (let i = 0; i < frames.length; i++) {
      data.set(frames[i]!, at);
      at += frames[i]!.length;
      ends[i] = at;
    }
    // the least busy worker, round-robin among equals
    let pick = turn++ % workers;
    for (let i = 0; i < workers; i++) if (busy[i]! < busy[pick]!) pick = i;
    busy[pick]!++;
    const id = nextId++;
    return new Promise((resolve, reject) => {
      if (failed !== undefined) return reject(failed);
      pending.set(id, { resolve, reject });
      threads[pick]!.postMessage({ id, data: data.buffer, ends: ends.buffer }, [data.buffer, ends.buffer]);
    });
  };
  return {
    workers,
    async check(frames) {
      if (frames.length === 0) return [];
      // A failed worker pool must not stop the audit: check in this thread instead.
      if (failed !== undefined) return frames.map(checkHere);
      // split so every worker gets a share, at least 64 frames a piece
      const pieces = Math.max(1, Math.min(workers, Math.floor(frames.length / 64)));
      const size = Math.ceil(frames.length / pieces);
      const parts: Promise<Uint8Array>[] = [];
      for (let i = 0; i < frames.length; i += size) parts.push(send(frames.slice(i, i + size)));
      let results: Uint8Array[];
      try {
        results = await Promise.all(parts);
      } catch {
        return frames.map(checkHere);
      }
      const out: boolean[] = [];
      for (const r of results) for (const b of r) out.push(b === 1);
      return out;
    },
    async close() {
      await Promise.all(threads.map((w) => w.terminate()));
    },
  };
}
