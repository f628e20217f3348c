/**
 * Plumbing for the task tests: agents with the task module on a private
 * nats-server, and links a correct issuer never signs (encoded here from the
 * layout of docs/delegation.md §4.1, independently of the protocol package's
 * encoder, and signed over §4.2's input).
 */
import { randomBytes } from 'node:crypto';
import { type Agent, type AgentExtension, type Tasks, type TasksInit, tasks } from '@trustmesh/client';
import { type AgentKey, type CapabilityToken, decodeToken, generateKey, publicKeyFromDid, tokenSigningInput } from '@trustmesh/protocol';
import type { NatsFixture } from '@trustmesh/test-utils';

export interface TaskAgent {
  agent: Agent;
  key: AgentKey;
  t: Tasks;
  did: string;
}

export async function joinWithTasks(
  nats: NatsFixture,
  mesh: string,
  name: string,
  init: TasksInit & { key?: AgentKey; extensions?: AgentExtension[] },
): Promise<TaskAgent> {
  const { extensions = [], ...rest } = init;
  const key = init.key ?? generateKey();
  const t = tasks({ ...rest, key });
  // other extensions first: the kill switch's guards must run before the task module sees a frame
  const agent = await nats.join({ mesh, name, key, extensions: [...extensions, t] });
  return { agent, key, t, did: key.did };
}

export interface LinkFields {
  issuer: AgentKey;
  audience: string;
  parent?: CapabilityToken;
  notBefore: number;
  expiry: number;
  depth: number;
  scope: string[];
}

/** Encodes and signs a token with whatever fields it is given: no rule is checked. */
export function forgeLink(fields: LinkFields): CapabilityToken {
  const patterns = fields.scope.map((p) => Buffer.from(p, 'ascii'));
  const payload = Buffer.alloc(131 + patterns.reduce((n, p) => n + 1 + p.length, 0));
  payload[0] = 1;
  Buffer.from(fields.issuer.publicKey).copy(payload, 1);
  Buffer.from(publicKeyFromDid(fields.audience)).copy(payload, 33);
  if (fields.parent !== undefined) Buffer.from(fields.parent.hash).copy(payload, 65);
  randomBytes(16).copy(payload, 97);
  payload.writeBigUInt64BE(BigInt(fields.notBefore), 113);
  payload.writeBigUInt64BE(BigInt(fields.expiry), 121);
  payload[129] = fields.depth;
  payload[130] = patterns.length;
  let at = 131;
  for (const p of patterns) {
    payload[at++] = p.length;
    p.copy(payload, at);
    at += p.length;
  }
  const signature = fields.issuer.sign(tokenSigningInput(payload));
  const decoded = decodeToken(Buffer.concat([payload, signature]));
  if (!decoded.ok) throw new Error(`forged link does not decode: ${decoded.detail}`);
  return decoded.token;
}

/** A copy of the token's bytes with one bit flipped at `offset`. */
export function tamper(token: CapabilityToken, offset: number): Uint8Array {
  const out = Uint8Array.from(token.bytes);
  out[offset]! ^= 0x01;
  return out;
}

/** A promise and the functions that settle it, for handlers that wait on the test. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}
