/**
 * @packageDocumentation
 * The TrustMesh mesh client. An agent joins a mesh over NATS with its did:key
 * identity, signs every frame it sends and verifies every frame it receives
 * before a handler sees it. Trust, kill switch, breakers and delegation plug in
 * as {@link AgentExtension}s: inbound guards, outbound guards and request interceptors.
 *
 * @example
 * ```ts
 * import { joinMesh } from '@trustmesh/client'
 * const bob = await joinMesh({ mesh: 'demo', name: 'bob', servers: url })
 * bob.handle('add', (data) => (data as number[]).reduce((a, b) => a + b, 0))
 * const alice = await joinMesh({ mesh: 'demo', name: 'alice', servers: url })
 * console.log(await alice.request(bob.did, 'add', [1, 2, 3])) // 6, from a verified reply
 * await alice.leave(); await bob.leave()
 * ```
 */
export { joinMesh, DEFAULT_REQUEST_TIMEOUT_MS } from './agent.ts';
export type { Agent, AgentInit, RequestOptions } from './agent.ts';
export type { AgentEvents, AgentStats, RejectionEvent } from './ledger.ts';
export type { Handler, MessageContext, DispatchLimits } from './dispatch.ts';
export { DEFAULT_DISPATCH_LIMITS } from './dispatch.ts';
export { DEFAULT_INTAKE_LIMITS } from './intake.ts';
export type { IntakeLimits } from './intake.ts';
export type {
  AgentExtension,
  ExtensionPort,
  InboundGuard,
  InboundFrame,
  OutboundGuard,
  OutboundMessage,
  RequestInterceptor,
  RequestCall,
  Refusal,
  PeerRef,
} from './extensions.ts';
export type { PeerInfo, Lineage, PresenceStatus, PresenceData } from './presence.ts';
export { PRESENCE_LIMITS } from './presence.ts';
export { DEFAULT_PRESENCE } from './presence-hub.ts';
export { RequestTimeoutError, RemoteError, AgentClosedError, FrameTooLargeError, SendRefusedError } from './errors.ts';
export { describeThrown, cleanText, MAX_PEER_TEXT } from './text.ts';
/** Protocol message types, re-exported for handlers and tests. */
export { MESSAGE_TYPES } from '@trustmesh/protocol';
// Tasks under capability chains (docs/delegation.md, part II): an extension; the Agent core does not import it.
export {
  tasks,
  DEFAULT_TASK_TIMEOUT_MS,
  DEFAULT_CANCEL_ACK_MS,
  DEFAULT_TASK_MAX_DEPTH,
  TASK_STATES,
  TERMINAL_STATES,
  TASK_TYPES,
  capabilityToken,
  isTerminal,
  TaskRejectedError,
  TaskFailedError,
  TaskCanceledError,
  TaskTimeoutError,
} from './tasks/index.ts';
export type {
  Tasks,
  TasksInit,
  TasksModuleInit,
  DelegateTaskInit,
  TaskTarget,
  TaskHandle,
  TaskStatus,
  TaskContext,
  TaskHandler,
  TaskSnapshot,
  TaskStats,
  TaskState,
  ChainViolation,
} from './tasks/index.ts';
export { replicasFor, replicasForInfo, REPLICAS_ENV, type ClusterInfo } from './replicas.ts';
