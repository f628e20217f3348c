/**
 * The mesh client in secure mode: joinMesh({ credentials }) connects with the
 * agent's own key, rejections name an authenticated publisher, the presence
 * registry is read without consumers, and nothing the client does is refused
 * by the server's permissions.
 */
import { type Agent, joinMesh, type RejectionEvent } from '@trustmesh/client';
import { generateKey } from '@trustmesh/protocol';
import { meshResources } from '@trustmesh/secure';
import { waitFor, withSecureNats } from '@trustmesh/test-utils';
import { afterEach, describe, expect, it } from 'vitest';

const fx = withSecureNats();
const agents: Agent[] = [];
afterEach(async () => {
  await Promise.all(agents.splice(0).map((agent) => agent.leave().catch(() => undefined)));
});

async function join(name: string): Promise<Agent> {
  const key = generateKey();
  const { jwt } = await fx.admit(key, { name });
  const agent = await joinMesh({ mesh: fx.mesh, name, key, servers: fx.url, credentials: { jwt } });
  agents.push(agent);
  return agent;
}

describe('client in secure mode', () => {
  it('secure client - agents join with credentials, learn each other from the registry without consumers, and talk; the server refuses nothing they do', async () => {
    await fx.createBucket(meshResources(fx.mesh).presenceBucket, { history: 1 });
    const before = fx.serverLog.filter((l) => /Violation/i.test(l)).length;
    const bob = await join('bob');
    bob.handle('add', (numbers) => (numbers as number[]).reduce((a, b) => a + b, 0));
    const alice = await join('alice');
    // alice read the registry at join (record by record: secure mode withholds consumers from agents).
    expect(alice.peers().map((p) => p.did)).toEqual([bob.did]);
    await waitFor(() => bob.peers().length === 1, 'bob to see alice');
    await expect(alice.request(bob.did, 'add', [1, 2, 3])).resolves.toBe(6);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(fx.serverLog.filter((l) => /Violation/i.test(l)).length).toBe(before);
  });

  it('secure client - a frame with a bad signature published on my own subject is blamed on my authenticated connection', async () => {
    await fx.createBucket(meshResources(fx.mesh).presenceBucket, { history: 1 });
    const bob = await join('bob');
    const mallory = generateKey();
    const { jwt } = await fx.admit(mallory, { name: 'mallory' });
    const nc = await fx.connectAs(mallory, jwt);
    const events: RejectionEvent[] = [];
    bob.on('rejected', (e) => events.push(e));
    const subject = `tm.${fx.mesh}.msg.${bob.agentId}.${mallory.agentId}`;
    const frame = new Uint8Array(200);
    frame[0] = 1;
    frame.set(mallory.publicKey, 1);
    nc.publish(subject, frame);
    await nc.flush();
    await waitFor(() => events.length === 1, 'bob to refuse the frame');
    expect(events[0]).toMatchObject({ reason: 'bad_signature', blame: 'publisher', publisher: mallory.did, publisherAuthenticated: true });
    // The bytes travel with the event, for a report to the broker (which re-checks them against the capture stream).
    expect(Buffer.from(events[0]!.evidence!).equals(Buffer.from(frame))).toBe(true);
  });
});
