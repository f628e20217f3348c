import type { NatsConnection } from '@nats-io/transport-node';
import type { AgentKey, Blame, MeshSubjects, OpenedFrame, RejectReason, Route, SignedFrame } from '@trustmesh/protocol';
import type { AgentEvents } from './ledger.ts';

/**
 * Extension points of the agent pipeline. Trust, kill, breakers and delegation
 * are modules that implement these; the agent core imports none of them.
 *
 *   receive -> verify -> [inbound guards] -> route (reply | dispatch)
 *   send    -> [outbound guards] -> sign -> publish
 *   request -> [request interceptors] -> send, await the verified reply
 */

/** A frame that passed every rule of docs/protocol.md §7, as guards see it. */
export interface InboundFrame {
  readonly frame: OpenedFrame;
  readonly route: Route;
  /** The subject it arrived on. */
  readonly subject: string;
}

/** A guard's refusal. `reason` is a stable code (e.g. `killed`, `untrusted`, `policy`, or the guard's own). */
export interface Refusal {
  reason: RejectReason | (string & {});
  detail: string;
  /** Whose fault it is; a guard refusing a validly signed, fresh frame for what it says usually blames the signer. */
  blame?: Blame;
}

/** Admits a frame (returns undefined) or refuses it. Runs after verification, before routing. Must not throw. */
export type InboundGuard = (input: InboundFrame) => Refusal | undefined;

/** What the agent is about to sign and publish. */
export interface OutboundMessage {
  /** `msg`, `req`, `rep`, `presence`, or an extension's kind. */
  readonly kind: string;
  /** Recipient, for addressed kinds. */
  readonly to?: PeerRef;
  readonly typ: string;
  readonly data: unknown;
}

/** Refuses a send by throwing a typed error (a `TrustMeshError` subclass); returns normally to allow it. */
export type OutboundGuard = (message: OutboundMessage) => void;

/** A peer as the agent addresses it. */
export interface PeerRef {
  readonly did: string;
  readonly agentId: string;
}

/** One call of `agent.request()`, as interceptors see it. */
export interface RequestCall {
  readonly to: PeerRef;
  readonly typ: string;
  readonly data: unknown;
  readonly timeoutMs: number;
  readonly signal: AbortSignal | undefined;
}

/** Wraps `request()`: call `next(call)` to go on (possibly with a changed call), or fail fast without calling it. */
export type RequestInterceptor = (call: RequestCall, next: (call: RequestCall) => Promise<unknown>) => Promise<unknown>;

/** What an extension may use of the agent it is installed on. */
export interface ExtensionPort {
  /** The agent's key: extensions are modules its owner installs, and some sign (capability tokens). */
  readonly key: AgentKey;
  readonly did: string;
  readonly agentId: string;
  readonly mesh: string;
  /** Secure mode: the transport authenticates publishers, and agents may not create JetStream consumers. */
  readonly secure: boolean;
  readonly subjects: MeshSubjects;
  /** The agent's NATS connection (shared or own); an extension must not close it. */
  readonly connection: NatsConnection;
  /**
   * Signs and publishes a frame on one of the agent's own subjects (its last
   * token must be the agent's id), bypassing outbound guards: for control
   * traffic such as a halted acknowledgement while every other send is refused.
   */
  publishSigned(subject: string, typ: string, data: unknown, options?: { aud?: string; cor?: Uint8Array }): SignedFrame;
  /**
   * Signs and publishes like the agent's own sends: the outbound guards run first
   * (kill, trust) and refuse by throwing. The subject must be one of the agent's own.
   */
  send(subject: string, message: OutboundMessage, options?: { aud?: string; cor?: Uint8Array }): SignedFrame;
  /** Counts and reports a refusal of a verified frame that the extension's own handler made. */
  refuse(input: InboundFrame, refusal: Refusal): void;
  /**
   * Receives verified frames of an addressed kind of the extension's own
   * (`tm.<mesh>.<kind>.<this agent>.<sender>`), after the inbound guards unless
   * `guards` is false. The agent's inbox subscription already carries them.
   */
  routeKind(kind: string, handler: (input: InboundFrame) => void, options?: { guards?: boolean }): void;
  /**
   * An extra subscription (a broadcast subject, or a queue group) whose frames go
   * through the agent's pipeline: intake, both verification stages, the guards
   * (unless `guards` is false), then `handler`. Returns the function that stops it.
   */
  subscribe(subject: string, handler: (input: InboundFrame) => void, options?: { queue?: string; guards?: boolean }): () => Promise<void>;
  /** Aborts every in-flight handler call, with `reason` as the signal's reason. */
  abortInFlight(reason: unknown): void;
  /** Fails every pending request with `error`. */
  failPending(error: Error): void;
  /** Listens to the agent's events; returns the function that stops listening. */
  on<K extends keyof AgentEvents>(event: K, listener: AgentEvents[K]): () => void;
  /** Verified peers known from presence. */
  isPeer(agentId: string): boolean;
}

/** A module that plugs into an agent. Every member is optional. */
export interface AgentExtension {
  /** Names the extension in errors and warnings. */
  readonly name: string;
  readonly inbound?: InboundGuard;
  readonly outbound?: OutboundGuard;
  readonly interceptRequest?: RequestInterceptor;
  /** Called once during join, before the agent announces itself: may read state (e.g. kill state) it must know before the first send. */
  attach?(port: ExtensionPort): void | Promise<void>;
  /** Called once when the agent leaves. */
  detach?(): void | Promise<void>;
  /** Called when in-flight work is aborted (an operator kill, the agent leaving): abort the extension's own work too. */
  abort?(reason: unknown): void;
}
