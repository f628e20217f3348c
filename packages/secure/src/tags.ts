import { agentIdFromDid } from '@trustmesh/protocol';
import { didFromUserNkey } from './nkeys.ts';
import { ROLES, type Role } from './permissions.ts';
import { invalid } from './errors.ts';

/** A user JWT names its mesh and role in its tags, so connect options can be derived from (key, JWT) alone. */
const MESH_TAG = 'tm-mesh:';
const ROLE_TAG = 'tm-role:';

export const jwtTags = (mesh: string, role: Role): string[] => [MESH_TAG + mesh, ROLE_TAG + role];

export function readJwtTags(tags: readonly string[] | undefined): { mesh: string; role: Role } {
  const mesh = tags?.find((t) => t.startsWith(MESH_TAG))?.slice(MESH_TAG.length);
  const role = tags?.find((t) => t.startsWith(ROLE_TAG))?.slice(ROLE_TAG.length) as Role | undefined;
  if (mesh === undefined || role === undefined || !ROLES.includes(role))
    return invalid('the JWT was not issued by a TrustMesh authority (no mesh and role tags)');
  return { mesh, role };
}

export const agentIdFromUserNkey = (nkey: string): string => agentIdFromDid(didFromUserNkey(nkey));
