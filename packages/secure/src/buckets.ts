import type { NatsConnection } from '@nats-io/transport-node';
import { SecureModeError } from './errors.ts';
import { kvStream } from './names.ts';

/**
 * Stream settings for a bucket that agents write (the presence registry).
 * nats.js creates KV streams with `allow_rollup_hdrs: true`, and a message with
 * `Nats-Rollup: all` then purges the whole stream: an agent allowed to write
 * only its own key could wipe every other record. `allow_direct: false` keeps
 * readers on `STREAM.MSG.GET` (agents may not use direct get).
 */
export const AGENT_WRITABLE_BUCKET = { allow_rollup_hdrs: false, allow_direct: false } as const;

const decoder = new TextDecoder();

interface ApiAnswer {
  error?: { code: number; description: string };
  config?: Record<string, unknown>;
}

async function api(nc: NatsConnection, subject: string, body: unknown): Promise<ApiAnswer> {
  const reply = await nc.request(subject, JSON.stringify(body), { timeout: 5_000 });
  const answer = JSON.parse(decoder.decode(reply.data)) as ApiAnswer;
  if (answer.error !== undefined)
    throw new SecureModeError('jetstream_error', `${subject}: ${answer.error.description} (${answer.error.code})`);
  return answer;
}

/**
 * Applies {@link AGENT_WRITABLE_BUCKET} to an existing KV bucket (as an
 * operator: it needs the stream admin API). Run it after creating the presence
 * bucket and before agents join.
 */
export async function hardenBucket(nc: NatsConnection, bucket: string): Promise<void> {
  const stream = kvStream(bucket);
  const { config } = await api(nc, `$JS.API.STREAM.INFO.${stream}`, {});
  await api(nc, `$JS.API.STREAM.UPDATE.${stream}`, { ...config, ...AGENT_WRITABLE_BUCKET });
}

/** One key's current value, as {@link readBucket} returns it. */
export interface BucketEntry {
  key: string;
  value: Uint8Array;
  /** The stream sequence of the value (the KV revision). */
  revision: number;
}

interface StoredMessage {
  subject: string;
  seq: number;
  data?: string;
  hdrs?: string;
}

/** The `KV-Operation` of a stored message (`PUT` when absent), from its NATS/1.0 header block. */
function kvOperation(hdrs: string | undefined): string {
  if (hdrs === undefined) return 'PUT';
  const text = Buffer.from(hdrs, 'base64').toString('latin1');
  const match = /\r\nKV-Operation:\s*(\S+)/i.exec(text);
  return match?.[1]?.toUpperCase() ?? 'PUT';
}

/**
 * Reads every live key of a KV bucket with `STREAM.MSG.GET` and `next_by_subj`:
 * what an agent may do in secure mode, where `kv.watch` and `kv.keys` (consumers)
 * are refused. One request per stored message (nats-server 2.9 has no batch get),
 * at most `limit` of them (default 100,000; `jetstream_error` beyond). Deleted and
 * purged keys are left out; for a key with history, the newest value wins.
 */
export async function readBucket(nc: NatsConnection, bucket: string, options: { limit?: number } = {}): Promise<BucketEntry[]> {
  const limit = options.limit ?? 100_000;
  const stream = kvStream(bucket);
  const prefix = `$KV.${bucket}.`;
  const live = new Map<string, BucketEntry>();
  let seq = 1;
  for (let read = 0; ; read++) {
    if (read >= limit) throw new SecureModeError('jetstream_error', `bucket ${bucket} holds more than ${limit} messages`);
    const reply = await nc.request(`$JS.API.STREAM.MSG.GET.${stream}`, JSON.stringify({ seq, next_by_subj: `${prefix}>` }), {
      timeout: 5_000,
    });
    const answer = JSON.parse(decoder.decode(reply.data)) as { error?: { code: number; description: string }; message?: StoredMessage };
    if (answer.error?.code === 404) break;
    if (answer.error !== undefined || answer.message === undefined) {
      throw new SecureModeError('jetstream_error', `reading ${bucket}: ${answer.error?.description ?? 'no message in the answer'}`);
    }
    const { subject, seq: at, data, hdrs } = answer.message;
    const key = subject.slice(prefix.length);
    if (kvOperation(hdrs) === 'PUT') live.set(key, { key, value: new Uint8Array(Buffer.from(data ?? '', 'base64')), revision: at });
    else live.delete(key);
    seq = at + 1;
  }
  return [...live.values()];
}
