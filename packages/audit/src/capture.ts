/**
 * The capture stream: JetStream keeps every message on the mesh subjects, so
 * the audit never depends on a live core-NATS subscription. `no_ack` keeps the
 * stream from answering publishes that carry a reply subject.
 */
import { DiscardPolicy, type JetStreamManager, RetentionPolicy, type StreamConfig, StorageType } from '@nats-io/jetstream';
import { meshBuckets, meshRoot } from '@trustmesh/protocol';
import { invalid } from './errors.ts';

/** `tm_<mesh>_audit_capture`: the name every package takes from the protocol's `meshBuckets`. */
export function captureStreamName(mesh: string): string {
  return meshBuckets(mesh).auditCapture;
}

export interface CaptureInit {
  /** Subjects to capture; default `tm.<mesh>.>`. Control subjects outside the mesh root go here too. */
  subjects?: string[];
  /** Stream limits; messages beyond them are dropped oldest first, and the audit writes a gap record if it had not read them. */
  maxMessages?: number;
  maxBytes?: number;
  maxAgeMs?: number;
  /** `file` (default) or `memory`. */
  storage?: 'file' | 'memory';
  /**
   * Stream replicas: 3 on a 3-node JetStream cluster so the capture survives a node
   * loss (`replicasFor(nc)` from @trustmesh/client picks it). Default 1.
   */
  replicas?: number;
}

export function captureStreamConfig(mesh: string, init: CaptureInit = {}): Partial<StreamConfig> & { name: string } {
  const pos = (name: string, v: number | undefined): number => {
    if (v === undefined) return -1;
    if (!Number.isSafeInteger(v) || v <= 0) throw invalid(`capture.${name} must be a positive integer`);
    return v;
  };
  return {
    name: captureStreamName(mesh),
    subjects: init.subjects ?? [`${meshRoot(mesh)}.>`],
    no_ack: true,
    retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.Old,
    storage: init.storage === 'memory' ? StorageType.Memory : StorageType.File,
    max_msgs: pos('maxMessages', init.maxMessages),
    max_bytes: pos('maxBytes', init.maxBytes),
    max_age: init.maxAgeMs === undefined ? 0 : pos('maxAgeMs', init.maxAgeMs) * 1_000_000,
    // Single messages cannot be deleted; the limits above are the only way out.
    deny_delete: true,
    num_replicas: init.replicas === undefined ? 1 : pos('replicas', init.replicas),
  };
}

/** Creates the capture stream if it is missing; an existing one is left as it is. Returns its name. */
export async function ensureCaptureStream(jsm: JetStreamManager, mesh: string, init: CaptureInit = {}): Promise<string> {
  const config = captureStreamConfig(mesh, init);
  try {
    await jsm.streams.info(config.name);
  } catch (err) {
    if (!isNotFound(err)) throw err;
    await jsm.streams.add(config);
  }
  return config.name;
}

export function isNotFound(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 10059 || code === 10014 || code === 404 || /not found/i.test(String((err as Error)?.message));
}
