import { connect } from '@nats-io/transport-node';
import { joinMesh, type Agent } from '@trustmesh/client';
import { generateKey } from '@trustmesh/protocol';
import { withSecureNats } from '@trustmesh/test-utils';
import { afterEach, describe, expect, it } from 'vitest';
import { identityFromJwt, meshResources, secureConnectOptions } from '../src/index.ts';
import { loadKv } from '@trustmesh/test-utils';
import { deniedErrors } from './helpers.ts';

const fx = withSecureNats();
const agents: Agent[] = [];
afterEach(async () => {
  await Promise.all(agents.splice(0).map((agent) => agent.leave().catch(() => undefined)));
});

/** An admitted agent joined with the current joinMesh API over a secure connection. */
async function join(name: string) {
  const key = generateKey();
  const { jwt } = await fx.admit(key, { name });
  const nc = fx.track(await connect(secureConnectOptions(key, jwt, fx.url)));
  const denied = deniedErrors(nc, identityFromJwt(jwt));
  const agent = await joinMesh({ mesh: fx.mesh, name, key, connection: nc });
  agents.push(agent);
  return { agent, denied };
}

describe('joinMesh in secure mode', () => {
  it('join - two admitted agents join with joinMesh({ connection }) and do a signed request/reply within the permission table', async () => {
    // The operator provisions the presence registry (agents may not create buckets), as `trustmesh up` will.
    const operator = await fx.admitted('operator');
    const { Kvm } = await loadKv();
    await new Kvm(operator.nc).create(meshResources(fx.mesh).presenceBucket, { history: 1 });
    const bob = await join('bob');
    bob.agent.handle('add', (numbers) => (numbers as number[]).reduce((a, b) => a + b, 0));
    const alice = await join('alice');
    expect(await alice.agent.request(bob.agent.did, 'add', [1, 2, 3])).toBe(6);
    expect(await bob.agent.request(alice.agent.did, 'no-such-type', null).catch((error: Error) => error.message)).toMatch(/no handler/);
    // Joining (the presence registry included), presence, request and reply stayed inside the permission table.
    expect([...alice.denied.seen, ...bob.denied.seen].map((e) => e.message)).toEqual([]);
    expect(alice.agent.stats().rejectedTotal).toBe(0);
    expect(bob.agent.stats().rejectedTotal).toBe(0);
  });
});
