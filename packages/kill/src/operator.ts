import { performance } from 'node:perf_hooks';
import { type KV, Kvm } from '@nats-io/kv';
import { type ConnectionOptions, connect, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { replicasFor } from '@trustmesh/client';
import {
  type AgentKey,
  assertMeshName,
  byteKey,
  FrameVerifier,
  InvalidArgumentError,
  meshBuckets,
  type MeshSubjects,
  meshSubjects,
  signFrame,
  TrustMeshError,
} from '@trustmesh/protocol';
import {
  ACK_KIND,
  CONTROL_KIND,
  CONTROL_TYPES,
  type ControlData,
  type ControlOp,
  isAgentId,
  MAX_TARGETED,
  parseAck,
  toAgentId,
} from './control.ts';
import { PresenceView } from './presence-view.ts';
import { readState } from './record.ts';

export interface OperatorInit {
  /** The operator's identity: its DID must be one of the mesh's operators. */
  key: AgentKey;
  mesh: string;
  /** A connection to use (never closed by the operator), or `servers` to connect. */
  connection?: NatsConnection;
  servers?: string | string[];
  connectionOptions?: Omit<ConnectionOptions, 'servers'>;
  /**
   * The agents expected to acknowledge a global operation (agent ids or DIDs).
   * Default: every agent whose last signed presence is not a leave and was issued
   * within `presenceMaxAgeMs`, from the presence registry (`meshBuckets(mesh).presence`,
   * read once) and the live presence frames the operator verifies from then on.
   */
  knownAgents?: () => Iterable<string> | Promise<Iterable<string>>;
  /** Presence records older than this are not expected to answer; default 60,000 ms. */
  presenceMaxAgeMs?: number;
  /** Default wait for acknowledgements; 2,000 ms. */
  timeoutMs?: number;
  /**
   * Every operator of the mesh (DIDs; this operator's own is always included). A
   * record in the kill bucket signed by anyone else is not built upon: its sequence
   * is passed, its content ignored (in open mode anyone can write the bucket).
   */
  operators?: string[];
}

export interface OperationOptions {
  /** One agent (DID or agent id); the whole mesh when omitted. */
  agent?: string;
  /** How long to wait for acknowledgements. */
  timeoutMs?: number;
}

export interface OperationResult {
  op: ControlOp;
  /** Sequence of the new kill state. */
  seq: number;
  /** DID of the target, for a targeted operation. */
  target?: string;
  /** Distinct agents whose signed acknowledgement verified. */
  acknowledged: number;
  /** Agents expected to acknowledge: the target, or the known agents for a global operation. */
  expected: number;
  /** Expected agents (DIDs) that did not acknowledge in time. */
  missing: string[];
  /** Acknowledgements by the state the agent reported. */
  states: { halted: number; running: number };
  /** From the publish to each verified acknowledgement's arrival (ms). */
  latencyMs: { p50: number; p99: number; max: number };
}

/** The kill state as the operator reads it from JetStream. */
export interface OperatorView {
  seq: number;
  all: boolean;
  /** DIDs halted one by one. */
  killed: string[];
  /** The operator that signed the record. */
  by?: string;
}

export interface Operator {
  readonly did: string;
  readonly mesh: string;
  kill(options?: OperationOptions): Promise<OperationResult>;
  revive(options?: OperationOptions): Promise<OperationResult>;
  /** The persisted kill state. */
  state(): Promise<OperatorView>;
  /** Agents expected to answer a global operation now (agent ids). */
  knownAgents(): Promise<string[]>;
  /** Stops listening; closes the connection if the operator opened it. */
  close(): Promise<void>;
}

/** The persisted kill state could not be written (JetStream missing, or the record kept changing under us). */
export class KillStateError extends TrustMeshError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('kill_state', message, options);
    this.name = 'KillStateError';
  }
}

interface Collector {
  seq: number;
  start: number;
  expected: Set<string>;
  acked: Map<string, { state: 'halted' | 'running'; ms: number }>;
  /** Expected agents that have not acknowledged yet. */
  remaining: number;
  wake: () => void;
}

const MAX_CAS_ATTEMPTS = 16;

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]!;
}

/**
 * An operator: signs kill and revive snapshots, persists each in the kill
 * bucket (compare-and-set on the record, so sequences never repeat even with
 * several operators) BEFORE publishing it, then counts the agents' signed
 * acknowledgements.
 */
export async function createOperator(init: OperatorInit): Promise<Operator> {
  assertMeshName(init.mesh);
  if (init.connection === undefined && init.servers === undefined)
    throw new InvalidArgumentError('createOperator: give a connection or servers');
  const key = init.key;
  const mesh = init.mesh;
  const subjects: MeshSubjects = meshSubjects(mesh);
  const owns = init.connection === undefined;
  const nc =
    init.connection ??
    (await connect({ ...init.connectionOptions, servers: init.servers!, name: `trustmesh:operator:${key.agentId.slice(-8)}` }));
  const defaultTimeout = init.timeoutMs ?? 2_000;
  const maxAge = init.presenceMaxAgeMs ?? 60_000;
  let kv: KV;
  try {
    // The operator side creates the bucket; agents only read it.
    kv = await new Kvm(nc).create(meshBuckets(mesh).kill, { history: 16, replicas: replicasFor(nc) });
  } catch (err) {
    if (owns) await nc.close().catch(() => undefined);
    throw new KillStateError(`cannot open the kill bucket ${meshBuckets(mesh).kill} (JetStream needed)`, { cause: err });
  }
  const verifier = new FrameVerifier({ self: key.did });
  const collectors = new Map<string, Collector>();
  let lastSeq = 0;
  const trusted = new Set([key.did, ...(init.operators ?? [])]);

  const ackSub: Subscription = nc.subscribe(subjects.addressed(ACK_KIND, key.agentId, '*'), {
    callback: (err, msg) => {
      if (err !== null) return;
      const at = performance.now();
      try {
        const result = verifier.verify(msg.data, { subject: msg.subject });
        if (!result.ok || result.frame.typ !== CONTROL_TYPES.ack || result.frame.cor === undefined) return;
        const collector = collectors.get(byteKey(result.frame.cor));
        const ack = parseAck(result.frame.data);
        if (collector === undefined || ack === undefined || ack.seq !== collector.seq) return;
        const agentId = result.route.from;
        if (collector.acked.has(agentId)) return;
        collector.acked.set(agentId, { state: ack.state, ms: at - collector.start });
        if (collector.expected.has(agentId) && --collector.remaining === 0) collector.wake();
      } catch {
        // never let a frame stop the reader
      }
    },
  });
  await nc.flush();

  const presence = init.knownAgents === undefined ? new PresenceView(nc, mesh, subjects, key.agentId) : undefined;
  await presence?.start();

  async function knownAgents(): Promise<string[]> {
    if (init.knownAgents === undefined) return presence?.known(Date.now(), maxAge) ?? [];
    return [...new Set([...(await init.knownAgents())].map(toAgentId))].filter((id) => id !== key.agentId);
  }

  /** Allocates the next sequence and persists the snapshot (CAS); returns the signed frame. */
  async function persist(op: ControlOp, target: string | undefined) {
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      const read = await readState(kv, mesh);
      const revision = read.kind === 'record' ? read.record.revision : read.revision;
      const empty: ControlData = { seq: 0, op: 'revive', all: false, agents: [] };
      // A record only a non-operator signed is passed (its sequence), never built upon.
      const prior: ControlData =
        read.kind !== 'record'
          ? empty
          : trusted.has(read.record.frame.iss)
            ? read.record.control
            : { ...empty, seq: read.record.control.seq };
      const agents = new Set(prior.agents);
      let all = prior.all;
      if (target === undefined) all = op === 'kill';
      else if (op === 'kill') agents.add(target);
      else agents.delete(target);
      if (agents.size > MAX_TARGETED) throw new InvalidArgumentError(`at most ${MAX_TARGETED} agents can be halted one by one`);
      const seq = Math.max(prior.seq, lastSeq) + 1;
      const data: ControlData = { seq, op, all, agents: [...agents], ...(target !== undefined && { target }) };
      const signed = signFrame(key, {
        sub: subjects.broadcast(CONTROL_KIND, key.agentId),
        typ: op === 'kill' ? CONTROL_TYPES.kill : CONTROL_TYPES.revive,
        data,
      });
      try {
        if (revision === 0) await kv.create('state', signed.bytes);
        else await kv.update('state', signed.bytes, revision);
        lastSeq = seq;
        return { signed, data };
      } catch (err) {
        const message = err instanceof Error ? err.message : '';
        if (!/wrong last sequence|key exists/i.test(message)) throw new KillStateError('cannot write the kill state', { cause: err });
        // another operator wrote first: read again and go on from its sequence
      }
    }
    throw new KillStateError(`the kill state kept changing: gave up after ${MAX_CAS_ATTEMPTS} attempts`);
  }

  async function operate(op: ControlOp, options: OperationOptions = {}): Promise<OperationResult> {
    const target = options.agent === undefined ? undefined : toAgentId(options.agent);
    if (target !== undefined && !isAgentId(target)) throw new InvalidArgumentError(`not an agent id or DID: ${options.agent}`);
    const timeoutMs = options.timeoutMs ?? defaultTimeout;
    const expected = new Set(target === undefined ? await knownAgents() : [target]);
    const { signed, data } = await persist(op, target);
    const id = byteKey(signed.body.id);
    let wake = () => {};
    const done = new Promise<void>((resolve) => {
      wake = resolve;
    });
    const collector: Collector = {
      seq: data.seq,
      start: 0,
      expected,
      acked: new Map(),
      remaining: expected.size,
      wake: () => wake(),
    };
    collectors.set(id, collector);
    let timer: NodeJS.Timeout | undefined;
    try {
      collector.start = performance.now();
      nc.publish(signed.body.sub, signed.bytes);
      await nc.flush();
      await Promise.race([done, new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
    } finally {
      clearTimeout(timer);
      collectors.delete(id);
    }
    const times = [...collector.acked.values()].map((a) => a.ms).sort((a, b) => a - b);
    let halted = 0;
    for (const a of collector.acked.values()) if (a.state === 'halted') halted++;
    const round = (n: number) => Math.round(n * 100) / 100;
    return {
      op,
      seq: data.seq,
      ...(target !== undefined && { target: `did:key:${target}` }),
      acknowledged: collector.acked.size,
      expected: expected.size,
      missing: [...expected].filter((a) => !collector.acked.has(a)).map((a) => `did:key:${a}`),
      states: { halted, running: collector.acked.size - halted },
      latencyMs: { p50: round(percentile(times, 0.5)), p99: round(percentile(times, 0.99)), max: round(times.at(-1) ?? 0) },
    };
  }

  return {
    did: key.did,
    mesh,
    kill: (options) => operate('kill', options),
    revive: (options) => operate('revive', options),
    knownAgents,
    async state() {
      const read = await readState(kv, mesh);
      if (read.kind !== 'record' || !trusted.has(read.record.frame.iss)) return { seq: 0, all: false, killed: [] };
      const { control, frame } = read.record;
      return { seq: control.seq, all: control.all, killed: control.agents.map((a) => `did:key:${a}`), by: frame.iss };
    },
    async close() {
      ackSub.unsubscribe();
      presence?.stop();
      if (owns) await nc.drain().catch(() => undefined);
    },
  };
}
