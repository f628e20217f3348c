import { type KV, Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { HEADER_LENGTH, agentIdFromPublicKey, meshBuckets, meshSubjects, type OpenedFrame, StatelessVerifier } from '@trustmesh/protocol';
import { CONTROL_KIND, type ControlData, parseControl, STATE_KEY } from './control.ts';

/** The kill state record as read from JetStream: the operator's signed control frame, verified. */
export interface StateRecord {
  frame: OpenedFrame;
  control: ControlData;
  /** KV revision of the record (for compare-and-set). */
  revision: number;
}

export type ReadResult =
  | { kind: 'none'; revision: number }
  | { kind: 'record'; record: StateRecord }
  | { kind: 'invalid'; reason: string; detail: string; signer?: string; revision: number };

const verifier = new StatelessVerifier();

/** True for the errors a missing bucket (or a server without JetStream) gives. */
export function isMissingBucket(err: unknown): boolean {
  const message = err instanceof Error ? err.message : '';
  return /stream not found|bucket not found|no responders|jetstream not enabled|503/i.test(message);
}

/** Opens the mesh's kill bucket (undefined when it does not exist). */
export async function openKillBucket(nc: NatsConnection, mesh: string): Promise<KV | undefined> {
  try {
    const kv = await new Kvm(nc).open(meshBuckets(mesh).kill);
    await kv.status(); // bind does not look: ask, so a missing bucket shows here
    return kv;
  } catch (err) {
    if (isMissingBucket(err)) return undefined;
    throw err;
  }
}

/**
 * Reads and verifies the kill state record: stateless frame rules against the
 * control subject of the key that signed it (the record may be older than any
 * window; its sequence orders it). Whether the signer is an operator is the
 * caller's check.
 */
export async function readState(kv: KV, mesh: string): Promise<ReadResult> {
  const entry = await kv.get(STATE_KEY);
  if (entry === null || entry.operation !== 'PUT' || entry.value.length === 0) return { kind: 'none', revision: entry?.revision ?? 0 };
  const bytes = entry.value;
  if (bytes.length < HEADER_LENGTH + 1)
    return { kind: 'invalid', reason: 'bad_frame', detail: 'record too short', revision: entry.revision };
  let subject: string;
  try {
    subject = meshSubjects(mesh).broadcast(CONTROL_KIND, agentIdFromPublicKey(bytes.subarray(1, 33)));
  } catch {
    return { kind: 'invalid', reason: 'bad_frame', detail: 'record header key is not a key', revision: entry.revision };
  }
  const result = verifier.verify(bytes, subject);
  if (!result.ok) {
    return {
      kind: 'invalid',
      reason: result.reason,
      detail: result.detail,
      revision: entry.revision,
      ...(result.signedBy !== undefined && { signer: result.signedBy }),
    };
  }
  const control = parseControl(result.frame.typ, result.frame.data);
  if (control === undefined) {
    return {
      kind: 'invalid',
      reason: 'bad_control',
      detail: 'record data is not a kill state',
      signer: result.frame.iss,
      revision: entry.revision,
    };
  }
  return { kind: 'record', record: { frame: result.frame, control, revision: entry.revision } };
}

const reconnectListeners = new WeakMap<NatsConnection, Set<() => void>>();

/**
 * Calls `listener` after each reconnect of `nc`: one status watcher per
 * connection, however many agents share it. Returns the function that stops it.
 */
export function onReconnect(nc: NatsConnection, listener: () => void): () => void {
  let listeners = reconnectListeners.get(nc);
  if (listeners === undefined) {
    const set = new Set<() => void>();
    listeners = set;
    reconnectListeners.set(nc, set);
    void (async () => {
      for await (const status of nc.status()) {
        if (status.type !== 'reconnect') continue;
        for (const l of [...set]) {
          try {
            l();
          } catch {
            // a listener's failure is its own
          }
        }
      }
    })().catch(() => undefined);
  }
  const set = listeners;
  set.add(listener);
  return () => set.delete(listener);
}
