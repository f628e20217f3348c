import type { CapabilityToken, ChainRejectReason, RootAuthority, TokenCache } from '@trustmesh/protocol';
import type { AgentExtension, OutboundGuard, RequestInterceptor } from '../extensions.ts';
import type { TaskState } from './wire.ts';

export interface TasksInit {
  /** The mesh configuration: DID -> capability patterns it may grant as a root (docs/delegation.md §1). */
  rootAuthority: RootAuthority;
  /** Most delegations after the root this agent accepts in a chain; default 3. */
  maxDepth?: number;
  /** Timeout of a delegated task when `delegate()` names none; default 30 s. */
  defaultTimeoutMs?: number;
  /** How long `cancel()` waits for the worker's `canceled` acknowledgement; default 2 s. */
  cancelAckMs?: number;
  /** Verified links are remembered here; default a private cache of 4096 tokens. */
  cache?: TokenCache;
  /** Clock, ms since the epoch; default `Date.now`. */
  now?: () => number;
  /**
   * Called before a task is sent to (or, for a capability, assigned to) a
   * worker: throw to refuse (an open breaker, an untrusted or killed peer).
   * For a capability-addressed task a refused claimer is declined and the offer stays open.
   */
  checkPeer?: (did: string) => void;
  /**
   * The outcome of every task this agent delegated that reached a worker:
   * `success` on completed; `failure` on failed and on timeout. Canceled and
   * rejected tasks report nothing (the delegator's own choice, or its chain).
   * The hook for circuit breakers and for task reports to the trust broker:
   * `record` is the worker's last signed status frame as received (its
   * `completed` or `failed`, or for a timeout its last `working`, which proves
   * it accepted the task), or undefined when it sent none.
   */
  onOutcome?: (did: string, outcome: 'success' | 'failure', task: TaskSnapshot, record: Uint8Array | undefined) => void;
  /**
   * Wraps each task's delivery to its worker like a request (e.g.
   * `breakers().interceptRequest`): `next` sends the task and resolves or
   * rejects with its result, so failures and timeouts count against the
   * worker; an interceptor that throws without calling `next` keeps the task
   * from being sent (a direct task then fails with that error; a claimer of a
   * capability-addressed task is declined and the offer stays open).
   */
  interceptor?: RequestInterceptor;
  /**
   * Run before every task frame this module sends (kind `task` or `ctask`), as
   * the agent runs its outbound guards before `send`: the extension port's
   * `publishSigned` runs none. Pass e.g. the kill switch's `outbound`, so a
   * halted agent neither delegates nor reports.
   */
  outboundGuards?: readonly OutboundGuard[];
  /** A task frame this agent refused because of its chain (every reason), with the evidence when attributable. */
  onViolation?: (violation: ChainViolation) => void;
}

/** Where a task goes: one agent (DID or agent id), or any agent serving a capability pattern (a queue group). */
export type TaskTarget = string | { capability: string };

export interface DelegateTaskInit {
  to: TaskTarget;
  /** What the worker is asked to do: a capability (or pattern) that must lie within the worker's granted scope. */
  capability: string;
  input?: unknown;
  /** The scope granted to the worker in the link this call signs; default `[capability]`. Must lie within the chain's last scope. */
  scope?: readonly string[];
  /**
   * This agent's own chain, root first, its last link granted to this agent.
   * Omitted: this agent must be a root authority, and a root token is issued.
   */
  chain?: readonly (CapabilityToken | Uint8Array)[];
  /** The chain already ends at the worker (its last link signed by this agent): sent as it is. Direct tasks only. */
  presigned?: boolean;
  /** Depth of the link this call signs; default the parent's minus one (a root: min(3, maxDepth)). */
  depth?: number;
  /** default {@link TasksInit.defaultTimeoutMs} */
  timeoutMs?: number;
  /** Aborting it cancels the task. */
  signal?: AbortSignal;
}

/** One state change as the delegator saw it. */
export interface TaskStatus {
  readonly state: TaskState;
  /** ms since the epoch, this agent's clock. */
  readonly at: number;
  readonly message?: string;
  /** DID of the agent whose signed frame caused it; undefined for local transitions (submitted, timeout, local cancel). */
  readonly from?: string;
  readonly error?: { readonly code: string; readonly message: string; readonly link?: number };
}

/** What the delegator holds for a task it sent. */
export interface TaskHandle {
  readonly id: string;
  readonly capability: string;
  readonly state: TaskState;
  /** DID of the worker: known at once for a direct task, on assignment for a capability-addressed one. */
  readonly worker: string | undefined;
  readonly history: readonly TaskStatus[];
  /** The completed task's result; rejects with TaskRejectedError, TaskFailedError, TaskCanceledError or TaskTimeoutError. */
  readonly result: Promise<unknown>;
  /** Every status from now on (and none before); returns the function that stops listening. */
  onStatus(listener: (status: TaskStatus) => void): () => void;
  /** The statuses so far, then each new one, until a terminal state. */
  updates(): AsyncIterableIterator<TaskStatus>;
  /** Answers an `input-required` state. */
  respond(data: unknown): void;
  /**
   * Cancels the task (the result rejects with TaskCanceledError at once) and
   * resolves true when the worker acknowledged with `canceled` (after its own
   * sub-delegations), false if it did not within `cancelAckMs`.
   */
  cancel(reason?: string): Promise<boolean>;
}

/** What a handler gets besides the input. */
export interface TaskContext {
  readonly id: string;
  /** DID of the agent that delegated the task (the last link's issuer, who signed the task frame). */
  readonly delegator: string;
  readonly capability: string;
  /** The scope granted to this agent (the last link's). */
  readonly scope: readonly string[];
  /** The verified chain, root first, its last link granted to this agent. */
  readonly chain: readonly CapabilityToken[];
  /** Aborted when the delegator cancels, the task times out at the delegator, or the agent leaves. */
  readonly signal: AbortSignal;
  /** Streams a state to the delegator: `working` (with a progress message) or `input-required`. */
  update(state: 'working' | 'input-required', message?: string): void;
  /** Sets `input-required` with `prompt` and resolves with the delegator's `respond()`; back to `working` then. */
  requestInput(prompt: string): Promise<unknown>;
  /**
   * Sub-delegates with this task's chain: signs one more link (a scope within
   * this agent's, `[capability]` by default) and sends the task. Canceled when
   * this task is.
   */
  delegate(init: Omit<DelegateTaskInit, 'chain' | 'presigned'>): TaskHandle;
}

/** Runs one task; its return value is the result. Throwing fails the task (`handler_error`). */
export type TaskHandler = (input: unknown, ctx: TaskContext) => unknown;

/** A chain (or task-layer) refusal this agent made as a worker. */
export interface ChainViolation {
  readonly taskId: string;
  /** DID that signed the task frame. */
  readonly delegator: string;
  readonly reason: ChainRejectReason | 'not_delegator';
  readonly link: number;
  readonly detail: string;
  /** The DID whose own signature proves the violation (docs/delegation.md §7); undefined: evidence against nobody. */
  readonly attributableTo?: string;
  /** With `attributableTo`: the parent and the offending token, which a broker re-checks with `verifyEvidence`. */
  readonly evidence?: { readonly parent: Uint8Array; readonly token: Uint8Array };
  /** The signed task frame as received. */
  readonly frame: Uint8Array;
}

/** A plain record of one task, as either side saw it (for trees, logs and `--json`). */
export interface TaskSnapshot {
  readonly id: string;
  readonly role: 'delegator' | 'worker';
  readonly capability: string;
  readonly state: TaskState;
  /** The other side: the worker (delegator role) or the delegator (worker role). */
  readonly peer: string | undefined;
  /** For a sub-delegation: the id of the task (served by this agent) it was made for. */
  readonly parent?: string;
  /** The chain, one entry per link, root first. */
  readonly chain: readonly {
    readonly issuer: string;
    readonly audience: string;
    readonly scope: readonly string[];
    readonly depth: number;
  }[];
  readonly history: readonly TaskStatus[];
}

export interface TaskStats {
  delegated: number;
  served: number;
  completed: number;
  failed: number;
  canceled: number;
  timedOut: number;
  /** Tasks this agent refused as a worker, by reason. */
  rejected: Record<string, number>;
  /** Claims this agent (as delegator) declined: the task was already assigned, unknown, or the claimer refused. */
  claimsDeclined: number;
  /** Frames of the task protocol that were malformed or matched no task. */
  ignored: number;
}

/** The task module: install it with `joinMesh({ extensions: [tasks] })`. */
export interface Tasks extends AgentExtension {
  /** Sends a task. Misuse (bad capability, a scope the chain does not grant) throws at once. */
  delegate(init: DelegateTaskInit): TaskHandle;
  /** Handles tasks whose capability lies within `pattern`; also joins the queue group of tasks addressed to `pattern`. */
  serve(pattern: string, handler: TaskHandler): this;
  /**
   * Aborts every task here without sending anything: handlers see `ctx.signal`
   * abort, delegated tasks reject with TaskCanceledError. For a halted agent
   * (wire it to the kill switch's `change` event) and for leaving.
   */
  abortAll(reason: string): void;
  /** Every task this agent delegated or served that it still remembers (the most recent 1024). */
  list(): TaskSnapshot[];
  stats(): TaskStats;
}
