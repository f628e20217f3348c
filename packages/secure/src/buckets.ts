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
