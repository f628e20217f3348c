import { byteKey, MESSAGE_TYPES, type OpenedFrame, type RejectReason } from '@trustmesh/protocol';
import { type Deadline, Deadlines } from './deadlines.ts';
import { RemoteError, RequestTimeoutError } from './errors.ts';
import type { PeerRef, RequestCall, RequestInterceptor } from './extensions.ts';
import type { Outbound } from './outbound.ts';
import type { MeshSubjects } from '@trustmesh/protocol';

interface Pending {
  readonly to: PeerRef;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
  readonly deadline: Deadline;
  readonly detach: () => void;
}

/**
 * Pending requests and their replies. One {@link Deadlines} structure holds every
 * timeout; interceptors (e.g. per-peer breakers) wrap each call.
 */
export class Requests {
  private readonly pending = new Map<string, Pending>();
  private readonly deadlines: Deadlines;
  private readonly interceptors: RequestInterceptor[] = [];

  constructor(
    private readonly outbound: Outbound,
    private readonly subjects: MeshSubjects,
    private readonly selfId: string,
    now: () => number,
  ) {
    this.deadlines = new Deadlines(now);
  }

  get size(): number {
    return this.pending.size;
  }

  /** Timers armed for all pending requests together: 0 or 1. */
  get timers(): number {
    return this.deadlines.armed ? 1 : 0;
  }

  addInterceptor(interceptor: RequestInterceptor): void {
    this.interceptors.push(interceptor);
  }

  /** Runs the interceptors (first added is outermost), then sends. */
  call(call: RequestCall): Promise<unknown> {
    let next = (c: RequestCall): Promise<unknown> => this.send(c);
    for (let i = this.interceptors.length - 1; i >= 0; i--) {
      const interceptor = this.interceptors[i]!;
      const inner = next;
      next = (c) => {
        try {
          return Promise.resolve(interceptor(c, inner));
        } catch (err) {
          return Promise.reject(err);
        }
      };
    }
    return next(call);
  }

  private send(call: RequestCall): Promise<unknown> {
    const { to, typ, data, timeoutMs, signal } = call;
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise((resolve, reject) => {
      let key = '';
      const onAbort = () => {
        this.settle(key)?.reject(signal!.reason);
      };
      const { body } = this.outbound.send(
        this.subjects.request(to.agentId, this.selfId),
        { kind: 'req', to, typ, data },
        { typ, data, aud: to.did },
      );
      key = byteKey(body.id);
      this.pending.set(key, {
        to,
        resolve,
        reject,
        deadline: this.deadlines.at(timeoutMs, () => this.settle(key)?.reject(new RequestTimeoutError(to.did, typ, timeoutMs))),
        detach: () => signal?.removeEventListener('abort', onAbort),
      });
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /**
   * Matches a verified reply (docs/protocol.md §10) to the pending request it
   * answers; returns the rejection reason when it answers none.
   */
  onReply(frame: OpenedFrame, from: string): RejectReason | undefined {
    const key = frame.cor === undefined ? undefined : byteKey(frame.cor);
    const entry = key === undefined ? undefined : this.pending.get(key);
    if (entry === undefined || entry.to.agentId !== from) return 'unsolicited';
    if (frame.typ !== MESSAGE_TYPES.reply && frame.typ !== MESSAGE_TYPES.error) return 'bad_frame';
    this.settle(key!);
    if (frame.typ === MESSAGE_TYPES.reply) entry.resolve(frame.data);
    else entry.reject(RemoteError.fromReply(frame.data, frame.iss));
    return undefined;
  }

  /** Fails every pending request (leave, kill). */
  failAll(error: Error): void {
    for (const key of [...this.pending.keys()]) this.settle(key)?.reject(error);
    this.deadlines.clear();
  }

  private settle(key: string): Pending | undefined {
    const entry = this.pending.get(key);
    if (entry === undefined) return undefined;
    this.pending.delete(key);
    entry.deadline.cancel();
    entry.detach();
    return entry;
  }
}
