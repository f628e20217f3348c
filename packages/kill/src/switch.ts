import type { AgentExtension, ExtensionPort, InboundFrame, Refusal, RequestCall } from '@trustmesh/client';
import { didFromAgentId, InvalidArgumentError, meshBuckets, tryPublicKeyFromDid } from '@trustmesh/protocol';
import {
  ACK_KIND,
  type AckData,
  CONTROL_TYPES,
  type ControlData,
  KILL_REFUSALS,
  KilledError,
  type KillRefusalReason,
  parseControl,
  STATE_KEY,
  toAgentId,
} from './control.ts';
import { ControlHub, type HubMember } from './control-hub.ts';
import { onReconnect, openKillBucket, readState } from './record.ts';

export interface KillSwitchInit {
  /** DIDs of the mesh operators (from the mesh configuration): only their control frames count. */
  operators: string[];
  /**
   * Frames of a halted peer issued this long after the kill (by the peer's own `iat`)
   * are refused with blame on their signer (sending while killed); earlier ones with
   * blame `none` (they may have been in flight). Default 2,000 ms.
   */
  blameGraceMs?: number;
}

/** The kill state an agent enforces. */
export interface KillState {
  /** Sequence of the snapshot in force; 0 before any. */
  seq: number;
  /** This agent is halted (global kill, or a targeted kill of this agent). */
  halted: boolean;
  /** The whole mesh is halted. */
  all: boolean;
  /** DIDs halted one by one. */
  killed: string[];
  /** DID of the operator that signed the snapshot in force. */
  by?: string;
  /** Where the snapshot in force came from. */
  source?: 'frame' | 'record';
}

/** A control frame or record refused after it passed the wire rules. */
export interface ControlRefusal {
  reason: KillRefusalReason | (string & {});
  detail: string;
  /** The subject it arrived on, or `kv:<bucket>/state` for the record. */
  subject: string;
  /** The signer's DID (the signature verified). */
  signer?: string;
}

export interface KillSwitchStats {
  /** Snapshots applied (from frames and the record). */
  applied: number;
  acksSent: number;
  /** Refusals by reason (wire rejections of control frames are in `agent.stats().rejected`). */
  refused: Record<string, number>;
}

export type KillSwitchEvents = {
  /** A newer snapshot was applied. */
  change: (state: KillState) => void;
  /** A control frame or record was refused. */
  refused: (refusal: ControlRefusal) => void;
};

/** The kill switch: an {@link AgentExtension} plus what it knows. */
export interface KillSwitch extends AgentExtension {
  state(): KillState;
  /** True when the DID (or agent id) is halted: a global kill, or a targeted kill of it. For breakers' `isBlocked`. */
  isKilled(didOrAgentId: string): boolean;
  /** `'killed'` when {@link isKilled}: the shape `breakers({ isBlocked })` takes. */
  readonly isBlocked: (did: string) => 'killed' | undefined;
  stats(): KillSwitchStats;
  on<K extends keyof KillSwitchEvents>(event: K, listener: KillSwitchEvents[K]): () => void;
}

interface Applied {
  seq: number;
  id: Uint8Array | undefined;
  all: boolean;
  agents: Set<string>;
  /** iat of the kill that halted each agent (kept across snapshots while it stays halted). */
  since: Map<string, number>;
  allSince: number;
  by?: string;
  source?: 'frame' | 'record';
}

const sameId = (a: Uint8Array | undefined, b: Uint8Array): boolean =>
  a !== undefined && a.length === b.length && a.every((x, i) => x === b[i]);

/**
 * The kill switch extension for one agent: create one per agent and put it in
 * `joinMesh({ extensions })`, first, so its guards run before any other.
 *
 * On attach (before the agent can send) it subscribes to `tm.<mesh>.ctl.*`
 * (through one hub per connection that verifies each control frame once, past
 * no guard and no intake budget, so control frames reach a halted or flooded
 * agent), then reads the sticky kill state from JetStream KV. From then on it
 * enforces the newest operator-signed snapshot: outbound guard (a halted agent's sends and requests
 * fail with {@link KilledError}; presence still goes out, so the agent stays
 * visible), inbound guard (reason `killed`), the request interceptor (requests
 * to halted peers fail fast; pending ones are aborted when the peer is halted).
 */
export function killSwitch(init: KillSwitchInit): KillSwitch {
  if (!Array.isArray(init?.operators) || init.operators.length === 0)
    throw new InvalidArgumentError('killSwitch: operators must be a non-empty array of operator DIDs');
  for (const did of init.operators) {
    if (tryPublicKeyFromDid(did) === undefined)
      throw new InvalidArgumentError(`killSwitch: operators: not a did:key: ${String(did).slice(0, 80)}`);
  }
  const operators = new Set(init.operators);
  const graceMs = init.blameGraceMs ?? 2_000;
  let port: ExtensionPort | undefined;
  let hub: ControlHub | undefined;
  /** The hub's refusal counts when this switch joined it: its own share starts there. */
  let hubBaseline = new Map<string, number>();
  let stopReconnect: (() => void) | undefined;
  let selfId = '';
  let current: Applied = { seq: 0, id: undefined, all: false, agents: new Set(), since: new Map(), allSince: 0 };
  let halted = false;
  const stats: KillSwitchStats = { applied: 0, acksSent: 0, refused: {} };
  const listeners: { [K in keyof KillSwitchEvents]: Set<KillSwitchEvents[K]> } = { change: new Set(), refused: new Set() };
  /** Requests in flight per peer agent id, so a targeted kill can abort them. */
  const inFlight = new Map<string, Set<AbortController>>();

  const emit = <K extends keyof KillSwitchEvents>(event: K, ...args: Parameters<KillSwitchEvents[K]>) => {
    for (const listener of listeners[event]) {
      try {
        (listener as (...a: Parameters<KillSwitchEvents[K]>) => void)(...args);
      } catch {
        // a listener's failure is its own
      }
    }
  };

  const refuse = (refusal: ControlRefusal) => {
    stats.refused[refusal.reason] = (stats.refused[refusal.reason] ?? 0) + 1;
    emit('refused', refusal);
  };

  const killedId = (agentId: string) => current.all || current.agents.has(agentId);

  const state = (): KillState => ({
    seq: current.seq,
    halted,
    all: current.all,
    killed: [...current.agents].map(didFromAgentId),
    ...(current.by !== undefined && { by: current.by }),
    ...(current.source !== undefined && { source: current.source }),
  });

  /** Applies a snapshot newer than the one in force; acts on what changed. */
  const apply = (control: ControlData, id: Uint8Array, iat: number, by: string, source: 'frame' | 'record') => {
    const since = new Map<string, number>();
    for (const agentId of control.agents) since.set(agentId, current.since.get(agentId) ?? iat);
    const before = current;
    current = {
      seq: control.seq,
      id,
      all: control.all,
      agents: new Set(control.agents),
      since,
      allSince: control.all ? (before.all ? before.allSince : iat) : 0,
      by,
      source,
    };
    stats.applied++;
    const wasHalted = halted;
    halted = current.all || current.agents.has(selfId);
    if (halted && !wasHalted && port !== undefined) {
      const error = new KilledError('self', port.did, current.seq);
      port.failPending(error);
      port.abortInFlight(error);
    }
    // Requests in flight to peers halted now fail at once rather than at their timeout.
    for (const [agentId, controllers] of inFlight) {
      if (!killedId(agentId) || before.all || before.agents.has(agentId)) continue;
      const error = new KilledError('peer', didFromAgentId(agentId), current.seq);
      for (const controller of controllers) controller.abort(error);
    }
    if (listeners.change.size > 0) emit('change', state());
  };

  const ack = (control: ControlData, operator: string, cor: Uint8Array) => {
    if (port === undefined) return;
    if (control.target !== undefined && control.target !== selfId) return;
    const data: AckData = { seq: control.seq, state: halted ? 'halted' : 'running' };
    try {
      port.publishSigned(port.subjects.addressed(ACK_KIND, toAgentId(operator), selfId), CONTROL_TYPES.ack, data, { aud: operator, cor });
      stats.acksSent++;
    } catch {
      // the agent is leaving: the operator lists it as missing
    }
  };

  const onControl = ({ frame, route, subject }: InboundFrame) => {
    if (!operators.has(frame.iss)) {
      refuse({ reason: 'not_operator', detail: KILL_REFUSALS.not_operator, subject, signer: frame.iss });
      return;
    }
    const control = route.to === undefined && frame.aud === undefined ? parseControl(frame.typ, frame.data) : undefined;
    if (control === undefined) {
      refuse({ reason: 'bad_control', detail: KILL_REFUSALS.bad_control, subject, signer: frame.iss });
      return;
    }
    if (control.seq < current.seq) {
      refuse({ reason: 'stale', detail: `sequence ${control.seq} < ${current.seq} in force`, subject, signer: frame.iss });
      return;
    }
    if (control.seq === current.seq) {
      // The same operation, already applied from the KV record: acknowledge it again.
      if (sameId(current.id, frame.id)) ack(control, frame.iss, frame.id);
      else refuse({ reason: 'replay', detail: `sequence ${control.seq} is in force with another frame`, subject, signer: frame.iss });
      return;
    }
    apply(control, frame.id, frame.iat, frame.iss, 'frame');
    ack(control, frame.iss, frame.id);
  };

  /**
   * Reads the kill state record and applies it if newer. After a reconnect the
   * agent also acknowledges it, as it would the live frame it may have missed.
   */
  const readRecord = async (acknowledge: boolean) => {
    if (port === undefined) return;
    const kv = await openKillBucket(port.connection, port.mesh);
    if (kv === undefined) return; // no kill was ever persisted on this mesh
    const read = await readState(kv, port.mesh);
    const subject = `kv:${meshBuckets(port.mesh).kill}/${STATE_KEY}`;
    if (read.kind === 'invalid') {
      refuse({ reason: read.reason, detail: read.detail, subject, ...(read.signer !== undefined && { signer: read.signer }) });
      return;
    }
    if (read.kind === 'none') return;
    const { frame, control } = read.record;
    if (!operators.has(frame.iss)) {
      refuse({ reason: 'not_operator', detail: KILL_REFUSALS.not_operator, subject, signer: frame.iss });
      return;
    }
    // A live frame may have brought this snapshot or a newer one already.
    if (control.seq <= current.seq) return;
    apply(control, frame.id, frame.iat, frame.iss, 'record');
    if (acknowledge) ack(control, frame.iss, frame.id);
  };

  const member: HubMember = {
    operators,
    deliver: (input) => onControl(input),
    refused: (refusal) => emit('refused', refusal),
    get wantsRefusals() {
      return listeners.refused.size > 0;
    },
  };

  const selfError = () => new KilledError('self', port?.did ?? '', current.seq);

  const extension: KillSwitch = {
    name: 'kill-switch',

    outbound(message) {
      if (halted && message.kind !== 'presence') throw selfError();
      if (message.to !== undefined && killedId(message.to.agentId)) throw new KilledError('peer', message.to.did, current.seq);
    },

    inbound({ frame, route }): Refusal | undefined {
      if (halted) return { reason: 'killed', detail: `this agent is halted by an operator kill (seq ${current.seq})`, blame: 'none' };
      if (!killedId(route.from)) return undefined;
      const since = current.all ? current.allSince : (current.since.get(route.from) ?? 0);
      return {
        reason: 'killed',
        detail: `the sender is halted by an operator kill (seq ${current.seq})`,
        blame: frame.iat > since + graceMs ? 'signer' : 'none',
      };
    },

    async interceptRequest(call: RequestCall, next) {
      if (halted) throw selfError();
      const peer = call.to.agentId;
      if (killedId(peer)) throw new KilledError('peer', call.to.did, current.seq);
      const controller = new AbortController();
      let set = inFlight.get(peer);
      if (set === undefined) inFlight.set(peer, (set = new Set()));
      set.add(controller);
      try {
        const signal = call.signal === undefined ? controller.signal : AbortSignal.any([call.signal, controller.signal]);
        return await next({ ...call, signal });
      } finally {
        set.delete(controller);
        if (set.size === 0) inFlight.delete(peer);
      }
    },

    async attach(p) {
      if (port !== undefined) throw new InvalidArgumentError('killSwitch: one kill switch per agent; create another for this agent');
      port = p;
      selfId = p.agentId;
      // Subscribe first, then read the record: an operator writes the record before it
      // publishes, so every kill is seen either live or in the record, or both.
      // Control frames come through a hub per connection, not the agent's intake
      // (decision 0009): verified once per connection, never dropped for a budget.
      hub = ControlHub.attach(p.connection, p.mesh, member);
      hubBaseline = new Map(hub.refusals);
      await hub.ready;
      await readRecord(false);
      // Frames published while the connection was down are lost (core NATS): read the record again.
      stopReconnect = onReconnect(p.connection, () => {
        void readRecord(true).catch(() => undefined);
      });
    },

    async detach() {
      stopReconnect?.();
      await hub?.detach(member);
    },

    state,
    isKilled: (didOrAgentId) => killedId(toAgentId(didOrAgentId)),
    isBlocked: (did) => (killedId(toAgentId(did)) ? 'killed' : undefined),
    stats() {
      const refused = { ...stats.refused };
      for (const [reason, n] of hub?.refusals ?? []) {
        const mine = n - (hubBaseline.get(reason) ?? 0);
        if (mine > 0) refused[reason] = (refused[reason] ?? 0) + mine;
      }
      return { ...stats, refused };
    },
    on(event, listener) {
      listeners[event].add(listener as never);
      return () => listeners[event].delete(listener as never);
    },
  };
  return extension;
}
