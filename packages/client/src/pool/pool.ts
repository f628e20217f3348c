import { Worker } from 'node:worker_threads';

/** Main thread -> worker: frames end to end in one transferred buffer. */
export interface BatchRequest {
  id: number;
  frames: ArrayBuffer;
  /** End offset of each frame in `frames`. */
  ends: Uint32Array;
}

/** Worker -> main thread: 1 where the frame's signature verified, 0 where not. */
export interface BatchResult {
  id: number;
  ok: Uint8Array;
}

/** Called with the verdicts of a batch, or with an error when no worker could give them (the caller verifies itself). */
export type BatchCallback = (verdicts: Uint8Array | Error) => void;

interface Lane {
  worker: Worker;
  /** Whether it ever answered: a worker that dies before its first answer is not restarted. */
  answered: boolean;
  /** Batches sent and not answered, by id. */
  outstanding: Map<number, BatchCallback>;
  frames: number;
}

/** Most workers a pool starts (a guard against a typo, not a tuning value). */
export const MAX_VERIFY_WORKERS = 64;

/**
 * Worker threads that check frame signatures in batches. A batch goes to the
 * worker with the fewest frames outstanding; its verdicts come back as one
 * message. Order across batches is the caller's business ({@link PooledVerifier}
 * completes them in submission order). Workers are unref'd: the pool never
 * keeps a process alive. A worker that dies fails its outstanding batches with
 * an error and is replaced.
 */
export class VerifyPool {
  readonly size: number;
  private readonly lanes: Lane[] = [];
  private nextId = 1;
  private closed = false;
  /** Frames whose verdicts came from a worker (for tests and diagnostics). */
  verified = 0;

  constructor(size: number) {
    this.size = size;
    for (let i = 0; i < size; i++) this.lanes.push(this.start());
  }

  /** Frames (each already prechecked) to verify; `done` gets one verdict per frame, in order. */
  verify(frames: readonly Uint8Array[], done: BatchCallback): void {
    if (this.closed || this.lanes.length === 0) {
      done(new Error(this.closed ? 'the verification pool is closed' : 'no verification worker could start'));
      return;
    }
    let total = 0;
    for (const f of frames) total += f.length;
    const buffer = new ArrayBuffer(total);
    const bytes = new Uint8Array(buffer);
    const ends = new Uint32Array(frames.length);
    let at = 0;
    for (let i = 0; i < frames.length; i++) {
      bytes.set(frames[i]!, at);
      at += frames[i]!.length;
      ends[i] = at;
    }
    let lane = this.lanes[0]!;
    for (const l of this.lanes) if (l.frames < lane.frames) lane = l;
    const id = this.nextId++;
    lane.outstanding.set(id, (verdicts) => {
      lane.frames -= frames.length;
      done(verdicts);
    });
    lane.frames += frames.length;
    const request: BatchRequest = { id, frames: buffer, ends };
    lane.worker.postMessage(request, [buffer, ends.buffer]);
  }

  /** Workers running (0 once closed). */
  get workers(): number {
    return this.lanes.length;
  }

  /** Frames sent to workers and not answered yet. */
  get inFlight(): number {
    let n = 0;
    for (const l of this.lanes) n += l.frames;
    return n;
  }

  /** Stops every worker; outstanding batches get an error (their callers verify themselves). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const lanes = this.lanes.splice(0);
    await Promise.all(lanes.map((l) => l.worker.terminate().catch(() => undefined)));
    for (const l of lanes) this.fail(l, new Error('the verification pool closed'));
  }

  private start(): Lane {
    const worker = new Worker(new URL('./worker-entry.mjs', import.meta.url));
    worker.unref();
    const lane: Lane = { worker, answered: false, outstanding: new Map(), frames: 0 };
    worker.on('message', (result: BatchResult) => {
      const callback = lane.outstanding.get(result.id);
      if (callback === undefined) return;
      lane.outstanding.delete(result.id);
      lane.answered = true;
      this.verified += result.ok.length;
      callback(result.ok);
    });
    const lost = (err: Error) => {
      if (this.closed) return;
      const i = this.lanes.indexOf(lane);
      if (i < 0) return;
      // One that never answered would fail again at once: the pool shrinks instead (at 0, callers verify themselves).
      if (lane.answered) this.lanes[i] = this.start();
      else this.lanes.splice(i, 1);
      this.fail(lane, err);
    };
    worker.on('error', lost);
    worker.on('exit', (code) => lost(new Error(`a verification worker exited with code ${code}`)));
    return lane;
  }

  private fail(lane: Lane, err: Error): void {
    const callbacks = [...lane.outstanding.values()];
    lane.outstanding.clear();
    for (const callback of callbacks) callback(err);
  }
}

const shared = new Map<number, { pool: VerifyPool; users: number }>();

/**
 * The process-wide pool of `size` workers, shared by every agent that asks for
 * that size (a process hosting many agents starts one pool, not one per
 * agent). Each acquire must be matched by one {@link releasePool}: the last
 * release stops the workers.
 */
export function acquirePool(size: number): VerifyPool {
  let entry = shared.get(size);
  if (entry === undefined) shared.set(size, (entry = { pool: new VerifyPool(size), users: 0 }));
  entry.users++;
  return entry.pool;
}

export async function releasePool(pool: VerifyPool): Promise<void> {
  const entry = shared.get(pool.size);
  if (entry === undefined || entry.pool !== pool) return;
  if (--entry.users > 0) return;
  shared.delete(pool.size);
  await pool.close();
}

/** The process-wide pools in use: their size and how many agents use each. */
export function sharedPools(): { size: number; users: number; pool: VerifyPool }[] {
  return [...shared.values()].map(({ pool, users }) => ({ size: pool.size, users, pool }));
}
