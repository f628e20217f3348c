/**
 * The worker's side of one task: runs the handler once, streams its states to
 * the delegator, and on cancel aborts the handler's signal and cancels every
 * sub-delegation before acknowledging.
 */
import type { CapabilityToken } from '@trustmesh/protocol';
import { FrameTooLargeError } from '../errors.ts';
import { describeThrown } from '../text.ts';
import type { DelegateTaskInit, TaskContext, TaskHandle, TaskHandler, TaskSnapshot, TaskStatus } from './types.ts';
import { isTerminal, TASK_TYPES, type TaskState } from './wire.ts';

export interface WorkerHost {
  send(to: string, typ: string, data: unknown): void;
  delegate(init: DelegateTaskInit, parent: ServedTask): TaskHandle;
  cancelAckMs(): number;
  now(): number;
}

export class ServedTask {
  readonly id: string;
  readonly delegator: string;
  readonly capability: string;
  readonly parent: string | undefined;
  readonly chain: readonly CapabilityToken[];
  /** A record of a refused task: remembered so the same id is not judged twice; never run. */
  isRefusal = false;
  #state: TaskState = 'submitted';
  readonly #history: TaskStatus[] = [];
  readonly #controller = new AbortController();
  readonly #children = new Set<TaskHandle>();
  #input: ((data: unknown) => void) | undefined;

  constructor(
    private readonly host: WorkerHost,
    init: { id: string; delegator: string; capability: string; chain: readonly CapabilityToken[]; parent?: string },
  ) {
    this.id = init.id;
    this.delegator = init.delegator;
    this.capability = init.capability;
    this.chain = init.chain;
    this.parent = init.parent;
  }

  static refused(host: WorkerHost, id: string, delegator: string, reason: string, detail: string): ServedTask {
    const task = new ServedTask(host, { id, delegator, capability: '', chain: [] });
    task.isRefusal = true;
    task.#record('rejected', undefined, { code: reason, message: detail });
    return task;
  }

  get state(): TaskState {
    return this.#state;
  }

  run(handler: TaskHandler, input: unknown): void {
    this.#status('working');
    const ctx = this.#context();
    // The handler runs on a later tick, outside the receive path; whatever it does is contained.
    Promise.resolve()
      .then(() => handler(input, ctx))
      .then(
        (result) => this.#end('completed', result),
        (error: unknown) => this.#end('failed', undefined, { code: 'handler_error', message: describeThrown(error) }),
      );
  }

  #end(state: 'completed' | 'failed', result: unknown, error?: { code: string; message: string }): void {
    if (isTerminal(this.#state)) return; // canceled meanwhile: the delegator has its answer
    if (state === 'completed') {
      try {
        this.#send({ id: this.id, state, result });
        this.#record(state);
        return;
      } catch (err) {
        error =
          err instanceof FrameTooLargeError
            ? { code: 'result_too_large', message: err.message }
            : { code: 'result_unencodable', message: describeThrown(err) };
      }
    }
    this.#status('failed', undefined, error);
  }

  /** The delegator canceled: abort the handler, cancel every sub-delegation (bounded wait), then acknowledge. */
  async cancel(reason: string): Promise<void> {
    if (isTerminal(this.#state)) return;
    this.#record('canceled', reason);
    // Children first, so their acknowledgements are the ones awaited (the signal would cancel them too, unawaited).
    const children = [...this.#children].map((child) => child.cancel(`parent task canceled: ${reason}`));
    this.#controller.abort(new Error(`task canceled: ${reason}`));
    this.#input = undefined;
    await Promise.allSettled(children);
    try {
      this.#send({ id: this.id, state: 'canceled', message: reason.slice(0, 1024) });
    } catch {
      // leaving
    }
  }

  /** The agent left: abort the handler; nothing can be sent any more. */
  abort(reason: string): void {
    if (isTerminal(this.#state)) return;
    this.#record('canceled', reason);
    this.#controller.abort(new Error(reason));
  }

  provideInput(data: unknown): boolean {
    const resolve = this.#input;
    if (resolve === undefined) return false;
    this.#input = undefined;
    this.#status('working');
    resolve(data);
    return true;
  }

  #context(): TaskContext {
    const last = this.chain[this.chain.length - 1]!;
    return {
      id: this.id,
      delegator: this.delegator,
      capability: this.capability,
      scope: last.scope,
      chain: this.chain,
      signal: this.#controller.signal,
      update: (state, message) => {
        if (state !== 'working' && state !== 'input-required') throw new TypeError("update() takes 'working' or 'input-required'");
        if (!isTerminal(this.#state)) this.#status(state, message);
      },
      requestInput: (prompt) => {
        if (isTerminal(this.#state)) return Promise.reject(this.#controller.signal.reason);
        if (this.#input !== undefined) return Promise.reject(new TypeError('an input request is already pending'));
        return new Promise((resolve, reject) => {
          this.#input = resolve;
          this.#controller.signal.addEventListener('abort', () => reject(this.#controller.signal.reason), { once: true });
          this.#status('input-required', prompt);
        });
      },
      delegate: (init) => {
        if (this.#controller.signal.aborted) throw this.#controller.signal.reason;
        const signal = init.signal === undefined ? this.#controller.signal : AbortSignal.any([init.signal, this.#controller.signal]);
        const child = this.host.delegate({ ...init, chain: this.chain, signal }, this);
        this.#children.add(child);
        child.result.finally(() => this.#children.delete(child)).catch(() => undefined);
        return child;
      },
    };
  }

  #status(state: TaskState, message?: string, error?: { code: string; message: string }): void {
    this.#record(state, message, error);
    try {
      this.#send({ id: this.id, state, ...(message !== undefined && { message: message.slice(0, 1024) }), ...(error && { error }) });
    } catch {
      // leaving, or the delegator is gone: its own timeout ends the task there
    }
  }

  #send(data: unknown): void {
    this.host.send(this.delegator, TASK_TYPES.status, data);
  }

  #record(state: TaskState, message?: string, error?: { code: string; message: string }): void {
    this.#state = state;
    this.#history.push({
      state,
      at: this.host.now(),
      ...(message !== undefined && { message }),
      ...(error !== undefined && { error }),
    });
  }

  snapshot(): TaskSnapshot {
    return {
      id: this.id,
      role: 'worker',
      capability: this.capability,
      state: this.#state,
      peer: this.delegator,
      ...(this.parent !== undefined && { parent: this.parent }),
      chain: this.chain.map((t) => ({ issuer: t.issuer, audience: t.audience, scope: t.scope, depth: t.depth })),
      history: [...this.#history],
    };
  }
}
