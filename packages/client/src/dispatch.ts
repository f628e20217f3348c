import { InvalidArgumentError, MESSAGE_TYPES, type MeshSubjects, type OpenedFrame, TrustMeshError } from '@trustmesh/protocol';
import { AgentClosedError, FrameTooLargeError } from './errors.ts';
import type { PeerRef } from './extensions.ts';
import type { Ledger } from './ledger.ts';
import type { Outbound } from './outbound.ts';
import { describeThrown } from './text.ts';

export interface MessageContext {
  /** The sender's DID, proven by its signature. */
  from: string;
  typ: string;
  /** The verified frame, raw bytes included (a copy: for audit or evidence). */
  frame: OpenedFrame;
  /** True when the sender waits for a reply. */
  isRequest: boolean;
  /** Aborted when the agent leaves, is killed, or the task is cancelled. */
  signal: AbortSignal;
}

export type Handler = (data: unknown, context: MessageContext) => unknown;

export interface DispatchLimits {
  /** Handler calls running at once, all senders together; default 64. */
  maxConcurrent: number;
  /** Handler calls of one sender running at once; default a quarter of maxConcurrent. */
  maxConcurrentPerSender: number;
  /** Calls waiting for a slot, all senders together; default 256. */
  maxQueued: number;
  /** Frame bytes waiting for a slot; default 32 MiB. */
  maxQueuedBytes: number;
}

export const DEFAULT_DISPATCH_LIMITS: DispatchLimits = {
  maxConcurrent: 64,
  maxConcurrentPerSender: 16,
  maxQueued: 256,
  maxQueuedBytes: 32 * 1024 * 1024,
};

interface Job {
  readonly frame: OpenedFrame;
  readonly handler: Handler;
  readonly isRequest: boolean;
  readonly sender: PeerRef;
}

/**
 * Runs handlers with bounded, fair concurrency. Each sender has its own queue;
 * free slots go round-robin across senders, and no sender holds more than its
 * share of slots, so one sender cannot take every slot. Past the bounds a
 * request is answered with a signed `tm.error` `busy` and a one-way message is
 * counted as `overloaded` and dropped at once (nothing keeps its bytes).
 */
export class Dispatcher {
  private readonly handlers = new Map<string, Handler>();
  private readonly queues = new Map<string, Job[]>();
  private readonly running = new Map<string, number>();
  private readonly controllers = new Set<AbortController>();
  private queued = 0;
  private queuedBytes = 0;
  private inFlight = 0;

  constructor(
    private readonly outbound: Outbound,
    private readonly ledger: Ledger,
    private readonly subjects: MeshSubjects,
    private readonly selfId: string,
    private readonly limits: DispatchLimits,
  ) {}

  get stats(): { inFlight: number; queued: number } {
    return { inFlight: this.inFlight, queued: this.queued };
  }

  handle(typ: string, handler: Handler): void {
    if (typeof handler !== 'function') throw new InvalidArgumentError('handler must be a function');
    this.handlers.set(typ, handler);
  }

  /** A verified, admitted msg or req from `sender`. */
  submit(frame: OpenedFrame, isRequest: boolean, sender: PeerRef, subject: string): void {
    const handler = this.handlers.get(frame.typ);
    if (handler === undefined) {
      if (isRequest) this.reply(sender, frame, MESSAGE_TYPES.error, { code: 'no_handler', message: `no handler for '${frame.typ}'` });
      else {
        this.ledger.counters.unhandled++;
        this.ledger.report('unhandled', frame);
      }
      return;
    }
    const job: Job = { frame, handler, isRequest, sender };
    if (this.queued === 0 && this.inFlight < this.limits.maxConcurrent && this.runningFor(sender) < this.limits.maxConcurrentPerSender) {
      this.run(job);
      return;
    }
    const queue = this.queues.get(sender.agentId);
    const full =
      this.queued >= this.limits.maxQueued ||
      this.queuedBytes + frame.raw.length > this.limits.maxQueuedBytes ||
      (queue?.length ?? 0) >= Math.max(1, Math.floor(this.limits.maxQueued / 4));
    if (full) {
      this.overflow(job, subject);
      return;
    }
    if (queue === undefined) this.queues.set(sender.agentId, [job]);
    else queue.push(job);
    this.queued++;
    this.queuedBytes += frame.raw.length;
    this.pump();
  }

  /** Aborts every running handler and drops every queued call (leave, kill). */
  abortAll(reason: unknown): void {
    for (const controller of this.controllers) controller.abort(reason);
    this.queues.clear();
    this.queued = 0;
    this.queuedBytes = 0;
  }

  private runningFor(sender: PeerRef): number {
    return this.running.get(sender.agentId) ?? 0;
  }

  private overflow(job: Job, subject: string): void {
    if (job.isRequest) {
      this.reply(job.sender, job.frame, MESSAGE_TYPES.error, { code: 'busy', message: 'the agent is at its handler limit; retry later' });
      return;
    }
    this.ledger.refuse({
      reason: 'overloaded',
      detail: 'handler queue full; one-way message dropped',
      subject,
      size: job.frame.raw.length,
      blame: 'none',
      publisher: job.sender.did,
      publisherAuthenticated: false,
    });
  }

  private pump(): void {
    // Round-robin: take the first sender with room, then move it to the back.
    while (this.queued > 0 && this.inFlight < this.limits.maxConcurrent) {
      let picked: Job | undefined;
      for (const [sender, queue] of this.queues) {
        if ((this.running.get(sender) ?? 0) >= this.limits.maxConcurrentPerSender) continue;
        picked = queue.shift()!;
        this.queues.delete(sender);
        if (queue.length > 0) this.queues.set(sender, queue);
        break;
      }
      if (picked === undefined) return;
      this.queued--;
      this.queuedBytes -= picked.frame.raw.length;
      this.run(picked);
    }
  }

  private run(job: Job): void {
    const { frame, isRequest, sender } = job;
    this.inFlight++;
    this.running.set(sender.agentId, this.runningFor(sender) + 1);
    const call = new Call(this, job);
    let outcome: unknown;
    try {
      outcome = job.handler(frame.data, call);
    } catch (err) {
      this.onHandlerError(err, job);
      this.finish(call);
      return;
    }
    if (isPromiseLike(outcome)) {
      // then() on a peer-shaped thenable could throw: treat that as a handler error too.
      try {
        outcome.then(
          (value) => {
            if (isRequest) this.reply(sender, frame, MESSAGE_TYPES.reply, value);
            this.finish(call);
          },
          (err) => {
            this.onHandlerError(err, job);
            this.finish(call);
          },
        );
      } catch (err) {
        this.onHandlerError(err, job);
        this.finish(call);
      }
      return;
    }
    if (isRequest) this.reply(sender, frame, MESSAGE_TYPES.reply, outcome);
    this.finish(call);
  }

  /** Makes the AbortController of a call whose handler asked for `ctx.signal`. */
  controllerFor(finished: boolean): AbortController {
    const controller = new AbortController();
    if (finished) controller.abort(new AgentClosedError('the handler call has finished'));
    else this.controllers.add(controller);
    return controller;
  }

  private finish(call: Call): void {
    const ended = Call.end(call);
    if (ended === undefined) return;
    const { sender, controller } = ended;
    if (controller !== undefined) this.controllers.delete(controller);
    this.inFlight--;
    const left = this.runningFor(sender) - 1;
    if (left > 0) this.running.set(sender.agentId, left);
    else this.running.delete(sender.agentId);
    this.pump();
  }

  private onHandlerError(err: unknown, job: Job): void {
    this.ledger.counters.handlerErrors++;
    this.ledger.report('handlerError', err, job.frame);
    if (job.isRequest) this.reply(job.sender, job.frame, MESSAGE_TYPES.error, { code: 'handler_error', message: describeThrown(err) });
  }

  /** Sends a signed reply; if the result cannot be sent, tells the requester why instead of leaving it hanging. */
  private reply(to: PeerRef, request: OpenedFrame, typ: string, data: unknown): void {
    const subject = this.subjects.reply(to.agentId, this.selfId);
    const send = (t: string, d: unknown) =>
      this.outbound.send(subject, { kind: 'rep', to, typ: t, data: d }, { typ: t, data: d, aud: to.did, cor: request.id });
    try {
      send(typ, data);
    } catch (err) {
      // Closed, or a guard (kill) refused: nothing to tell. Anything else is the result's fault.
      if (
        typ === MESSAGE_TYPES.error ||
        (err instanceof TrustMeshError && err.code !== 'invalid_argument' && !(err instanceof FrameTooLargeError))
      )
        return;
      try {
        const code = err instanceof FrameTooLargeError ? 'reply_too_large' : 'reply_unencodable';
        send(MESSAGE_TYPES.error, { code, message: describeThrown(err) });
      } catch {
        // the agent is closing or halted: the requester's timeout answers it
      }
    }
  }
}

/**
 * One handler call: its {@link MessageContext}. The AbortController is made
 * only if the handler looks at `signal`: most never do, and one per message
 * is a measurable share of the receive path. The dispatcher's state is in
 * #private fields, out of the handler's reach.
 */
class Call implements MessageContext {
  readonly from: string;
  readonly typ: string;
  readonly frame: OpenedFrame;
  readonly isRequest: boolean;
  readonly #dispatcher: Dispatcher;
  readonly #sender: PeerRef;
  #finished = false;
  #controller: AbortController | undefined;

  constructor(dispatcher: Dispatcher, job: Job) {
    this.from = job.frame.iss;
    this.typ = job.frame.typ;
    this.frame = job.frame;
    this.isRequest = job.isRequest;
    this.#dispatcher = dispatcher;
    this.#sender = job.sender;
  }

  get signal(): AbortSignal {
    this.#controller ??= this.#dispatcher.controllerFor(this.#finished);
    return this.#controller.signal;
  }

  /** Marks the call finished once; returns its sender and controller then, undefined after. */
  static end(call: Call): { sender: PeerRef; controller: AbortController | undefined } | undefined {
    if (call.#finished) return undefined;
    call.#finished = true;
    return { sender: call.#sender, controller: call.#controller };
  }
}

const isPromiseLike = (value: unknown): value is PromiseLike<unknown> => {
  try {
    return (
      value !== null &&
      (typeof value === 'object' || typeof value === 'function') &&
      typeof (value as { then?: unknown }).then === 'function'
    );
  } catch {
    return false;
  }
};
