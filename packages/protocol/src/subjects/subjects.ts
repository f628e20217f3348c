import { InvalidArgumentError } from '../errors.ts';

/**
 * Subject layout (docs/protocol.md §6). Every subject starts with the mesh root
 * `tm.<mesh>.` and its LAST token is the publishing agent's id, so in secure
 * mode a per-user publish permission makes the subject itself proof of who sent it.
 */
export const SUBJECT_ROOT = 'tm';
export type SubjectKind = 'presence' | 'msg' | 'req' | 'rep';
/** Kinds addressed to one agent: `tm.<mesh>.<kind>.<to>.<from>`. */
export const INBOX_KINDS = ['msg', 'req', 'rep'] as const;
export type InboxKind = (typeof INBOX_KINDS)[number];

const MESH_NAME = /^[A-Za-z0-9_-]{1,64}$/;
const TOKEN = /^[A-Za-z0-9_-]{1,128}$/;

export function assertMeshName(mesh: string): void {
  if (typeof mesh !== 'string' || !MESH_NAME.test(mesh)) {
    throw new InvalidArgumentError(
      `mesh name must match ${MESH_NAME} (got ${typeof mesh === 'string' ? JSON.stringify(mesh.slice(0, 80)) : `a ${typeof mesh}`})`,
    );
  }
}

export function meshRoot(mesh: string): string {
  assertMeshName(mesh);
  return `${SUBJECT_ROOT}.${mesh}`;
}

/** Checks one subject token (an agent id or a kind); returns it unchanged. */
export function assertToken(name: string, value: string): string {
  if (typeof value !== 'string' || !TOKEN.test(value)) {
    throw new InvalidArgumentError(
      `${name} is not a valid subject token: ${typeof value === 'string' ? JSON.stringify(value.slice(0, 80)) : `a ${typeof value}`}`,
    );
  }
  return value;
}

/**
 * The subjects of one mesh, with the mesh part built once. Agent ids passed to
 * the builders are NOT re-checked: they come from keys or DIDs the caller has
 * already validated (a DID decode proves the token shape). Use {@link subjects}
 * for one-off subjects built from unchecked strings.
 */
export interface MeshSubjects {
  readonly mesh: string;
  /** `tm.<mesh>` */
  readonly root: string;
  presence(from: string): string;
  /** `tm.<mesh>.presence.*` */
  readonly presenceAll: string;
  message(to: string, from: string): string;
  request(to: string, from: string): string;
  reply(to: string, from: string): string;
  /** `tm.<mesh>.<kind>.<to>.<from>` for any inbox kind, including ones added by extensions. */
  addressed(kind: string, to: string, from: string): string;
  /** `tm.<mesh>.<kind>.<from>` for broadcast kinds added by extensions (control, trust, audit, ...). */
  broadcast(kind: string, from: string): string;
  /** Everything addressed to one agent: `tm.<mesh>.*.<to>.*`. */
  inbox(to: string): string;
  /** Every subject of the mesh: `tm.<mesh>.>` (for audit). */
  readonly all: string;
}

export function meshSubjects(mesh: string): MeshSubjects {
  const root = meshRoot(mesh);
  const presence = `${root}.presence.`;
  const msg = `${root}.msg.`;
  const req = `${root}.req.`;
  const rep = `${root}.rep.`;
  return {
    mesh,
    root,
    presence: (from) => presence + from,
    presenceAll: `${presence}*`,
    message: (to, from) => `${msg + to}.${from}`,
    request: (to, from) => `${req + to}.${from}`,
    reply: (to, from) => `${rep + to}.${from}`,
    addressed: (kind, to, from) => `${root}.${assertToken('kind', kind)}.${to}.${from}`,
    broadcast: (kind, from) => `${root}.${assertToken('kind', kind)}.${from}`,
    inbox: (to) => `${root}.*.${assertToken('to', to)}.*`,
    all: `${root}.>`,
  };
}

/**
 * Names of the mesh's JetStream state, one place for every package: the presence
 * registry, trust scores and kill state (KV buckets), and the audit capture stream.
 */
export function meshBuckets(mesh: string): { presence: string; trust: string; kill: string; auditCapture: string } {
  assertMeshName(mesh);
  return { presence: `tm_${mesh}_presence`, trust: `tm_${mesh}_trust`, kill: `tm_${mesh}_kill`, auditCapture: `tm_${mesh}_audit_capture` };
}

/** One-off subject builders that check every token (for tools and tests). */
export const subjects = {
  presence: (mesh: string, from: string) => `${meshRoot(mesh)}.presence.${assertToken('from', from)}`,
  presenceAll: (mesh: string) => `${meshRoot(mesh)}.presence.*`,
  message: (mesh: string, to: string, from: string) => `${meshRoot(mesh)}.msg.${assertToken('to', to)}.${assertToken('from', from)}`,
  request: (mesh: string, to: string, from: string) => `${meshRoot(mesh)}.req.${assertToken('to', to)}.${assertToken('from', from)}`,
  reply: (mesh: string, to: string, from: string) => `${meshRoot(mesh)}.rep.${assertToken('to', to)}.${assertToken('from', from)}`,
  /** Everything addressed to one agent: msg, req and rep. */
  inbox: (mesh: string, to: string) => `${meshRoot(mesh)}.*.${assertToken('to', to)}.*`,
  /** Every subject of the mesh (for audit). */
  all: (mesh: string) => `${meshRoot(mesh)}.>`,
} as const;

/**
 * Where a frame travelled, read from the subject it arrived on: parsed once by
 * the stateless verification stage, so nothing downstream re-splits strings.
 */
export interface Route {
  /** The mesh name (second token). */
  mesh: string;
  /** The third token: presence, msg, req, rep, or a kind an extension defines. */
  kind: string;
  /** Recipient agent id for addressed subjects (`tm.<mesh>.<kind>.<to>.<from>`). */
  to?: string;
  /** The last token: the publishing agent's id. */
  from: string;
}

/**
 * Parses a mesh subject: `tm.<mesh>.<kind>.<from>` (broadcast kinds such as
 * presence) or `tm.<mesh>.<kind>.<to>.<from>` (addressed kinds). Undefined for
 * anything else; never throws. Called once per received frame by the stateless
 * verification stage.
 */
export function parseRoute(subject: string): Route | undefined {
  if (typeof subject !== 'string' || subject.length > 512) return undefined;
  const t = subject.split('.', 6);
  if (t[0] !== SUBJECT_ROOT || t.length < 4 || t.length > 5 || t.includes('')) return undefined;
  return t.length === 4 ? { mesh: t[1]!, kind: t[2]!, from: t[3]! } : { mesh: t[1]!, kind: t[2]!, to: t[3]!, from: t[4]! };
}

/** The publisher's agent id: the last token of the subject. */
export function senderOfSubject(subject: string): string {
  const dot = subject.lastIndexOf('.');
  return dot < 0 ? subject : subject.slice(dot + 1);
}
