import type { KV } from '@nats-io/kv';
import { NON_AGENT_KEY_PREFIX } from '@trustmesh/trust';
import { isConflict } from './store.ts';

/** When the broker first saw a receiver's rules (by the hash of their JSON) published. */
interface Entry {
  readonly hash: string;
  readonly since: number;
}

const MAX_HISTORY = 16;
const decoder = new TextDecoder();

/**
 * The broker's own record of each receiver's published rules: which rules
 * (hash), since when the broker saw them on `tm.<mesh>.rules.<agent>`. Kept in
 * the trust bucket under `rules.<agent id>`, so it survives restarts and is
 * shared by brokers on one bucket. A policy report counts only if its rules are
 * the ones in force, by this record, when the offending frame was signed.
 */
export class Declarations {
  private readonly memory = new Map<string, Entry[]>();

  constructor(private readonly kv: KV) {}

  private async load(agentId: string): Promise<{ history: Entry[]; revision: number }> {
    const entry = await this.kv.get(NON_AGENT_KEY_PREFIX + agentId);
    if (entry === null || entry.operation !== 'PUT') return { history: [], revision: entry?.revision ?? 0 };
    try {
      const value = JSON.parse(decoder.decode(entry.value)) as { history?: Entry[] };
      const history = Array.isArray(value.history)
        ? value.history.filter((e) => typeof e?.hash === 'string' && Number.isSafeInteger(e?.since))
        : [];
      return { history, revision: entry.revision };
    } catch {
      return { history: [], revision: entry.revision };
    }
  }

  /** Records that `agentId` published rules with this hash at `now` (no-op if they are already its latest). */
  async record(agentId: string, hash: string, now: number): Promise<boolean> {
    const latest = this.memory.get(agentId)?.at(-1);
    if (latest?.hash === hash) return false;
    for (let attempt = 0; attempt < 20; attempt++) {
      const { history, revision } = await this.load(agentId);
      if (history.at(-1)?.hash === hash) {
        this.memory.set(agentId, history);
        return false;
      }
      const next = [...history, { hash, since: now }].slice(-MAX_HISTORY);
      try {
        const key = NON_AGENT_KEY_PREFIX + agentId;
        const value = JSON.stringify({ history: next });
        await (revision === 0 ? this.kv.create(key, value) : this.kv.update(key, value, revision));
        this.memory.set(agentId, next);
        return true;
      } catch (error) {
        if (!isConflict(error)) throw error;
      }
    }
    return false;
  }

  /** The hash of the rules in force at `t` (the last published at or before `t`), per the stored record. */
  async inForce(agentId: string, t: number): Promise<string | undefined> {
    const { history } = await this.load(agentId);
    this.memory.set(agentId, history);
    let found: string | undefined;
    for (const entry of history) if (entry.since <= t) found = entry.hash;
    return found;
  }
}
