/**
 * @packageDocumentation
 * The TrustMesh mesh client. An {@link Agent} joins a mesh over NATS with its
 * did:key identity, signs every frame it sends and verifies every frame it
 * receives before a handler sees it.
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
export { Agent, joinMesh, DEFAULT_REQUEST_TIMEOUT_MS, TYPE_PRESENCE, TYPE_REPLY, TYPE_ERROR } from './agent.ts';
export type { AgentInit, AgentEvents, AgentStats, Handler, MessageContext, RejectionEvent, RequestOptions } from './agent.ts';
export type { PeerInfo, Lineage, PresenceStatus, PresenceData } from './presence.ts';
export { RequestTimeoutError, RemoteError, AgentClosedError, FrameTooLargeError } from './errors.ts';
