/**
 * Query a log (docs/audit.md §6): by agent, signer, message type, subject
 * (NATS wildcards), time range, kind, verdict, position range. A sequential
 * scan of the chain: nothing to keep in sync, so it can never disagree with it.
 */
import { didFromPublicKey, HEADER_LENGTH, toHex } from '@trustmesh/protocol';
import { decodeBody as decodeFrameBody } from '@trustmesh/protocol/internal';
import { invalid } from './errors.ts';
import { decodeBody, type RecordKind } from './record.ts';
import type { LogSource } from './store.ts';

export interface AuditQuery {
  /** A DID or agent id: frames it signed (verified), published (subject's last token) or that were addressed to it (subject or `aud`). */
  agent?: string;
  /** DID of the key that signed the frame (only frames whose signature verified). */
  signer?: string;
  /** Message type (`typ`), exact. */
  type?: string;
  /** Subject pattern: `*` is one token, `>` the rest. */
  subject?: string;
  /** Record time (capture time, ms): since <= time < until. */
  since?: number;
  until?: number;
  kind?: RecordKind;
  /** Stored verdict: `ok` or a reason code. */
  verdict?: string;
  /** Positions: from <= position <= to. */
  from?: number;
  to?: number;
  /** Stop after this many results. */
  limit?: number;
}

/** One record of the log, with what the frame says (claimed fields, unless `verdict` is `ok`). */
export interface QueryResult {
  position: number;
  kind: RecordKind;
  time: number;
  seqFirst: number;
  seqLast: number;
  subject: string;
  verdict: string;
  hash: string;
  /** The signer's DID when the signature verified. */
  signer?: string;
  iss?: string;
  aud?: string;
  typ?: string;
  iat?: number;
  id?: string;
  data?: unknown;
  frame: Uint8Array;
}

const UNSIGNED = new Set(['too_large', 'bad_frame', 'bad_version', 'bad_signature']);

/** NATS subject match: `*` one token, `>` one or more trailing tokens. */
export function subjectMatches(pattern: string, subject: string): boolean {
  const p = pattern.split('.');
  const s = subject.split('.');
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '>') return s.length > i;
    if (i >= s.length) return false;
    if (p[i] !== '*' && p[i] !== s[i]) return false;
  }
  return p.length === s.length;
}

const agentIdOf = (v: string): string => (v.startsWith('did:key:') ? v.slice(8) : v);

function describe(frame: Uint8Array, verdict: string): Partial<QueryResult> {
  const out: Partial<QueryResult> = {};
  if (frame.length <= HEADER_LENGTH) return out;
  if (!UNSIGNED.has(verdict)) {
    try {
      out.signer = didFromPublicKey(frame.subarray(1, 33));
    } catch {
      // not a key; the verdict says so
    }
  }
  try {
    const f = decodeFrameBody(frame.subarray(HEADER_LENGTH)).fields;
    if (typeof f.iss === 'string') out.iss = f.iss;
    if (typeof f.aud === 'string') out.aud = f.aud;
    if (typeof f.typ === 'string') out.typ = f.typ;
    if (typeof f.iat === 'number') out.iat = f.iat;
    if (f.id instanceof Uint8Array) out.id = toHex(f.id);
    out.data = f.data;
  } catch {
    // the body is not MessagePack: the record still counts, with what it has
  }
  return out;
}

function matches(q: AuditQuery, r: QueryResult): boolean {
  if (q.type !== undefined && r.typ !== q.type) return false;
  if (q.signer !== undefined && r.signer !== q.signer) return false;
  if (q.agent !== undefined) {
    const id = agentIdOf(q.agent);
    const tokens = r.subject.split('.');
    const publisher = tokens[tokens.length - 1];
    const to = tokens.length === 5 ? tokens[3] : undefined;
    const hit =
      (r.signer !== undefined && agentIdOf(r.signer) === id) ||
      publisher === id ||
      to === id ||
      (r.aud !== undefined && agentIdOf(r.aud) === id);
    if (!hit) return false;
  }
  return true;
}

/** Records matching every given criterion, in log order. A damaged record ends the scan (verify says why). */
export async function* queryLog(source: LogSource, query: AuditQuery = {}): AsyncGenerator<QueryResult> {
  const limit = query.limit ?? Number.POSITIVE_INFINITY;
  if (!(limit > 0)) throw invalid('limit must be positive');
  let found = 0;
  for await (const entry of source.entries()) {
    if ('malformed' in entry) return;
    const decoded = decodeBody(entry.body);
    if (!decoded.ok) return;
    const r = decoded.fields;
    if (query.to !== undefined && r.position > query.to) return;
    if (query.from !== undefined && r.position < query.from) continue;
    if (query.kind !== undefined && r.kind !== query.kind) continue;
    if (query.since !== undefined && r.time < query.since) continue;
    if (query.until !== undefined && r.time >= query.until) continue;
    if (query.verdict !== undefined && r.verdict !== query.verdict) continue;
    if (query.subject !== undefined && !subjectMatches(query.subject, r.subject)) continue;
    const result: QueryResult = {
      position: r.position,
      kind: r.kind,
      time: r.time,
      seqFirst: r.seqFirst,
      seqLast: r.seqLast,
      subject: r.subject,
      verdict: r.verdict,
      hash: toHex(entry.hash),
      frame: new Uint8Array(r.frame),
      ...(r.kind === 'frame' ? describe(r.frame, r.verdict) : {}),
    };
    if (!matches(query, result)) continue;
    yield result;
    if (++found >= limit) return;
  }
}

/** JSON for one result: bytes as base64 (`frame`) or hex, bigints as strings. */
export function toJsonLine(result: QueryResult, options: { frame?: boolean } = {}): string {
  const { frame, ...rest } = result;
  const out: Record<string, unknown> = { ...rest };
  if (options.frame ?? true) out.frame = Buffer.from(frame).toString('base64');
  return JSON.stringify(out, (_k, v: unknown) =>
    typeof v === 'bigint' ? v.toString() : v instanceof Uint8Array ? { hex: Buffer.from(v).toString('hex') } : v,
  );
}

/** Writes each result as one JSON line; returns how many. */
export async function writeJsonLines(
  results: AsyncIterable<QueryResult>,
  out: { write(chunk: string): unknown },
  options: { frame?: boolean } = {},
): Promise<number> {
  let n = 0;
  for await (const r of results) {
    out.write(`${toJsonLine(r, options)}\n`);
    n++;
  }
  return n;
}
