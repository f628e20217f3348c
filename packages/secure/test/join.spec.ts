import { connect } from '@nats-io/transport-node';
import { joinMesh, type Agent } from '@trustmesh/client';
import { generateKey } from '@trustmesh/protocol';
import { withSecureNats } from '@trustmesh/test-utils';
import { afterEach, describe, expect, it } from 'vitest';
import { identityFromJwt, meshResources, secureConnectOptions } from '../src/index.ts';
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
    await fx.createBucket(meshResources(fx.mesh).presenceBucket, { history: 1 });
    const bob = await join('bob');
    bob.agent.handle('add', (numbers) => (numbers as number[]).reduce((a, b) => a + b, 0));
    const alice = await join('alice');
    expect(await alice.agent.request(bob.agent.did, 'add', [1, 2, 3])).toBe(6);
    expect(await bob.agent.request(alice.agent.did, 'no-such-type', null).catch((error: Error) => error.message)).toMatch(/no handler/);
    // Joining, presence, request and reply stayed inside the permission table. The one refusal allowed is the
    // client reading the presence registry with kv.watch (a consumer, withheld from agents: docs/security.md);
    // it then learns peers from heartbeats. Listing with STREAM.MSG.GET + next_by_subj needs no consumer.
    const refused = [...alice.denied.seen, ...bob.denied.seen].map((e) => e.subject);
    const watchOfRegistry = `$JS.API.CONSUMER.CREATE.KV_${meshResources(fx.mesh).presenceBucket}.`;
    expect(refused.filter((subject) => !subject.startsWith(watchOfRegistry))).toEqual([]);
    expect(alice.agent.stats().rejectedTotal).toBe(0);
    expect(bob.agent.stats().rejectedTotal).toBe(0);
  });
});
