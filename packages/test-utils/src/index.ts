/**
 * @packageDocumentation
 * Private test plumbing shared by every suite: real nats-server fixtures,
 * raw captures, bounded waits, frame forging and a seeded PRNG. Not published.
 */
export { withNats, uniqueMesh, SHARED_NATS_PORT } from './nats.ts';
export type { NatsFixture } from './nats.ts';
export { capture } from './capture.ts';
export type { Capture, CapturedMessage } from './capture.ts';
export { sleep, waitFor, nextEvent } from './wait.ts';
export { prng } from './prng.ts';
export { wirePackr, encodeBody, assembleFrame, forgeFrame, flipBit, mutateFrame, concat, BODY_OFFSET, MUTATION_KINDS } from './frames.ts';
export type { ForgedBody } from './frames.ts';
export * from './secure.ts';
export { hostileValues } from './hostile.ts';
export { withNatsCluster, CLUSTER_CLIENT_OPTIONS, type NatsClusterFixture } from './cluster.ts';
export * from './attacks.ts';
/** Path of the flooding attacker process (fork it with `serialization: 'advanced'`). */
export const FLOOD_PROCESS = new URL('./flood-process.mjs', import.meta.url);
