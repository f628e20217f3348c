/**
 * The task protocol on the wire (docs/delegation.md, part II "Tasks"): message
 * types, the shape of each frame's `data`, and the capability subject token.
 * Parsers take attacker-controlled data and never throw: they return the
 * message or undefined.
 */
import { createHash, randomBytes } from 'node:crypto';
import { MAX_TOKEN_BYTES } from '@trustmesh/protocol';

/** The A2A task states (a2a-protocol.org, TaskState), in the kebab-case of its JSON binding. */
export const TASK_STATES = ['submitted', 'working', 'input-required', 'completed', 'failed', 'canceled', 'rejected'] as const;
export type TaskState = (typeof TASK_STATES)[number];
/** No later state is accepted once a task is in one of these. */
export const TERMINAL_STATES: ReadonlySet<TaskState> = new Set(['completed', 'failed', 'canceled', 'rejected']);
export const isTerminal = (state: TaskState): boolean => TERMINAL_STATES.has(state);

/** Message types of the task protocol. All carry the reserved `tm.` prefix: applications cannot send them with `agent.send`. */
export const TASK_TYPES = {
  /** delegator -> worker: run this task under this chain. */
  submit: 'tm.task.submit',
  /** delegator -> capability queue group: a task is available (no input, no chain). */
  offer: 'tm.task.offer',
  /** worker -> delegator: I take the offered task. */
  claim: 'tm.task.claim',
  /** delegator -> worker: the task went to another worker (or is no longer open). */
  decline: 'tm.task.decline',
  /** worker -> delegator: a state change. */
  status: 'tm.task.status',
  /** delegator -> worker: stop; cascades to sub-delegations. */
  cancel: 'tm.task.cancel',
  /** delegator -> worker: the answer to an input-required state. */
  input: 'tm.task.input',
} as const;

/** The addressed kind every task frame to one agent travels on: `tm.<mesh>.task.<to>.<from>`. */
export const TASK_KIND = 'task';
/** The kind of capability-addressed offers: `tm.<mesh>.ctask.<capability token>.<from>`. */
export const CAPABILITY_KIND = 'ctask';

const CAPABILITY_DOMAIN = 'trustmesh/ctask/v1\n';

/**
 * One subject token for a capability pattern: base64url (no padding) of
 * SHA-256("trustmesh/ctask/v1\n" || pattern). Always 43 characters of
 * `[A-Za-z0-9_-]`, whatever the pattern holds (`:`, `/`, `*` and `.` are not
 * subject-safe), and never equal to an agent id (those start with `z6Mk`
 * and are 48 characters).
 */
export function capabilityToken(pattern: string): string {
  return createHash('sha256').update(CAPABILITY_DOMAIN).update(pattern, 'utf8').digest('base64url');
}

/** A fresh task id: 16 random bytes, base64url (22 characters). */
export const newTaskId = (): string => randomBytes(16).toString('base64url');

const TASK_ID = /^[A-Za-z0-9_-]{16,64}$/;
const MAX_CHAIN_LINKS = 256;
const MAX_TEXT = 1024;
const CODE = /^[a-z][a-z0-9_]{0,63}$/;

export interface SubmitData {
  id: string;
  /** The capability the worker must hold (within the last link's scope). */
  capability: string;
  /** The chain, root first; the last link is granted to the worker. */
  chain: Uint8Array[];
  input: unknown;
  /** The delegator's own task this one is a sub-task of (informational). */
  parent?: string;
  /** ms since the epoch after which the delegator has given up. */
  deadline?: number;
}

export interface OfferData {
  id: string;
  capability: string;
  /** The pattern the queue group serves (the subject token is its hash). */
  route: string;
  deadline?: number;
}

export interface StatusData {
  id: string;
  state: TaskState;
  message?: string;
  /** With `completed`. */
  result?: unknown;
  /** With `failed` or `rejected`: a code (`handler_error`, a chain reason, ...) and a message. */
  error?: { code: string; message: string; link?: number };
}

export interface IdData {
  id: string;
  reason?: string;
}

export interface InputData {
  id: string;
  data: unknown;
}

const isMap = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Uint8Array);
const isId = (v: unknown): v is string => typeof v === 'string' && TASK_ID.test(v);
const isText = (v: unknown): v is string => typeof v === 'string' && v.length <= MAX_TEXT;
const isCapability = (v: unknown): v is string => typeof v === 'string' && v.length >= 3 && v.length <= 255;
const isTime = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

export function parseSubmit(data: unknown): SubmitData | undefined {
  if (!isMap(data) || !isId(data.id) || !isCapability(data.capability) || !Array.isArray(data.chain)) return undefined;
  if (data.chain.length === 0 || data.chain.length > MAX_CHAIN_LINKS) return undefined;
  // Bytes are checked by verifyChain (bad_token); here only their type, so a string never reaches it.
  if (!data.chain.every((t) => t instanceof Uint8Array && t.length <= MAX_TOKEN_BYTES)) return undefined;
  if (data.parent !== undefined && !isId(data.parent)) return undefined;
  if (data.deadline !== undefined && !isTime(data.deadline)) return undefined;
  return {
    id: data.id,
    capability: data.capability,
    chain: data.chain as Uint8Array[],
    input: data.input,
    ...(data.parent !== undefined && { parent: data.parent }),
    ...(data.deadline !== undefined && { deadline: data.deadline as number }),
  };
}

export function parseOffer(data: unknown): OfferData | undefined {
  if (!isMap(data) || !isId(data.id) || !isCapability(data.capability) || !isCapability(data.route)) return undefined;
  if (data.deadline !== undefined && !isTime(data.deadline)) return undefined;
  return {
    id: data.id,
    capability: data.capability,
    route: data.route,
    ...(data.deadline !== undefined && { deadline: data.deadline as number }),
  };
}

export function parseStatus(data: unknown): StatusData | undefined {
  if (!isMap(data) || !isId(data.id) || !(TASK_STATES as readonly unknown[]).includes(data.state)) return undefined;
  if (data.message !== undefined && !isText(data.message)) return undefined;
  const out: StatusData = { id: data.id, state: data.state as TaskState };
  if (data.message !== undefined) out.message = data.message;
  if (data.state === 'completed') out.result = data.result;
  if (data.error !== undefined) {
    const e = data.error;
    if (!isMap(e) || typeof e.code !== 'string' || !CODE.test(e.code) || !isText(e.message)) return undefined;
    if (e.link !== undefined && !(Number.isInteger(e.link) && (e.link as number) >= 0 && (e.link as number) <= 256)) return undefined;
    out.error = { code: e.code, message: e.message, ...(e.link !== undefined && { link: e.link as number }) };
  }
  return out;
}

export function parseId(data: unknown): IdData | undefined {
  if (!isMap(data) || !isId(data.id)) return undefined;
  if (data.reason !== undefined && !isText(data.reason)) return undefined;
  return { id: data.id, ...(data.reason !== undefined && { reason: data.reason }) };
}

export function parseInput(data: unknown): InputData | undefined {
  if (!isMap(data) || !isId(data.id)) return undefined;
  return { id: data.id, data: data.data };
}
