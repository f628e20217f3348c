/**
 * Tasks under capability chains (docs/delegation.md, part II): an agent
 * extension that delegates work to one agent or to a capability's queue group,
 * verifies the chain before a handler runs, streams A2A states back, and
 * cascades cancel down every sub-delegation.
 *
 * @example
 * ```ts
 * import { generateKey } from '@trustmesh/protocol'
 * import { joinMesh, tasks } from '@trustmesh/client'
 * const rootAuthority = { [planner.did]: ['research:**'] }
 * const w = tasks({ key: workerKey, rootAuthority }).serve('research:**', (input, ctx) => `notes on ${input}`)
 * await joinMesh({ mesh, name: 'worker', key: workerKey, extensions: [w], servers })
 * const p = tasks({ key: plannerKey, rootAuthority })
 * await joinMesh({ mesh, name: 'planner', key: plannerKey, extensions: [p], servers })
 * const task = p.delegate({ to: workerKey.did, capability: 'research:topics/nats', input: 'NATS' })
 * console.log(await task.result, task.state) // 'notes on NATS' 'completed'
 * ```
 */
export { tasks, DEFAULT_TASK_TIMEOUT_MS, DEFAULT_CANCEL_ACK_MS, DEFAULT_TASK_MAX_DEPTH } from './module.ts';
export type { TasksModuleInit } from './module.ts';
export { TASK_STATES, TERMINAL_STATES, TASK_TYPES, TASK_KIND, CAPABILITY_KIND, capabilityToken, isTerminal } from './wire.ts';
export type { TaskState } from './wire.ts';
export { TaskRejectedError, TaskFailedError, TaskCanceledError, TaskTimeoutError } from './errors.ts';
export type {
  Tasks,
  TasksInit,
  DelegateTaskInit,
  TaskTarget,
  TaskHandle,
  TaskStatus,
  TaskContext,
  TaskHandler,
  TaskSnapshot,
  TaskStats,
  ChainViolation,
} from './types.ts';
