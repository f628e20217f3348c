import { TrustMeshError } from '@trustmesh/protocol';
import { RequestTimeoutError } from '../errors.ts';

/**
 * The worker refused the task before running it: its chain failed a rule of
 * docs/delegation.md §6 (`reason` is that code and `link` the link), or a rule
 * of the task layer (`not_delegator`, `no_handler`, `duplicate_task`, `bad_task`).
 */
export class TaskRejectedError extends TrustMeshError {
  declare readonly code: 'task_rejected';
  constructor(
    readonly taskId: string,
    readonly reason: string,
    readonly detail: string,
    /** DID of the worker that refused. */
    readonly from: string,
    readonly link?: number,
  ) {
    super('task_rejected', `task ${taskId} rejected by ${from}: ${reason} (${detail})`);
    this.name = 'TaskRejectedError';
  }
}

/** The worker ran the task and reported `failed`; `remoteCode` and `remoteMessage` are what it said, bounded and escaped. */
export class TaskFailedError extends TrustMeshError {
  declare readonly code: 'task_failed';
  constructor(
    readonly taskId: string,
    readonly remoteCode: string,
    readonly remoteMessage: string,
    readonly from: string,
  ) {
    super('task_failed', `task ${taskId} failed at ${from}: ${remoteCode}: ${remoteMessage}`);
    this.name = 'TaskFailedError';
  }
}

/** The task was canceled: by this delegator (`cancel()`, its signal) or by the agent leaving. */
export class TaskCanceledError extends TrustMeshError {
  declare readonly code: 'task_canceled';
  constructor(
    readonly taskId: string,
    reason: string,
  ) {
    super('task_canceled', `task ${taskId} canceled: ${reason}`);
    this.name = 'TaskCanceledError';
  }
}

/**
 * No terminal state arrived within the task's timeout; the task was canceled
 * and counted as a failure of its worker. A {@link RequestTimeoutError}, so a
 * breaker that counts the agent's own request timeouts counts this one too.
 */
export class TaskTimeoutError extends RequestTimeoutError {
  constructor(
    readonly taskId: string,
    timeoutMs: number,
    /** The worker it was assigned to; undefined when no worker claimed a capability-addressed task. */
    readonly worker: string | undefined,
  ) {
    super(worker ?? 'no worker', 'tm.task.submit', timeoutMs);
    this.message = `task ${taskId} reached no terminal state within ${timeoutMs} ms${worker === undefined ? ' (no worker claimed it)' : ''}`;
    this.name = 'TaskTimeoutError';
  }
}
