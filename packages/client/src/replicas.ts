/**
 * How many copies JetStream keeps of the mesh's state (presence registry,
 * trust scores, kill state, audit capture): R3 on a cluster of three or more
 * servers, R1 on a single server, unless the operator says otherwise.
 * docs/decisions/0017-replication.md.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { InvalidArgumentError } from '@trustmesh/protocol';

/** The environment variable that overrides the automatic choice for every bucket and stream a process creates. */
export const REPLICAS_ENV = 'TRUSTMESH_REPLICAS';

/** JetStream allows 1 to 5 replicas. */
const MAX_REPLICAS = 5;

/** What the rule reads from the server's INFO. */
export type ClusterInfo = Pick<NonNullable<NatsConnection['info']>, 'jetstream' | 'cluster' | 'connect_urls'>;

/**
 * The replica count for a new mesh bucket or stream, from what the connected
 * server announced: 3 when it runs JetStream in a cluster that advertises at
 * least three servers (`connect_urls`, which lists the server itself), else 1.
 * `override` (or `$TRUSTMESH_REPLICAS`) wins, e.g. 5, or 1 on a cluster that
 * hides its servers (`no_advertise`) or runs JetStream on fewer nodes than it has.
 * Throws `InvalidArgumentError` for an override outside 1..5.
 */
export function replicasFor(nc: NatsConnection, override?: number): number {
  return replicasForInfo(nc.info, override);
}

/** {@link replicasFor} on an INFO object (pure; for tests and tools). */
export function replicasForInfo(info: ClusterInfo | undefined, override?: number, env: NodeJS.ProcessEnv = process.env): number {
  if (override !== undefined) return checked(override, 'replicas');
  const fromEnv = env[REPLICAS_ENV];
  if (fromEnv !== undefined && fromEnv !== '') return checked(Number(fromEnv), REPLICAS_ENV);
  if (info?.jetstream !== true || !info.cluster) return 1;
  const servers = new Set(info.connect_urls ?? []).size;
  return servers >= 3 ? 3 : 1;
}

const checked = (value: number, what: string): number => {
  if (!(Number.isInteger(value) && value >= 1 && value <= MAX_REPLICAS)) {
    throw new InvalidArgumentError(`${what} must be an integer from 1 to ${MAX_REPLICAS}, not ${value}`);
  }
  return value;
};
