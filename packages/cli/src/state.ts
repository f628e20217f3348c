/**
 * Reading a mesh's JetStream state from the outside: the presence registry
 * (signed presence records, each verified) and the trust bucket (scores as
 * the broker stored them, decay applied with the default scoring policy).
 */
import { type KV, Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { createScorer, parseTrustState } from '@trustmesh/broker';
import { agentIdFromDid, didFromAgentId, MESSAGE_TYPES, meshBuckets, StatelessVerifier, subjects } from '@trustmesh/protocol';
import { NEW_AGENT_SCORE, NON_AGENT_KEY_PREFIX, type StoredScore, type Tier, tierOf } from '@trustmesh/trust';

export interface PresenceRecord {
  did: string;
  agentId: string;
  name: string;
  status: string;
  capabilities: string[];
  iat: number;
}

export interface ScoreRecord {
  did: string;
  score: number;
  tier: Tier;
  /** False for a DID the broker never scored (the baseline). */
  stored: boolean;
}

const decoder = new TextDecoder();
const verifier = new StatelessVerifier({ maxFrameBytes: 8 * 1024 });

async function openBucket(nc: NatsConnection, bucket: string): Promise<KV | undefined> {
  try {
    const kv = await new Kvm(nc).open(bucket);
    await kv.status();
    return kv;
  } catch {
    return undefined;
  }
}

/** Last values of a bucket (one pass; a watch that ends at the newest entry). */
async function lastValues(kv: KV): Promise<{ key: string; value: Uint8Array }[]> {
  if ((await kv.status()).values === 0) return [];
  const values: { key: string; value: Uint8Array }[] = [];
  const watch = await kv.watch();
  const timer = setTimeout(() => watch.stop(), 5_000);
  try {
    for await (const entry of watch) {
      if (entry.operation === 'PUT') values.push({ key: entry.key, value: entry.value });
      if ((entry.delta ?? 0) === 0) break;
    }
  } finally {
    clearTimeout(timer);
    watch.stop();
  }
  return values;
}

/** The agents of the presence registry whose signed record verifies. */
export async function readPresence(nc: NatsConnection, mesh: string): Promise<PresenceRecord[]> {
  const kv = await openBucket(nc, meshBuckets(mesh).presence);
  if (kv === undefined) return [];
  const records: PresenceRecord[] = [];
  for (const { key, value } of await lastValues(kv)) {
    const result = verifier.verify(value, subjects.presence(mesh, key));
    if (!result.ok || result.frame.typ !== MESSAGE_TYPES.presence) continue;
    const data = (result.frame.data ?? {}) as { status?: string; name?: string; capabilities?: string[] };
    records.push({
      did: result.frame.iss,
      agentId: key,
      name: String(data.name ?? ''),
      status: String(data.status ?? ''),
      capabilities: Array.isArray(data.capabilities) ? data.capabilities.map(String) : [],
      iat: result.frame.iat,
    });
  }
  return records.sort((a, b) => a.name.localeCompare(b.name));
}

const scorer = createScorer();

function scoreOf(did: string, value: Uint8Array | undefined, now: number): ScoreRecord {
  if (value !== undefined) {
    try {
      const stored = JSON.parse(decoder.decode(value)) as StoredScore;
      const parsed = parseTrustState(stored.state);
      if (parsed.ok) return { did, score: scorer.currentScore(parsed.state, now), tier: scorer.tier(parsed.state, now), stored: true };
    } catch {
      // a corrupt entry: the broker starts that DID afresh, and so do we
    }
  }
  return { did, score: NEW_AGENT_SCORE, tier: tierOf(NEW_AGENT_SCORE), stored: false };
}

export async function readScore(nc: NatsConnection, mesh: string, did: string): Promise<ScoreRecord> {
  const kv = await openBucket(nc, meshBuckets(mesh).trust);
  const entry = kv === undefined ? null : await kv.get(agentIdFromDid(did));
  return scoreOf(did, entry?.operation === 'PUT' ? entry.value : undefined, Date.now());
}

/** Every score the broker stored. */
export async function readScores(nc: NatsConnection, mesh: string): Promise<ScoreRecord[]> {
  const kv = await openBucket(nc, meshBuckets(mesh).trust);
  if (kv === undefined) return [];
  const now = Date.now();
  return (await lastValues(kv))
    .filter(({ key }) => !key.startsWith(NON_AGENT_KEY_PREFIX))
    .map(({ key, value }) => scoreOf(safeDid(key), value, now))
    .filter((s) => s.did !== '');
}

function safeDid(agentId: string): string {
  try {
    return didFromAgentId(agentId);
  } catch {
    return '';
  }
}

export interface BreakerRecord {
  /** The agent whose breaker it is (the signer of the transition). */
  agent: string;
  peer: string;
  state: string;
  reason?: string;
  failures: number;
  /** When the audit recorded the transition (ms). */
  since: number;
}

/**
 * The last breaker transition per (agent, peer), from the audit log: breakers
 * live in each agent, and every transition is a signed frame the audit keeps.
 */
export async function readBreakers(logPath: string): Promise<BreakerRecord[]> {
  const { openLogFile, queryLog } = await import('@trustmesh/audit');
  const { BREAKER_TYPE } = await import('@trustmesh/breakers');
  const last = new Map<string, BreakerRecord>();
  for await (const r of queryLog(await openLogFile(logPath), { type: BREAKER_TYPE, verdict: 'ok' })) {
    const data = r.data as { peer?: unknown; to?: unknown; reason?: unknown; failures?: unknown } | undefined;
    if (r.signer === undefined || typeof data?.peer !== 'string' || typeof data.to !== 'string') continue;
    last.set(`${r.signer} ${data.peer}`, {
      agent: r.signer,
      peer: data.peer,
      state: data.to,
      ...(typeof data.reason === 'string' && { reason: data.reason }),
      failures: typeof data.failures === 'number' ? data.failures : 0,
      since: r.time,
    });
  }
  return [...last.values()];
}
