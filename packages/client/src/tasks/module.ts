/**
 * The task module: an agent extension that delegates tasks under capability
 * chains and serves them (docs/delegation.md, part II). The Agent core does
 * not import it; install it with `joinMesh({ extensions: [t] })`.
 *
 *   direct:      D --submit--> W                      (tm.<mesh>.task.<W>.<D>)
 *   capability:  D --offer--> queue group of P         (tm.<mesh>.ctask.<h(P)>.<D>)
 *                W --claim--> D; D --submit--> W (first claimer only; the link is signed for W)
 *   then:        W --status(working, input-required, completed|failed|rejected|canceled)--> D
 *                D --cancel / input--> W
 */
import {
  type AgentKey,
  agentIdFromDid,
  type CapabilityToken,
  DEFAULT_CLOCK_SKEW_MS,
  DEFAULT_ROOT_DEPTH,
  DelegationError,
  decodeToken,
  delegate as delegateToken,
  didFromAgentId,
  InvalidArgumentError,
  isScopeWithin,
  isValidPattern,
  issueRootToken,
  parsePattern,
  patternWithin,
  type RootAuthority,
  TokenCache,
  verifyChain,
} from '@trustmesh/protocol';
import type { ExtensionPort, InboundFrame, OutboundMessage } from '../extensions.ts';
import { OutgoingTask } from './outgoing.ts';
import { ServedTask, type WorkerHost } from './served.ts';
import type { ChainViolation, DelegateTaskInit, TaskHandler, TaskHandle, Tasks, TaskSnapshot, TaskStats, TasksInit } from './types.ts';
import {
  CAPABILITY_KIND,
  capabilityToken,
  newTaskId,
  parseId,
  parseInput,
  parseOffer,
  parseStatus,
  parseSubmit,
  TASK_KIND,
  TASK_TYPES,
} from './wire.ts';

export const DEFAULT_TASK_TIMEOUT_MS = 30_000;
export const DEFAULT_CANCEL_ACK_MS = 2_000;
export const DEFAULT_TASK_MAX_DEPTH = 3;
/** Tasks remembered for `list()` and for refusing a repeated task id. */
const REMEMBERED = 1024;

export interface TasksModuleInit extends TasksInit {
  /** The agent's own key (the same one given to `joinMesh`): it signs the capability links. */
  key: AgentKey;
}

/** Remembers the most recent entries only. */
class Recent<V> {
  readonly map = new Map<string, V>();
  constructor(private readonly limit: number) {}
  set(key: string, value: V): void {
    this.map.delete(key);
    if (this.map.size >= this.limit) this.map.delete(this.map.keys().next().value!);
    this.map.set(key, value);
  }
}

function checkInteger(name: string, value: number | undefined, min: number, max: number): void {
  if (value !== undefined && (!Number.isInteger(value) || value < min || value > max)) {
    throw new InvalidArgumentError(`${name} must be an integer from ${min} to ${max} (got ${value})`);
  }
}

function toTokens(chain: readonly (CapabilityToken | Uint8Array)[]): CapabilityToken[] {
  return chain.map((link, i) => {
    if (!(link instanceof Uint8Array)) return link;
    const decoded = decodeToken(link);
    if (!decoded.ok) throw new InvalidArgumentError(`chain[${i}] is not a capability token: ${decoded.detail}`);
    return decoded.token;
  });
}

class TaskModule implements Tasks {
  readonly name = 'tasks';
  readonly #key: AgentKey;
  readonly #rootAuthority: RootAuthority;
  readonly #maxDepth: number;
  readonly #timeoutMs: number;
  readonly #cancelAckMs: number;
  readonly #cache: TokenCache;
  readonly #now: () => number;
  readonly #init: TasksInit;
  #port: ExtensionPort | undefined;
  readonly #handlers: { pattern: string; handler: TaskHandler }[] = [];
  readonly #queueStops: (() => Promise<void>)[] = [];
  /** Delegated tasks by id. */
  readonly #outgoing = new Map<string, OutgoingTask>();
  /** Served tasks by `<delegator DID> <id>`, running and finished (bounded): a task id runs once per delegator. */
  readonly #served = new Recent<ServedTask>(REMEMBERED);
  /** Offers claimed, by `<delegator DID> <id>`: one claim per offer, however often it is re-published. */
  readonly #claimed = new Recent<true>(REMEMBERED);
  readonly #finished = new Recent<OutgoingTask>(REMEMBERED);
  readonly #stats: TaskStats = {
    delegated: 0,
    served: 0,
    completed: 0,
    failed: 0,
    canceled: 0,
    timedOut: 0,
    rejected: {},
    claimsDeclined: 0,
    ignored: 0,
  };

  constructor(init: TasksModuleInit) {
    if (init === null || typeof init !== 'object') throw new InvalidArgumentError('tasks() needs options');
    if (init.key === undefined || typeof init.key.sign !== 'function') throw new InvalidArgumentError('tasks() needs the agent key');
    checkInteger('maxDepth', init.maxDepth, 0, 255);
    checkInteger('defaultTimeoutMs', init.defaultTimeoutMs, 1, 2 ** 31 - 1);
    checkInteger('cancelAckMs', init.cancelAckMs, 1, 2 ** 31 - 1);
    this.#key = init.key;
    this.#rootAuthority = init.rootAuthority;
    // Parses the configuration now: a bad held pattern is the caller's error, at start-up.
    verifyChain([new Uint8Array(0)], { now: 0, rootAuthority: init.rootAuthority, maxDepth: 0 });
    this.#maxDepth = init.maxDepth ?? DEFAULT_TASK_MAX_DEPTH;
    this.#timeoutMs = init.defaultTimeoutMs ?? DEFAULT_TASK_TIMEOUT_MS;
    this.#cancelAckMs = init.cancelAckMs ?? DEFAULT_CANCEL_ACK_MS;
    this.#cache = init.cache ?? new TokenCache();
    this.#now = init.now ?? Date.now;
    this.#init = init;
  }

  // ---- extension life cycle

  async attach(port: ExtensionPort): Promise<void> {
    if (port.did !== this.#key.did) throw new InvalidArgumentError('tasks(): the key is not the key of the agent it is installed on');
    this.#port = port;
    port.routeKind(TASK_KIND, (input) => this.#onTaskFrame(input));
    for (const { pattern } of this.#handlers) this.#joinQueue(pattern);
  }

  async detach(): Promise<void> {
    this.abortAll('the agent left the mesh');
    await Promise.all(this.#queueStops.splice(0).map((stop) => stop().catch(() => undefined)));
  }

  // ---- worker registration

  serve(pattern: string, handler: TaskHandler): this {
    parsePattern(pattern);
    if (typeof handler !== 'function') throw new InvalidArgumentError('serve() needs a handler function');
    if (this.#handlers.some((h) => h.pattern === pattern)) throw new InvalidArgumentError(`${pattern} is already served`);
    this.#handlers.push({ pattern, handler });
    if (this.#port !== undefined) this.#joinQueue(pattern);
    return this;
  }

  #joinQueue(pattern: string): void {
    const port = this.#port!;
    const token = capabilityToken(pattern);
    const subject = `${port.subjects.root}.${CAPABILITY_KIND}.${token}.*`;
    this.#queueStops.push(port.subscribe(subject, (input) => this.#onOffer(input, pattern), { queue: `tm-ctask-${token}` }));
  }

  // ---- delegating

  delegate(init: DelegateTaskInit, parent?: ServedTask): TaskHandle {
    const port = this.#port;
    if (port === undefined) throw new InvalidArgumentError('delegate(): the agent has not joined the mesh yet');
    if (init === null || typeof init !== 'object') throw new InvalidArgumentError('delegate() needs options');
    if (!isValidPattern(init.capability))
      throw new InvalidArgumentError(`capability ${JSON.stringify(init.capability)} is not a capability pattern`);
    checkInteger('timeoutMs', init.timeoutMs, 1, 2 ** 31 - 1);
    const timeoutMs = init.timeoutMs ?? this.#timeoutMs;
    const deadline = this.#now() + timeoutMs;
    const chain = init.chain === undefined ? undefined : toTokens(init.chain);
    const scope = init.scope === undefined ? [init.capability] : [...init.scope];
    if (!isScopeWithin([init.capability], scope)) {
      throw new InvalidArgumentError(`the capability ${init.capability} is not within the granted scope ${scope.join(', ')}`);
    }
    const mint = (worker: string): CapabilityToken[] => this.#mint(chain, worker, scope, init.depth, deadline);
    const id = newTaskId();
    const base = { id, capability: init.capability, timeoutMs, ...(parent !== undefined && { parent: parent.id }) };
    let task: OutgoingTask;

    if (typeof init.to === 'string') {
      const worker = init.to.startsWith('did:key:') ? init.to : didFromAgentId(init.to);
      agentIdFromDid(worker); // misuse: not a DID
      this.#init.checkPeer?.(worker);
      let links: CapabilityToken[];
      if (init.presigned === true) {
        if (chain === undefined || chain.length === 0) throw new InvalidArgumentError('presigned needs the chain');
        links = chain;
      } else {
        links = mint(worker);
      }
      task = new OutgoingTask(this.#outgoingHost, base);
      this.#track(task, init.signal);
      this.#dispatch(task, worker, links, init.input, deadline, (error) => task.refuse(error));
    } else {
      const route = init.to?.capability;
      if (!isValidPattern(route)) throw new InvalidArgumentError(`to.capability ${JSON.stringify(route)} is not a capability pattern`);
      if (!patternWithin(parsePattern(init.capability), parsePattern(route))) {
        throw new InvalidArgumentError(`the capability ${init.capability} is not within the served pattern ${route}`);
      }
      if (init.presigned === true) throw new InvalidArgumentError('a capability-addressed task cannot carry a presigned chain');
      mint(this.#key.did); // the same checks the real link will pass, now, where the caller can see them
      task = new OutgoingTask(this.#outgoingHost, { ...base, route });
      const pending = { task, mint, input: init.input, deadline };
      this.#offers.set(id, pending);
      this.#track(task, init.signal);
      const offer = { id, capability: init.capability, route, deadline };
      if (task.terminal) return task; // canceled before it was offered (an aborted signal)
      try {
        this.#guard({ kind: CAPABILITY_KIND, typ: TASK_TYPES.offer, data: offer });
        port.publishSigned(port.subjects.addressed(CAPABILITY_KIND, capabilityToken(route), port.agentId), TASK_TYPES.offer, offer);
      } catch (error) {
        task.refuse(error); // a guard (e.g. the kill switch) refused, or the agent is leaving
      }
    }
    return task;
  }

  /** Capability-addressed tasks not yet assigned: what a claim turns into a submit. */
  readonly #offers = new Map<
    string,
    { task: OutgoingTask; mint: (worker: string) => CapabilityToken[]; input: unknown; deadline: number }
  >();

  #track(task: OutgoingTask, signal: AbortSignal | undefined): void {
    this.#stats.delegated++;
    this.#outgoing.set(task.id, task);
    if (signal !== undefined) {
      if (signal.aborted) void task.cancel('the delegator aborted');
      else {
        const onAbort = () => void task.cancel('the delegator aborted');
        signal.addEventListener('abort', onAbort, { once: true });
        task.result.finally(() => signal.removeEventListener('abort', onAbort)).catch(() => undefined);
      }
    }
  }

  /** This agent's chain plus one link granted to `worker`; a root token when this agent holds no chain. */
  #mint(
    chain: CapabilityToken[] | undefined,
    worker: string,
    scope: string[],
    depth: number | undefined,
    deadline: number,
  ): CapabilityToken[] {
    const expiry = deadline + DEFAULT_CLOCK_SKEW_MS;
    if (chain === undefined || chain.length === 0) {
      const held = this.#heldBy(this.#key.did);
      if (held === undefined) throw new DelegationError('broken_link', `${this.#key.did} is no root authority: delegate() needs its chain`);
      if (!isScopeWithin(scope, held))
        throw new DelegationError('scope_escalation', `${scope.join(', ')} is not within what this authority holds`);
      const rootDepth = depth ?? Math.min(DEFAULT_ROOT_DEPTH, this.#maxDepth);
      return [issueRootToken(this.#key, { audience: worker, scope, expiry, depth: rootDepth, now: this.#now() })];
    }
    const last = chain[chain.length - 1]!;
    const link = delegateToken(last, this.#key, {
      audience: worker,
      scope,
      // a link never outlives the task it is for (nor its parent)
      expiry: Math.min(last.expiry, expiry),
      ...(depth !== undefined && { depth }),
    });
    return [...chain, link];
  }

  #heldBy(did: string): readonly string[] | undefined {
    const authority = this.#rootAuthority;
    return authority instanceof Map
      ? authority.get(did)
      : Object.hasOwn(authority, did)
        ? (authority as Record<string, readonly string[]>)[did]
        : undefined;
  }

  readonly #outgoingHost = {
    now: () => this.#now(),
    send: (worker: string, typ: string, data: unknown) => this.#send(worker, typ, data),
    cancelAckMs: () => this.#cancelAckMs,
    outcome: (worker: string, outcome: 'success' | 'failure', task: OutgoingTask) => {
      try {
        this.#init.onOutcome?.(worker, outcome, task.snapshot(), task.record);
      } catch {
        // a hook's failure must not stop the task protocol
      }
    },
    settled: (task: OutgoingTask) => {
      this.#outgoing.delete(task.id);
      this.#offers.delete(task.id);
      this.#finished.set(task.id, task);
      const last = task.history[task.history.length - 1];
      if (task.state === 'completed') this.#stats.completed++;
      else if (task.state === 'canceled') this.#stats.canceled++;
      else if (task.state === 'failed') {
        if (last?.error?.code === 'timeout') this.#stats.timedOut++;
        else this.#stats.failed++;
      }
    },
  };

  #send(to: string, typ: string, data: unknown): void {
    const port = this.#port!;
    const agentId = agentIdFromDid(to);
    this.#guard({ kind: TASK_KIND, to: { did: to, agentId }, typ, data });
    port.publishSigned(port.subjects.addressed(TASK_KIND, agentId, port.agentId), typ, data, { aud: to });
  }

  /** The outbound guards given to the module (the port's publishSigned runs none): a guard refuses by throwing. */
  #guard(message: OutboundMessage): void {
    for (const guard of this.#init.outboundGuards ?? []) guard(message);
  }

  abortAll(reason: string): void {
    for (const task of [...this.#outgoing.values()]) task.abandon(reason);
    for (const task of this.#served.map.values()) task.abort(reason);
  }

  // ---- receiving

  #onTaskFrame(input: InboundFrame): void {
    const { frame } = input;
    // Every task frame to one agent names it as its audience, so it cannot be presented to another agent.
    if (frame.aud !== this.#key.did) {
      this.#stats.ignored++;
      return;
    }
    switch (frame.typ) {
      case TASK_TYPES.submit:
        this.#onSubmit(input);
        return;
      case TASK_TYPES.status:
        this.#onStatus(input);
        return;
      case TASK_TYPES.claim:
        this.#onClaim(input);
        return;
      case TASK_TYPES.cancel: {
        const msg = parseId(frame.data);
        const task = msg && this.#served.map.get(`${frame.iss} ${msg.id}`);
        if (task === undefined) this.#stats.ignored++;
        else void task.cancel(msg?.reason ?? 'canceled by the delegator');
        return;
      }
      case TASK_TYPES.input: {
        const msg = parseInput(frame.data);
        const task = msg && this.#served.map.get(`${frame.iss} ${msg.id}`);
        if (task === undefined || !task.provideInput(msg!.data)) this.#stats.ignored++;
        return;
      }
      case TASK_TYPES.decline: {
        const msg = parseId(frame.data);
        if (msg === undefined) this.#stats.ignored++;
        return;
      }
      default:
        this.#stats.ignored++;
    }
  }

  #onStatus(input: InboundFrame): void {
    const status = parseStatus(input.frame.data);
    const task = status && (this.#outgoing.get(status.id) ?? this.#finished.map.get(status.id));
    // Only the worker the task went to speaks for it.
    if (task === undefined || task.worker !== input.frame.iss || !task.onStatusFrame(status!, input.frame.iss, input.frame.raw))
      this.#stats.ignored++;
  }

  #onClaim(input: InboundFrame): void {
    const claimer = input.frame.iss;
    const msg = parseId(input.frame.data);
    if (msg === undefined) {
      this.#stats.ignored++;
      return;
    }
    const decline = (reason: string) => {
      this.#stats.claimsDeclined++;
      try {
        this.#send(claimer, TASK_TYPES.decline, { id: msg.id, reason });
      } catch {
        // a guard refused (this agent is halted) or it is leaving: the claimer's claim simply goes unanswered
      }
    };
    const offer = this.#offers.get(msg.id);
    if (offer === undefined) {
      decline(this.#outgoing.has(msg.id) || this.#finished.map.has(msg.id) ? 'already_assigned' : 'unknown_task');
      return;
    }
    try {
      this.#init.checkPeer?.(claimer);
    } catch {
      decline('refused');
      return;
    }
    let links: CapabilityToken[];
    try {
      links = offer.mint(claimer);
    } catch {
      // the chain expired meanwhile: nothing can be granted any more
      decline('cannot_grant');
      return;
    }
    this.#offers.delete(msg.id);
    this.#dispatch(offer.task, claimer, links, offer.input, offer.deadline, () => {
      // the interceptor refused this claimer (an open breaker): the offer is open again
      offer.task.assign(undefined, []);
      if (!offer.task.terminal) this.#offers.set(msg.id, offer);
      decline('refused');
    });
  }

  /** Assigns the task to `worker` and sends it, through the interceptor when there is one. */
  #dispatch(
    task: OutgoingTask,
    worker: string,
    links: CapabilityToken[],
    input: unknown,
    deadline: number,
    refused: (error: unknown) => void,
  ): void {
    if (task.terminal) return; // canceled before it was sent (an aborted signal)
    task.assign(worker, links);
    const send = (): Promise<unknown> => {
      this.#send(worker, TASK_TYPES.submit, {
        id: task.id,
        capability: task.capability,
        chain: links.map((t) => t.bytes),
        input,
        deadline,
        ...(task.parent !== undefined && { parent: task.parent }),
      });
      return task.result;
    };
    const interceptor = this.#init.interceptor;
    if (interceptor === undefined) {
      try {
        send();
      } catch (error) {
        refused(error); // e.g. the input makes the frame too large
      }
      return;
    }
    let sent = false;
    const call = {
      to: { did: worker, agentId: agentIdFromDid(worker) },
      typ: TASK_TYPES.submit,
      data: { id: task.id },
      timeoutMs: task.timeoutMs,
      signal: undefined,
    };
    interceptor(call, () => {
      sent = true;
      return send();
    }).catch((error: unknown) => {
      if (!sent) refused(error);
    });
  }

  #onOffer(input: InboundFrame, pattern: string): void {
    const { frame, route } = input;
    const offer = parseOffer(frame.data);
    // The subject's token is the hash of the route (the signer bound both): a mismatch is a malformed offer.
    if (offer === undefined || offer.route !== pattern || route.to !== capabilityToken(pattern) || frame.aud !== undefined) {
      this.#stats.ignored++;
      return;
    }
    const key = `${frame.iss} ${offer.id}`;
    if (this.#claimed.map.has(key) || this.#served.map.has(key)) {
      this.#stats.ignored++;
      return;
    }
    if (!isValidPattern(offer.capability) || !patternWithin(parsePattern(offer.capability), parsePattern(pattern))) {
      this.#stats.ignored++;
      return;
    }
    try {
      this.#send(frame.iss, TASK_TYPES.claim, { id: offer.id });
      this.#claimed.set(key, true);
    } catch {
      this.#stats.ignored++; // a guard refused (halted, or the delegator is killed): no claim
    }
  }

  #onSubmit(input: InboundFrame): void {
    const { frame } = input;
    const delegator = frame.iss;
    const submit = parseSubmit(frame.data);
    if (submit === undefined) {
      const id = parseId(frame.data)?.id;
      if (id !== undefined) this.#refuse(delegator, id, 'bad_task', 'the task frame is malformed');
      else this.#stats.ignored++;
      return;
    }
    const key = `${delegator} ${submit.id}`;
    if (this.#served.map.has(key)) {
      // a second frame for a task id already taken from this delegator: never run twice
      this.#stats.ignored++;
      return;
    }
    if (!isValidPattern(submit.capability)) {
      this.#refuse(delegator, submit.id, 'bad_task', 'the capability is not a capability pattern');
      return;
    }
    const verdict = verifyChain(submit.chain, {
      now: this.#now(),
      rootAuthority: this.#rootAuthority,
      maxDepth: this.#maxDepth,
      audience: this.#key.did,
      requiredCapability: submit.capability,
      cache: this.#cache,
    });
    if (!verdict.ok) {
      this.#violation({
        taskId: submit.id,
        delegator,
        reason: verdict.reason,
        link: verdict.link,
        detail: verdict.detail,
        ...(verdict.attributableTo !== undefined && { attributableTo: verdict.attributableTo }),
        ...(verdict.evidence !== undefined && { evidence: verdict.evidence }),
        frame: frame.raw,
      });
      this.#refuse(delegator, submit.id, verdict.reason, verdict.detail, verdict.link);
      return;
    }
    // docs/delegation.md §9: the chain is bound to the request by the frame's signer, its last issuer.
    const last = verdict.tokens[verdict.tokens.length - 1]!;
    if (last.issuer !== delegator) {
      const link = verdict.tokens.length - 1;
      const detail = `the task frame is signed by ${delegator}, not by the last link's issuer ${last.issuer}`;
      this.#violation({ taskId: submit.id, delegator, reason: 'not_delegator', link, detail, frame: frame.raw });
      this.#refuse(delegator, submit.id, 'not_delegator', detail, link);
      return;
    }
    const capability = parsePattern(submit.capability);
    const served = this.#handlers.find((h) => patternWithin(capability, parsePattern(h.pattern)));
    if (served === undefined) {
      this.#refuse(delegator, submit.id, 'no_handler', `this agent serves no pattern containing ${submit.capability}`);
      return;
    }
    this.#claimed.map.delete(key);
    const task = new ServedTask(this.#workerHost, {
      id: submit.id,
      delegator,
      capability: submit.capability,
      chain: verdict.tokens,
      ...(submit.parent !== undefined && { parent: submit.parent }),
    });
    this.#served.set(key, task);
    this.#stats.served++;
    task.run(served.handler, submit.input);
  }

  readonly #workerHost: WorkerHost = {
    send: (to, typ, data) => this.#send(to, typ, data),
    delegate: (init, parent) => this.delegate(init, parent),
    cancelAckMs: () => this.#cancelAckMs,
    now: () => this.#now(),
  };

  /** Answers a refused task with a signed `rejected` status and counts the reason. */
  #refuse(delegator: string, id: string, reason: string, detail: string, link?: number): void {
    this.#stats.rejected[reason] = (this.#stats.rejected[reason] ?? 0) + 1;
    // Remembered, so a re-sent frame for the same task id is not judged (and answered) again.
    this.#served.set(`${delegator} ${id}`, ServedTask.refused(this.#workerHost, id, delegator, reason, detail));
    try {
      this.#send(delegator, TASK_TYPES.status, {
        id,
        state: 'rejected',
        error: { code: reason, message: detail.slice(0, 1024), ...(link !== undefined && { link }) },
      });
    } catch {
      // leaving, or the delegator's DID is not one we can address (a frame's iss always is)
    }
  }

  #violation(violation: ChainViolation): void {
    try {
      this.#init.onViolation?.(violation);
    } catch {
      // the reporting hook's failure does not change the verdict
    }
  }

  list(): TaskSnapshot[] {
    const out: TaskSnapshot[] = [];
    for (const task of this.#finished.map.values()) out.push(task.snapshot());
    for (const task of this.#outgoing.values()) out.push(task.snapshot());
    for (const task of this.#served.map.values()) if (!task.isRefusal) out.push(task.snapshot());
    return out;
  }

  stats(): TaskStats {
    return { ...this.#stats, rejected: { ...this.#stats.rejected } };
  }
}

/**
 * Creates the task module for one agent. `key` must be the agent's key (it
 * signs capability links); `rootAuthority` the mesh configuration.
 */
export function tasks(init: TasksModuleInit): Tasks {
  return new TaskModule(init);
}
