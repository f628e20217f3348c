/**
 * @packageDocumentation
 * Per-peer circuit breakers for TrustMesh agents (opossum 9), as a request
 * interceptor: failures and the agent's own request timeouts open a peer's
 * breaker, it fails fast with {@link BreakerOpenError} while open, half-opens
 * after the reset timeout and closes on success. Killed or untrusted peers are
 * forced open. Every transition is a signed frame on `tm.<mesh>.breaker.<agent>`.
 *
 * @example
 * ```ts
 * import { joinMesh } from '@trustmesh/client'
 * import { breakers } from '@trustmesh/breakers'
 * import { killSwitch } from '@trustmesh/kill'
 * const ks = killSwitch({ operators: [operatorDid] })
 * const br = breakers({ volumeThreshold: 3, resetTimeoutMs: 5_000, isBlocked: ks.isBlocked })
 * const agent = await joinMesh({ mesh: 'demo', name: 'a', servers: url, extensions: [ks, br] })
 * await agent.request(peerDid, 'work', 1).catch((e) => e.code) // 'breaker_open' once the peer keeps failing
 * console.log(br.breakers()) // [{ peer, state: 'open', reason: 'failures', failures: 3, since }]
 * ```
 */
export { breakers, BreakerOpenError, defaultIsFailure, DEFAULT_BREAKER_OPTIONS, BREAKER_KIND, BREAKER_TYPE } from './breakers.ts';
export type {
  Breakers,
  BreakersInit,
  BreakerOptions,
  BreakerState,
  BreakerStateName,
  BreakerTransition,
  BlockReason,
  OpenReason,
} from './breakers.ts';
export { rotationTimers } from './rotation.ts';
