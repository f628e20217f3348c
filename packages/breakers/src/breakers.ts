import type { AgentExtension, ExtensionPort, RequestCall } from '@trustmesh/client';
import { RemoteError, RequestTimeoutError } from '@trustmesh/client';
import { InvalidArgumentError, TrustMeshError } from '@trustmesh/protocol';
import CircuitBreaker from 'opossum';
import { acquireRotator, releaseRotator } from './rotation.ts';

/** Broadcast kind of breaker transitions: `tm.<mesh>.breaker.<agent>`. */
export const BREAKER_KIND = 'breaker';
export const BREAKER_TYPE = 'tm.breaker';

export interface BreakerOptions {
  /** Failure rate (percent of calls in the rolling window) above which the breaker opens; default 50. */
  errorThresholdPercentage: number;
  /** Calls in the window before the rate counts; with every call failing, the breaker opens at this failure. Default 5. */
  volumeThreshold: number;
  /** How long it stays open before letting one trial call through (half-open); default 10,000 ms. */
  resetTimeoutMs: number;
  /** Length of the rolling window; default 10,000 ms. */
  rollingCountTimeoutMs: number;
  /** Buckets in the window; default 10 (one rotation every second). */
  rollingCountBuckets: number;
}

export const DEFAULT_BREAKER_OPTIONS: BreakerOptions = {
  errorThresholdPercentage: 50,
  volumeThreshold: 5,
  resetTimeoutMs: 10_000,
  rollingCountTimeoutMs: 10_000,
  rollingCountBuckets: 10,
};

export type BlockReason = 'killed' | 'untrusted';

export interface BreakersInit extends Partial<BreakerOptions> {
  /** Options for one peer (merged over the agent's). Called once, when the peer's breaker is created. */
  perPeer?: (did: string) => Partial<BreakerOptions> | undefined;
  /** Forces a peer's breaker open while it returns a reason (e.g. `killSwitch.isBlocked`, a trust cache). */
  isBlocked?: (did: string) => BlockReason | undefined;
  /**
   * Which errors count against the peer. Default: the agent's own `RequestTimeoutError`
   * and the peer's `tm.error` answers except `no_handler`; local refusals (kill, closed,
   * caller's abort) do not.
   */
  isFailure?: (error: unknown) => boolean;
  /** Most breakers kept; past it the least recently used is dropped. Default 65,536. */
  maxBreakers?: number;
  /** Publish each transition as a signed frame on `tm.<mesh>.breaker.<agent>`; default true. */
  publish?: boolean;
  now?: () => number;
}

export type BreakerStateName = 'closed' | 'open' | 'half_open' | 'forced_open';
export type OpenReason = 'failures' | BlockReason;

export interface BreakerState {
  /** The peer's DID. */
  peer: string;
  state: BreakerStateName;
  /** Why it is open (forced or by failures). */
  reason?: OpenReason;
  /** Failures (timeouts included) in the rolling window. */
  failures: number;
  /** When it entered this state (ms since epoch). */
  since: number;
}

/** What a transition frame carries (`data` of a `tm.breaker` frame). */
export interface BreakerTransition {
  peer: string;
  from: BreakerStateName;
  to: BreakerStateName;
  reason?: OpenReason;
  failures: number;
}

/** A request was not sent: the peer's breaker is open (or forced open). `code` is `breaker_open`. */
export class BreakerOpenError extends TrustMeshError {
  declare readonly code: 'breaker_open';
  constructor(
    readonly peer: string,
    readonly state: BreakerStateName,
    readonly reason: OpenReason | 'trial_in_flight',
  ) {
    super('breaker_open', `breaker for ${peer} is ${state} (${reason}): request not sent`);
    this.name = 'BreakerOpenError';
  }
}

export interface Breakers extends AgentExtension {
  /** Every peer's breaker. */
  breakers(): BreakerState[];
  breaker(did: string): BreakerState | undefined;
  /** Listens to transitions (also published on the mesh); returns the function that stops listening. */
  on(event: 'transition', listener: (transition: BreakerTransition) => void): () => void;
  /** Re-checks `isBlocked` for every peer with a breaker now (it is also checked on every request). */
  refresh(): void;
}

interface Entry {
  readonly did: string;
  readonly breaker: CircuitBreaker<[RequestCall, (call: RequestCall) => Promise<unknown>], unknown>;
  readonly intervalMs: number;
  state: BreakerStateName;
  reason: OpenReason | undefined;
  forced: BlockReason | undefined;
  since: number;
}

const validate = (options: BreakerOptions, where: string): BreakerOptions => {
  const { errorThresholdPercentage: p, volumeThreshold: v, resetTimeoutMs: r, rollingCountTimeoutMs: w, rollingCountBuckets: b } = options;
  const bad = (field: string, rule: string, value: unknown) => new InvalidArgumentError(`${where}.${field} must be ${rule} (got ${value})`);
  if (!(typeof p === 'number' && p >= 0 && p <= 100)) throw bad('errorThresholdPercentage', 'a number from 0 to 100', p);
  if (!Number.isInteger(v) || v < 0) throw bad('volumeThreshold', 'an integer >= 0', v);
  if (!Number.isInteger(r) || r < 1) throw bad('resetTimeoutMs', 'an integer >= 1', r);
  if (!Number.isInteger(b) || b < 1) throw bad('rollingCountBuckets', 'an integer >= 1', b);
  if (!Number.isInteger(w) || w < b) throw bad('rollingCountTimeoutMs', 'an integer >= rollingCountBuckets', w);
  return options;
};

export function defaultIsFailure(error: unknown): boolean {
  if (error instanceof RequestTimeoutError) return true;
  if (error instanceof RemoteError) return error.remoteCode !== 'no_handler';
  return false;
}

/**
 * Per-peer circuit breakers (opossum 9) as a request interceptor. Each peer
 * gets a breaker the first time it is called: failures and the agent's own
 * request timeouts open it (opossum's timer is off: `timeout: false`), it fails
 * fast with {@link BreakerOpenError} while open, lets one trial through after
 * `resetTimeoutMs` (half-open) and closes on its success. `isBlocked` forces it
 * open. All breakers share one bucket-rotation timer and take no snapshot timer;
 * an open breaker holds opossum's reset timeout until it half-opens.
 */
export function breakers(init: BreakersInit = {}): Breakers {
  const { perPeer, isBlocked, isFailure = defaultIsFailure, maxBreakers = 65_536, publish = true, now = Date.now, ...rest } = init;
  const base = validate({ ...DEFAULT_BREAKER_OPTIONS, ...rest }, 'breakers');
  if (!Number.isInteger(maxBreakers) || maxBreakers < 1) throw new InvalidArgumentError(`breakers.maxBreakers must be an integer >= 1`);
  const entries = new Map<string, Entry>();
  const listeners = new Set<(t: BreakerTransition) => void>();
  let port: ExtensionPort | undefined;

  const transition = (entry: Entry, to: BreakerStateName, reason: OpenReason | undefined) => {
    const from = entry.state;
    if (from === to && entry.reason === reason) return;
    entry.state = to;
    entry.reason = reason;
    entry.since = now();
    const t: BreakerTransition = {
      peer: entry.did,
      from,
      to,
      failures: entry.breaker.stats.failures,
      ...(reason !== undefined && { reason }),
    };
    if (publish && port !== undefined) {
      try {
        port.publishSigned(port.subjects.broadcast(BREAKER_KIND, port.agentId), BREAKER_TYPE, t);
      } catch {
        // the agent is leaving: the state is still visible locally
      }
    }
    for (const listener of listeners) {
      try {
        listener(t);
      } catch {
        // a listener's failure is its own
      }
    }
  };

  const drop = (entry: Entry) => {
    entries.delete(entry.did);
    entry.breaker.shutdown();
    releaseRotator(entry.intervalMs);
  };

  const create = (did: string): Entry => {
    const options = validate({ ...base, ...perPeer?.(did) }, `breakers.perPeer(${did.slice(0, 24)}…)`);
    const intervalMs = Math.floor(options.rollingCountTimeoutMs / options.rollingCountBuckets);
    const breaker = new CircuitBreaker((call: RequestCall, next: (call: RequestCall) => Promise<unknown>) => next(call), {
      timeout: false, // the agent's own request timeout is the failure; no second timer
      resetTimeout: options.resetTimeoutMs,
      errorThresholdPercentage: options.errorThresholdPercentage,
      volumeThreshold: options.volumeThreshold,
      rollingCountTimeout: options.rollingCountTimeoutMs,
      rollingCountBuckets: options.rollingCountBuckets,
      rollingPercentilesEnabled: false,
      enableSnapshots: false, // no snapshot interval per breaker
      rotateBucketController: acquireRotator(intervalMs),
      errorFilter: (error: unknown) => !isFailure(error),
      name: did,
    });
    const entry: Entry = { did, breaker, intervalMs, state: 'closed', reason: undefined, forced: undefined, since: now() };
    breaker.on('open', () => {
      if (entry.forced === undefined) transition(entry, 'open', 'failures');
    });
    breaker.on('halfOpen', () => {
      if (entry.forced === undefined) transition(entry, 'half_open', undefined);
    });
    breaker.on('close', () => {
      if (entry.forced === undefined) transition(entry, 'closed', undefined);
    });
    entries.set(did, entry);
    while (entries.size > maxBreakers) drop(entries.values().next().value!);
    return entry;
  };

  /** The state opossum's breaker is in, as ours. */
  const underlying = (entry: Entry): BreakerStateName => (entry.breaker.opened ? 'open' : entry.breaker.halfOpen ? 'half_open' : 'closed');

  const check = (entry: Entry) => {
    const blocked = isBlocked?.(entry.did);
    if (blocked !== undefined) {
      entry.forced = blocked;
      transition(entry, 'forced_open', blocked);
    } else if (entry.forced !== undefined) {
      entry.forced = undefined;
      const state = underlying(entry);
      transition(entry, state, state === 'open' ? 'failures' : undefined);
    }
  };

  const view = (entry: Entry): BreakerState => ({
    peer: entry.did,
    state: entry.state,
    failures: entry.breaker.stats.failures,
    since: entry.since,
    ...(entry.reason !== undefined && { reason: entry.reason }),
  });

  return {
    name: 'breakers',

    async interceptRequest(call, next) {
      const did = call.to.did;
      let entry = entries.get(did);
      if (entry === undefined) entry = create(did);
      else {
        // most recently used last: the first entry is the one to drop
        entries.delete(did);
        entries.set(did, entry);
      }
      check(entry);
      if (entry.forced !== undefined) throw new BreakerOpenError(did, 'forced_open', entry.forced);
      try {
        return await entry.breaker.fire(call, next);
      } catch (error) {
        if ((error as { code?: unknown })?.code === 'EOPENBREAKER')
          throw new BreakerOpenError(did, entry.state, entry.state === 'half_open' ? 'trial_in_flight' : 'failures');
        throw error;
      }
    },

    attach(p) {
      if (port !== undefined) throw new InvalidArgumentError('breakers: one breakers extension per agent; create another for this agent');
      port = p;
    },

    detach() {
      for (const entry of [...entries.values()]) drop(entry);
      port = undefined;
    },

    breakers() {
      return [...entries.values()].map(view);
    },

    breaker(did) {
      const entry = entries.get(did);
      return entry === undefined ? undefined : view(entry);
    },

    on(_event, listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },

    refresh() {
      for (const entry of entries.values()) check(entry);
    },
  };
}
