import { agentIdFromDid, TrustMeshError } from '@trustmesh/protocol';

/**
 * The control protocol of the kill switch (docs/operations.md, decision 0009).
 *
 * Subjects (the last token is always the publisher's agent id):
 * - `tm.<mesh>.ctl.<operator>`: kill and revive, signed by an operator, broadcast.
 * - `tm.<mesh>.ack.<operator>.<agent>`: an agent's signed acknowledgement, addressed to the operator.
 *
 * A control frame carries the WHOLE kill state after the operation (a snapshot),
 * numbered by a mesh-wide sequence the operators allocate with a compare-and-set
 * on the JetStream KV record. The newest snapshot wins, whatever order frames
 * arrive in and whichever path (live frame or KV record) brings them.
 */
export const CONTROL_KIND = 'ctl';
export const ACK_KIND = 'ack';
/** The key of the kill state record in the bucket `meshBuckets(mesh).kill`. */
export const STATE_KEY = 'state';

export const CONTROL_TYPES = {
  kill: 'tm.kill',
  revive: 'tm.revive',
  ack: 'tm.kill.ack',
} as const;

/** Most agents a snapshot names individually (targeted kills at once); keeps a snapshot well inside one frame. */
export const MAX_TARGETED = 4096;

/**
 * Why an agent refused a control frame or record that passed the wire rules.
 * Wire rejections (`bad_signature`, `replay`, `stale` by `iat`, ...) are the agent's own,
 * counted in `agent.stats().rejected`; these are counted by the kill switch.
 */
export const KILL_REFUSALS = {
  not_operator: 'control frame signed by a key that is not one of the mesh operators',
  bad_control: 'control frame with an unknown type or malformed or inconsistent data',
  stale: "control frame with a sequence lower than the kill state's: an older operation",
  replay: "control frame with the kill state's sequence but another frame id: not the operation already applied",
} as const;

export type KillRefusalReason = keyof typeof KILL_REFUSALS;

export type ControlOp = 'kill' | 'revive';

/** A kill state snapshot, as signed by an operator. */
export interface ControlData {
  /** Mesh-wide sequence of the operation; strictly increasing. */
  seq: number;
  op: ControlOp;
  /** Agent id of the agent the operation is about; absent for a global kill or revive. */
  target?: string;
  /** True while the whole mesh is halted. */
  all: boolean;
  /** Agent ids halted one by one (targeted kills not yet revived). */
  agents: string[];
}

export interface AckData {
  seq: number;
  state: 'halted' | 'running';
}

const AGENT_ID = /^z6Mk[1-9A-HJ-NP-Za-km-z]{44}$/;

export const isAgentId = (value: unknown): value is string => typeof value === 'string' && AGENT_ID.test(value);

/** Reads control data; undefined when malformed or inconsistent. Never throws. */
export function parseControl(typ: string, data: unknown): ControlData | undefined {
  if (typ !== CONTROL_TYPES.kill && typ !== CONTROL_TYPES.revive) return undefined;
  if (data === null || typeof data !== 'object' || Array.isArray(data)) return undefined;
  const d = data as Record<string, unknown>;
  const op: ControlOp = typ === CONTROL_TYPES.kill ? 'kill' : 'revive';
  if (d.op !== op || typeof d.all !== 'boolean') return undefined;
  const seq = d.seq;
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 1) return undefined;
  if (!Array.isArray(d.agents) || d.agents.length > MAX_TARGETED || !d.agents.every(isAgentId)) return undefined;
  const agents = d.agents as string[];
  if (new Set(agents).size !== agents.length) return undefined;
  if (d.target !== undefined && !isAgentId(d.target)) return undefined;
  const target = d.target as string | undefined;
  // The snapshot must say what the operation did.
  if (target === undefined && d.all !== (op === 'kill')) return undefined;
  if (target !== undefined && agents.includes(target) !== (op === 'kill')) return undefined;
  return { seq, op, all: d.all, agents, ...(target !== undefined && { target }) };
}

export function parseAck(data: unknown): AckData | undefined {
  if (data === null || typeof data !== 'object' || Array.isArray(data)) return undefined;
  const d = data as Record<string, unknown>;
  if (typeof d.seq !== 'number' || !Number.isSafeInteger(d.seq) || d.seq < 1) return undefined;
  if (d.state !== 'halted' && d.state !== 'running') return undefined;
  return { seq: d.seq, state: d.state };
}

/** A DID or an agent id, as an agent id (throws on misuse). */
export function toAgentId(didOrId: string): string {
  return didOrId.startsWith('did:key:') ? agentIdFromDid(didOrId) : didOrId;
}

/** Whose halting a {@link KilledError} reports. */
export type KilledScope = 'self' | 'peer';

/**
 * A send, request or handler was stopped by an operator kill: this agent is halted
 * (`scope` `self`), or the peer it addressed is (`scope` `peer`). `code` is `killed`.
 */
export class KilledError extends TrustMeshError {
  declare readonly code: 'killed';
  constructor(
    readonly scope: KilledScope,
    /** DID of the halted agent. */
    readonly agent: string,
    /** Sequence of the kill state that halted it. */
    readonly seq: number,
  ) {
    super(
      'killed',
      scope === 'self'
        ? `this agent (${agent}) is halted by an operator kill (seq ${seq}); nothing is sent until an operator revives it`
        : `peer ${agent} is halted by an operator kill (seq ${seq})`,
    );
    this.name = 'KilledError';
  }
}
