/**
 * The replica rule (decision 0017) on server INFO objects, and on real servers:
 * R1 on a single JetStream server, R3 on a 3-node cluster (test/cluster.spec.ts).
 */
import { InvalidArgumentError } from '@trustmesh/protocol';
import { REPLICAS_ENV, replicasFor, replicasForInfo } from '@trustmesh/client';
import { withNats } from '@trustmesh/test-utils';
import { describe, expect, it } from 'vitest';

const urls = (n: number) => Array.from({ length: n }, (_, i) => `127.0.0.1:${4300 + i}`);
const none = {};

describe('replicas', () => {
  it('rule - 3 on a JetStream cluster advertising three or more servers, 1 otherwise', () => {
    expect(replicasForInfo({ jetstream: true, cluster: 'c', connect_urls: urls(3) }, undefined, none)).toBe(3);
    expect(replicasForInfo({ jetstream: true, cluster: 'c', connect_urls: urls(5) }, undefined, none)).toBe(3);
    expect(replicasForInfo({ jetstream: true, cluster: 'c', connect_urls: urls(2) }, undefined, none)).toBe(1);
    // The same server listed twice is one server.
    expect(replicasForInfo({ jetstream: true, cluster: 'c', connect_urls: [...urls(2), urls(1)[0]!] }, undefined, none)).toBe(1);
    expect(replicasForInfo({ jetstream: true, cluster: 'c' }, undefined, none)).toBe(1); // no_advertise
    expect(replicasForInfo({ jetstream: false, cluster: 'c', connect_urls: urls(3) }, undefined, none)).toBe(1);
    expect(replicasForInfo({ jetstream: true, connect_urls: urls(3) }, undefined, none)).toBe(1);
    expect(replicasForInfo(undefined, undefined, none)).toBe(1);
  });

  it('override - the argument, then $TRUSTMESH_REPLICAS, win; out of range is refused', () => {
    const cluster = { jetstream: true, cluster: 'c', connect_urls: urls(3) };
    expect(replicasForInfo(cluster, 1, none)).toBe(1);
    expect(replicasForInfo(cluster, 5, { [REPLICAS_ENV]: '1' })).toBe(5);
    expect(replicasForInfo(cluster, undefined, { [REPLICAS_ENV]: '1' })).toBe(1);
    expect(replicasForInfo(undefined, undefined, { [REPLICAS_ENV]: '3' })).toBe(3);
    expect(replicasForInfo(cluster, undefined, { [REPLICAS_ENV]: '' })).toBe(3);
    for (const bad of [0, 6, 2.5, Number.NaN]) expect(() => replicasForInfo(cluster, bad, none)).toThrow(InvalidArgumentError);
    expect(() => replicasForInfo(cluster, undefined, { [REPLICAS_ENV]: 'three' })).toThrow(/TRUSTMESH_REPLICAS/);
  });

  describe('single server', () => {
    const nats = withNats();
    it('server - a single JetStream server gets R1', async () => {
      const nc = await nats.connect();
      expect(replicasFor(nc)).toBe(process.env[REPLICAS_ENV] ? Number(process.env[REPLICAS_ENV]) : 1);
    });
  });
});
