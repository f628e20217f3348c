/**
 * @packageDocumentation
 * Starts and stops a private nats-server for demos, tests and `trustmesh up`:
 * a free port on 127.0.0.1 (never the shared 4222), JetStream in a temp store,
 * everything removed on stop. `startNatsCluster` starts several, routed, with
 * clustered JetStream, and crashes and restarts any of them. Needs the `nats-server` binary (Debian/Ubuntu:
 * `apt-get install nats-server`, or set NATS_SERVER_BIN).
 *
 * @example
 * ```ts
 * import { startNatsServer } from '@trustmesh/embedded-nats'
 * import { connect } from '@nats-io/transport-node'
 *
 * await using server = await startNatsServer()   // or: const server = ...; await server.stop()
 * const nc = await connect({ servers: server.url })
 * const sub = nc.subscribe('hello', { max: 1 })
 * nc.publish('hello', 'world')
 * for await (const msg of sub) console.log(msg.subject, msg.string())
 * await nc.close()
 * ```
 */
export { startNatsServer } from './server.ts';
export type { NatsServerInit, NatsServerHandle } from './server.ts';
export { startNatsCluster, nodeProblem as clusterNodeProblem, freePorts as freeLoopbackPorts } from './cluster.ts';
export type { NatsClusterInit, NatsClusterHandle, NatsClusterNode } from './cluster.ts';
export type { ClusterConfig } from './config.ts';
export { findNatsServer, natsServerVersion } from './binary.ts';
export { NatsServerError, NATS_SERVER_ERRORS } from './errors.ts';
export type { NatsServerErrorCode } from './errors.ts';
