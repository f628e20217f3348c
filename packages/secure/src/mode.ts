import type { MeshMode } from './authority.ts';

/**
 * What open mode means, said loudly: `trustmesh up --open` and the library
 * print it at start-up, and `status` shows it for as long as the mesh runs open.
 */
export function openModeWarning(url?: string): string {
  const where = url === undefined ? 'this NATS server' : url;
  return [
    '!!! TrustMesh is running in OPEN MODE: no authentication, no permissions. !!!',
    `Anyone who can reach ${where} can read every agent's inbox, re-publish any agent's frames,`,
    'publish on control subjects (kill, revive) and delete the JetStream state (trust scores, kill state, audit).',
    'Signatures still prove who WROTE a frame, but nothing proves who PUBLISHED it, so bad signatures and',
    'replays are attributed to nobody. Use open mode for development only; secure mode is the default.',
  ].join('\n');
}

/** Mode and a one-line description, for `status`. */
export function describeMode(mode: MeshMode): string {
  return mode === 'secure'
    ? 'secure: every connection is an admitted did:key with per-agent permissions enforced by nats-server'
    : 'OPEN: no authentication; development only (anyone who reaches NATS can read, forge publishers and delete state)';
}
