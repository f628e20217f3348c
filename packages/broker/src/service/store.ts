import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import { agentIdFromDid } from '@trustmesh/protocol';
import type { StoredScore } from '@trustmesh/trust';
import { parseTrustState, type TrustState } from '../scoring/state.ts';

/** A state as read, with the KV revision it was read at (0: no entry yet). */
export interface Read {
  readonly state: TrustState | undefined;
  readonly revision: number;
  /** Why a stored value was not used (corrupt entry); the broker starts that DID afresh. */
  readonly problem?: string;
}

/** True for a compare-and-set failure: someone wrote the key since we read it. */
export function isConflict(error: unknown): boolean {
  return (
    error instanceof JetStreamApiError &&
    (error.code === JetStreamApiCodes.StreamWrongLastSequence || error.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown)
  );
}

const decoder = new TextDecoder();

/**
 * Scores in the trust bucket: one key per agent id (DIDs hold `:`, which KV
 * keys may not), the value a {@link StoredScore} in JSON. Writes are
 * compare-and-set on the revision read: `create` for a new key, `update`
 * otherwise; a conflict is the caller's signal to re-read and re-apply.
 */
export class ScoreStore {
  constructor(readonly kv: KV) {}

  async read(did: string): Promise<Read> {
    const entry = await this.kv.get(agentIdFromDid(did));
    if (entry === null || entry.operation !== 'PUT') return { state: undefined, revision: entry?.revision ?? 0 };
    let stored: StoredScore;
    try {
      stored = JSON.parse(decoder.decode(entry.value)) as StoredScore;
    } catch {
      return { state: undefined, revision: entry.revision, problem: 'not JSON' };
    }
    const parsed = parseTrustState(stored?.state);
    if (!parsed.ok) return { state: undefined, revision: entry.revision, problem: `${parsed.field}: ${parsed.detail}` };
    if (parsed.state.did !== did) return { state: undefined, revision: entry.revision, problem: 'stored under another DID' };
    return { state: parsed.state, revision: entry.revision };
  }

  /** Writes if the key is still at `revision`; returns the new revision. Throws on conflict (see {@link isConflict}). */
  async write(did: string, value: StoredScore, revision: number): Promise<number> {
    const key = agentIdFromDid(did);
    const bytes = JSON.stringify(value);
    return revision === 0 ? this.kv.create(key, bytes) : this.kv.update(key, bytes, revision);
  }
}
