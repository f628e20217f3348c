import { InvalidArgumentError } from '../errors.ts';

/**
 * Subject layout (docs/protocol.md §6). Every subject starts with the mesh root
 * `tm.<mesh>.` and its LAST token is the publishing agent's id, so in secure
 * mode a per-user publish permission makes the subject itself proof of who sent it.
 */
export const SUBJECT_ROOT = 'tm';
export type SubjectKind = 'presence' | 'msg' | 'req' | 'rep';

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

function token(name: string, value: string): string {
  if (!TOKEN.test(value))
    throw new InvalidArgumentError(
      `${name} is not a valid subject token: ${typeof value === 'string' ? JSON.stringify(value.slice(0, 80)) : `a ${typeof value}`}`,
    );
  return value;
}

export const subjects = {
  presence: (mesh: string, from: string) => `${meshRoot(mesh)}.presence.${token('from', from)}`,
  presenceAll: (mesh: string) => `${meshRoot(mesh)}.presence.*`,
  message: (mesh: string, to: string, from: string) => `${meshRoot(mesh)}.msg.${token('to', to)}.${token('from', from)}`,
  request: (mesh: string, to: string, from: string) => `${meshRoot(mesh)}.req.${token('to', to)}.${token('from', from)}`,
  reply: (mesh: string, to: string, from: string) => `${meshRoot(mesh)}.rep.${token('to', to)}.${token('from', from)}`,
  /** Everything addressed to one agent: msg, req and rep. */
  inbox: (mesh: string, to: string) => `${meshRoot(mesh)}.*.${token('to', to)}.*`,
  /** Every subject of the mesh (for audit). */
  all: (mesh: string) => `${meshRoot(mesh)}.>`,
} as const;

export interface ParsedSubject {
  mesh: string;
  kind: string;
  /** Recipient agent id, for msg/req/rep. */
  to?: string;
  /** The last token: the publishing agent's id. */
  from: string;
}

/** Parses a mesh subject; undefined when it is not one (never throws). */
export function parseSubject(subject: string): ParsedSubject | undefined {
  if (typeof subject !== 'string') return undefined;
  const parts = subject.split('.');
  if (parts.length < 4 || parts[0] !== SUBJECT_ROOT) return undefined;
  const [, mesh, kind] = parts as [string, string, string];
  const from = parts[parts.length - 1]!;
  if (parts.length === 5 && (kind === 'msg' || kind === 'req' || kind === 'rep')) return { mesh, kind, to: parts[3]!, from };
  return { mesh, kind, from };
}

/** The publisher's agent id: the last token of the subject. */
export function senderOfSubject(subject: string): string {
  const dot = subject.lastIndexOf('.');
  return dot < 0 ? subject : subject.slice(dot + 1);
}
