/**
 * The delegator's side of one task: its state, the handle the caller holds,
 * the timeout, and the link it signs for the worker.
 */
import type { CapabilityToken } from '@trustmesh/protocol';
import { cleanText } from '../text.ts';
import { TaskCanceledError, TaskFailedError, TaskRejectedError, TaskTimeoutError } from './errors.ts';
import type { TaskHandle, TaskSnapshot, TaskStatus } from './types.ts';
import { isTerminal, type StatusData, type TaskState } from './wire.ts';

/** What an outgoing task needs from the module: sending, minting, reporting. */
export interface OutgoingHost {
  now(): number;
  /** Sends a task frame to `worker` (a DID). */
  send(worker: string, typ: string, data: unknown): void;
  cancelAckMs(): number;
  outcome(worker: string, outcome: 'success' | 'failure', task: OutgoingTask): void;
  settled(task: OutgoingTask): void;
}

export class OutgoingTask implements TaskHandle {
  readonly id: string;
  readonly capability: string;
  /** Set for a capability-addressed task: the pattern whose queue group got the offer. */
  readonly route: string | undefined;
  readonly parent: string | undefined;
  readonly result: Promise<unknown>;
  readonly timeoutMs: number;
  #state: TaskState = 'submitted';
  #worker: string | undefined;
  #chain: readonly CapabilityToken[] = [];
  readonly #history: TaskStatus[] = [];
  readonly #listeners = new Set<(status: TaskStatus) => void>();
  #resolve!: (value: unknown) => void;
  #reject!: (error: Error) => void;
  #timer: NodeJS.Timeout | undefined;
  #ack: (() => void) | undefined;
  /** The worker's last signed status frame, as received: the task record a report to the broker carries. */
  #record: Uint8Array | undefined;

  constructor(
    private readonly host: OutgoingHost,
    init: { id: string; capability: string; route?: string; parent?: string; timeoutMs: number },
  ) {
    this.id = init.id;
    this.capability = init.capability;
    this.route = init.route;
    this.parent = init.parent;
    this.timeoutMs = init.timeoutMs;
    this.result = new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    // A caller that never awaits the result must not crash the process with an unhandled rejection.
    this.result.catch(() => undefined);
    this.#push({ state: 'submitted', at: host.now() });
    this.#timer = setTimeout(() => this.#timeout(), init.timeoutMs);
    this.#timer.unref?.();
  }

  get state(): TaskState {
    return this.#state;
  }

  get worker(): string | undefined {
    return this.#worker;
  }

  get history(): readonly TaskStatus[] {
    return this.#history;
  }

  /** The worker's last signed status frame (completed, failed, or for a timeout the last working one), if any. */
  get record(): Uint8Array | undefined {
    return this.#record;
  }

  get terminal(): boolean {
    return isTerminal(this.#state);
  }

  /** The worker and the chain granted to it (the last link's audience). */
  assign(worker: string | undefined, chain: readonly CapabilityToken[]): void {
    this.#worker = worker;
    this.#chain = chain;
  }

  onStatus(listener: (status: TaskStatus) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async *updates(): AsyncIterableIterator<TaskStatus> {
    let seen = 0;
    let wake: (() => void) | undefined;
    const off = this.onStatus(() => wake?.());
    try {
      while (true) {
        while (seen < this.#history.length) {
          const status = this.#history[seen++]!;
          yield status;
          if (isTerminal(status.state)) return;
        }
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
      }
    } finally {
      off();
    }
  }

  respond(data: unknown): void {
    if (this.#worker === undefined || this.terminal) return;
    this.host.send(this.#worker, 'tm.task.input', { id: this.id, data });
  }

  cancel(reason = 'canceled by the delegator'): Promise<boolean> {
    if (this.terminal) return Promise.resolve(false);
    const worker = this.#worker;
    const acknowledged =
      worker === undefined
        ? Promise.resolve(true)
        : new Promise<boolean>((resolve) => {
            const timer = setTimeout(() => {
              this.#ack = undefined;
              resolve(false);
            }, this.host.cancelAckMs());
            this.#ack = () => {
              clearTimeout(timer);
              this.#ack = undefined;
              resolve(true);
            };
          });
    this.#finish({ state: 'canceled', at: this.host.now(), message: cleanText(reason) }, new TaskCanceledError(this.id, cleanText(reason)));
    if (worker !== undefined) {
      try {
        this.host.send(worker, 'tm.task.cancel', { id: this.id, reason: cleanText(reason, 256) });
      } catch {
        // the agent is leaving: nothing more can be sent, and the worker's own timeout ends it
      }
    }
    return acknowledged;
  }

  /** A verified status frame from the assigned worker. Returns false when it changes nothing (ignored). */
  onStatusFrame(status: StatusData, from: string, raw: Uint8Array): boolean {
    if (this.terminal) {
      if (this.#state === 'canceled' && status.state === 'canceled' && this.#ack !== undefined) {
        this.#ack();
        return true;
      }
      return false;
    }
    const entry: TaskStatus = {
      state: status.state,
      at: this.host.now(),
      from,
      ...(status.message !== undefined && { message: cleanText(status.message) }),
      ...(status.error !== undefined && { error: status.error }),
    };
    switch (status.state) {
      case 'submitted':
        return false;
      case 'working':
      case 'input-required':
        this.#record = raw;
        this.#push(entry);
        return true;
      case 'completed':
        this.#record = raw;
        this.#finish(entry, undefined, status.result);
        this.host.outcome(from, 'success', this);
        return true;
      case 'failed': {
        this.#record = raw;
        const e = status.error ?? { code: 'failed', message: status.message ?? 'no reason given' };
        this.#finish(entry, new TaskFailedError(this.id, e.code, cleanText(e.message), from));
        this.host.outcome(from, 'failure', this);
        return true;
      }
      case 'rejected': {
        const e = status.error ?? { code: 'rejected', message: status.message ?? 'no reason given' };
        this.#finish(entry, new TaskRejectedError(this.id, e.code, cleanText(e.message), from, e.link));
        return true;
      }
      case 'canceled':
        this.#finish(
          entry,
          new TaskCanceledError(this.id, `the worker canceled it${status.message ? `: ${cleanText(status.message)}` : ''}`),
        );
        return true;
    }
  }

  /** A local refusal before the task was sent (an interceptor such as an open breaker): `failed` with the error's code. */
  refuse(error: unknown): void {
    if (this.terminal) return;
    const err = error instanceof Error ? error : new Error('refused before sending');
    const code: unknown = (err as Error & { code?: unknown }).code;
    this.#finish(
      {
        state: 'failed',
        at: this.host.now(),
        error: { code: typeof code === 'string' ? code : 'refused', message: cleanText(err.message) },
      },
      err,
    );
  }

  /** The agent left: settle without sending anything. */
  abandon(reason: string): void {
    if (!this.terminal) this.#finish({ state: 'canceled', at: this.host.now(), message: reason }, new TaskCanceledError(this.id, reason));
  }

  #timeout(): void {
    if (this.terminal) return;
    const worker = this.#worker;
    this.#finish(
      { state: 'failed', at: this.host.now(), error: { code: 'timeout', message: `no terminal state within ${this.timeoutMs} ms` } },
      new TaskTimeoutError(this.id, this.timeoutMs, worker),
    );
    if (worker === undefined) return;
    try {
      this.host.send(worker, 'tm.task.cancel', { id: this.id, reason: 'timeout' });
    } catch {
      // leaving
    }
    this.host.outcome(worker, 'failure', this);
  }

  #finish(entry: TaskStatus, error: Error | undefined, value?: unknown): void {
    clearTimeout(this.#timer);
    this.#push(entry);
    if (error === undefined) this.#resolve(value);
    else this.#reject(error);
    this.host.settled(this);
  }

  #push(entry: TaskStatus): void {
    this.#state = entry.state;
    this.#history.push(entry);
    for (const listener of this.#listeners) {
      try {
        listener(entry);
      } catch {
        // a listener's failure is its own; the task goes on
      }
    }
  }

  snapshot(): TaskSnapshot {
    return {
      id: this.id,
      role: 'delegator',
      capability: this.capability,
      state: this.#state,
      peer: this.#worker,
      ...(this.parent !== undefined && { parent: this.parent }),
      chain: this.#chain.map((t) => ({ issuer: t.issuer, audience: t.audience, scope: t.scope, depth: t.depth })),
      history: [...this.#history],
    };
  }
}
